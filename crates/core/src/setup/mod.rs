//! `dvault setup`: what it takes to back up the forums of a standard Discourse Docker host,
//! worked out as a list of steps ([`plan()`], `plan.rs`) and then carried out ([`apply()`],
//! `apply.rs`). This file holds what both share: the admin's choices and the steps.
//!
//! Every step looks at the host first and is "already done" when its result is there (a file
//! that exists is never overwritten, a repository that exists is never created again), so
//! running setup twice changes nothing and `--dry-run` shows exactly what a real run would do.
//! All paths are the host's paths; `root` (normally `/`) is put in front of each one when it is
//! touched, so a test or an image build can prepare a whole root file system in a folder.
//! Starting services is the command line's business (crates/dvault/src/setup_cmd.rs).

mod apply;
pub mod config_text;
pub mod containers;
pub mod owner;
mod plan;

use std::path::{Path, PathBuf};

pub use apply::{apply, Applied};
pub use config_text::{ConfigChoice, SiteChoice};
pub use containers::DiscourseSite;
pub use plan::plan;

/// The service user the package creates (packaging/dvault.sysusers).
pub const SERVICE_USER: &str = "dvault";

/// What the admin chose (flags or answers); paths are host paths.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefix of every path touched (`/` on the host itself).
    pub root: PathBuf,
    /// The config file to write.
    pub config_path: PathBuf,
    /// Repository location, `{site}` replaced by the site name (default `/srv/dvault/{site}`).
    pub repository: String,
    /// Password file, `{site}` replaced (default `/etc/dvault/{site}.password`); created with a
    /// random password when missing.
    pub password_file: String,
    /// For `rest:` locations with a login.
    pub rest_password_file: Option<PathBuf>,
    /// For `s3:` locations.
    pub s3_credentials_file: Option<PathBuf>,
    /// Ping URL, `{site}` replaced.
    pub ping_url: Option<String>,
    /// Only these sites (empty: every site found).
    pub sites: Vec<String>,
    /// Configure restore drills (they need PostgreSQL's server binaries).
    pub drill: bool,
    /// The state folder.
    pub state_dir: PathBuf,
}

impl Options {
    /// `path` (a host path) inside the root.
    pub fn at_root(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.root.join(path),
        }
    }
}

/// One thing setup does.
#[derive(Debug, Clone)]
pub enum Action {
    /// A folder with this mode, owned by the service user.
    CreateDir {
        /// Host path.
        path: PathBuf,
        /// Mode bits.
        mode: u32,
    },
    /// A new random repository password (mode 0600, owned by the service user).
    WritePassword {
        /// Host path.
        path: PathBuf,
        /// The site it is for.
        site: String,
    },
    /// The config file (mode 0600, owned by the service user).
    WriteConfig {
        /// Host path.
        path: PathBuf,
        /// Its text.
        text: String,
    },
    /// An ACL entry giving the service user access to a folder of another program (the
    /// Discourse backups folder: read; node_exporter's textfile folder: write), with `setfacl`.
    Grant {
        /// Host path.
        path: PathBuf,
        /// `r` (read and traverse, also for files created later) or `w` (write), `x` (only
        /// traverse, for the folders above).
        access: char,
    },
    /// A new repository.
    InitRepository {
        /// The site.
        site: String,
        /// Its location as written in the config.
        location: String,
        /// Its password file (host path).
        password_file: PathBuf,
    },
}

/// A step and whether its result is already there.
#[derive(Debug, Clone)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// `Some(reason)`: nothing to do (e.g. "exists").
    pub done: Option<String>,
}

impl Step {
    /// One line for the admin: what the step does (or would do).
    pub fn describe(&self) -> String {
        match &self.action {
            Action::CreateDir { path, mode } => {
                format!("create folder {} (mode {mode:04o})", path.display())
            }
            Action::WritePassword { path, site } => format!(
                "write a new random repository password for {site} to {} (mode 0600)",
                path.display()
            ),
            Action::WriteConfig { path, .. } => format!("write {} (mode 0600)", path.display()),
            Action::Grant { path, access } => format!(
                "let the dvault user {} {} (ACL)",
                match access {
                    'r' => "read the backups in",
                    'w' => "write its metrics into",
                    _ => "pass through",
                },
                path.display()
            ),
            Action::InitRepository { site, location, .. } => format!(
                "create the repository of {site} at {}",
                crate::redact::string(location)
            ),
        }
    }
}

/// The whole plan: the sites found and the steps.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The sites that will be configured.
    pub sites: Vec<SiteChoice>,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Things the admin should know (a site missing from an existing config, ...).
    pub notes: Vec<String>,
}
