//! dvault-core's integration tests in one binary, as ripgrep keeps one per crate: each module
//! was a test file (and its own binary, each linking rustic_core, the CI linker once filled the
//! disk). A test build now links the crate and its dependencies once.
//!
//! The tests share one process: a test that needs an environment variable gives it to the child
//! processes it starts, not to this process (`source_s3` sets the one exception, see there).
//! One module: `cargo test -p dvault-core --test core MODULE::`.

mod config_errors;
mod drill_backups;
mod drill_hostile;
mod drill_pg18;
mod drill_repo;
mod drill_s3_uploads;
mod drill_sim;
mod layout_sim;
mod lock_concurrent;
mod monitor_metrics;
mod repo_progress;
mod restore_stream;
mod run_backup_names;
mod run_drill;
mod run_progress;
mod run_sites;
mod run_writes;
mod source_api;
mod source_folder;
mod source_s3;
mod tarsnap_fake;
