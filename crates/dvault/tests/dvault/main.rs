//! The `dvault` CLI's integration tests in one binary, as ripgrep keeps one per crate: each
//! module was a test file (and its own binary, each linking rustic_core, the CI linker once
//! filled the disk). A test build now links the crate and its dependencies once.
//!
//! The tests share one process: a test gives the environment it needs to the child processes it
//! starts, never to this process. One module: `cargo test -p dvault --test dvault MODULE::`.

/// Shared by the repository tests: fixtures, the `dvault` runner, SHA-256 of files.
mod repo_support;

mod admin_safety;
mod cli;
mod corruption_campaign;
mod daily_config;
mod discourse_formats;
mod drill_cli;
mod drill_hostile_cli;
mod everyday_cmds;
mod expansion_cap;
mod fault_campaign;
mod prune_log;
mod putback_api;
mod repo_damage;
mod repo_failures;
mod repo_forget;
mod repo_interop;
mod repo_locks;
mod repo_prune;
mod repo_rest;
mod repo_roundtrip;
mod repo_s3;
mod repo_simulated;
mod report_audit;
mod rest_secrets;
mod run_cli;
mod run_copy_to;
mod secret_permissions;
mod service_user;
mod setup;
mod simulated_forum;
mod special_files;
mod ssh_pull;
mod tarstream_stores;
