//! dvault's workflow: where Discourse backups come from, how they are stored in a restic-format
//! repository, retention, checks, restore drills, configuration and monitoring.
//! Knows nothing of terminals or argument parsing.

pub mod atomic_file;
pub mod audit;
pub mod config;
pub mod defaults;
pub mod discourse;
pub mod drill;
pub mod dump;
pub mod figures;
pub mod hooks;
pub mod interrupt;
pub mod lock;
pub mod monitor;
pub mod panic_guard;
pub mod putback;
pub mod redact;
pub mod repo;
pub mod report;
pub mod retention;
pub mod run;
pub mod run_plan;
pub mod s3;
pub mod secret_file;
pub mod setup;
pub mod snapshot;
pub mod source;
pub mod store;

// Crates of their own since issue 18 (the layout imports nothing of core; the simulator needs
// PostgreSQL without core); re-exported under their old module names so `crate::layout::…` and
// `dvault_core::postgres::…` keep working.
pub use dvault_layout as layout;
pub use dvault_pg as postgres;
