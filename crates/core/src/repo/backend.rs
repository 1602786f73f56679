//! Repository locations in restic's notation, and the storage backends behind them.
//!
//! - a plain path: a local folder;
//! - `rest:http://host:port/path`: a rest-server (also `rclone serve restic`); a login comes
//!   from the URL, a file or the environment (see [`super::rest_auth`]);
//! - `s3:http://host:port/bucket[/prefix]`: S3-compatible storage (cargo feature `s3`); keys
//!   come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, the region from
//!   `AWS_DEFAULT_REGION` (default `us-east-1`), as restic reads them.
//!
//! A location shows (`Display`, `Debug`) with any password in it replaced by `***`
//! ([`crate::redact`]): messages, reports, the ledger and logs all print it that way.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustic_core::{RepositoryBackends, WriteBackend};

use super::RepoError;

/// Where a repository lives. `Debug` and `Display` hide passwords.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on this machine.
    Local(PathBuf),
    /// A rest-server URL (`http://host:port/path`).
    Rest(String),
    /// An S3 endpoint, bucket and key prefix.
    S3 {
        /// `http(s)://host:port`.
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: String,
    },
}

impl Location {
    /// Parses restic's notation (see the module docs).
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        let bad = |why: &str| RepoError::Location {
            location: crate::redact::string(s),
            reason: why.to_string(),
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if let Some(url) = s.strip_prefix("rest:") {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad("a rest: location needs an http:// or https:// URL"));
            }
            return Ok(Self::Rest(url.to_string()));
        }
        if let Some(rest) = s.strip_prefix("s3:") {
            let (scheme, hostpath) = rest
                .split_once("://")
                .ok_or_else(|| bad("expected s3:http(s)://host:port/bucket[/prefix]"))?;
            let (host, path) = hostpath
                .split_once('/')
                .ok_or_else(|| bad("an s3: location needs a bucket after the host"))?;
            let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
            if host.is_empty() || bucket.is_empty() {
                return Err(bad("expected s3:http(s)://host:port/bucket[/prefix]"));
            }
            return Ok(Self::S3 {
                endpoint: format!("{scheme}://{host}"),
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some((scheme, _)) = s.split_once(':') {
            if !scheme.contains('/')
                && ["sftp", "b2", "azure", "gs", "swift", "rclone"].contains(&scheme)
            {
                return Err(bad(
                    "this backend is not supported by dvault (use a path, rest: or s3:)",
                ));
            }
        }
        Ok(Self::Local(PathBuf::from(s)))
    }

    /// The location in one spelling, for what is keyed by it (this host's lock): a folder
    /// made absolute with symbolic links resolved (as far as it exists), a URL with lower-case
    /// scheme and host, no default port, no user name or password and no trailing `/`. So
    /// `--repo prepo`, `--repo ./prepo/` and `--repo /abs/prepo` are one repository.
    pub fn canonical(&self) -> String {
        match self {
            Self::Local(p) => canonical_path(p).display().to_string(),
            Self::Rest(u) => format!("rest:{}", canonical_url(u)),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let mut s = format!("s3:{}/{bucket}", canonical_url(endpoint));
                if !prefix.is_empty() {
                    s.push('/');
                    s.push_str(prefix);
                }
                s
            }
        }
    }

    /// Turns the location into rustic's backends, with every credential source of `cfg`: S3
    /// keys from `s3_credentials_file` when given, else from the environment; a REST login
    /// from the URL, `rest_password_file` or the environment (see [`super::rest_auth`]).
    pub(crate) fn backends_for(
        &self,
        cfg: &super::RepoConfig,
    ) -> Result<RepositoryBackends, RepoError> {
        self.backends_with(
            cfg.s3_credentials_file.as_deref(),
            cfg.rest_password_file.as_deref(),
        )
    }

    fn backends_with(
        &self,
        s3_credentials_file: Option<&Path>,
        rest_password_file: Option<&Path>,
    ) -> Result<RepositoryBackends, RepoError> {
        let be: Arc<dyn WriteBackend> = match self {
            Self::Local(p) => Arc::new(
                rustic_backend::local::LocalBackend::new(p.to_string_lossy(), Vec::new())
                    .map_err(|e| RepoError::rustic(self, "opening the local folder", &e))?,
            ),
            Self::Rest(url) => {
                // The only place the login is put into the URL: rustic_backend's client.
                let url = super::rest_auth::url_with_credentials(url, rest_password_file)?;
                super::rest_auth::refused_login(&url, &self.to_string())?;
                Arc::new(
                    rustic_backend::rest::RestBackend::new(url, Vec::new()).map_err(|e| {
                        RepoError::rustic(self, "connecting to the REST server", &e)
                    })?,
                )
            }
            #[cfg(feature = "s3")]
            Self::S3 { .. } => {
                let target = self.s3_target(s3_credentials_file)?;
                Arc::new(
                    rustic_backend::opendal::OpenDALBackend::new("s3", target.opendal_options())
                        .map_err(|e| RepoError::Location {
                            location: self.to_string(),
                            reason: crate::s3::explain(
                                &target,
                                "cannot set up the S3 client",
                                &e.display_log(),
                            ),
                        })?,
                )
            }
            #[cfg(not(feature = "s3"))]
            Self::S3 { .. } => {
                let _ = s3_credentials_file;
                return Err(RepoError::Location {
                    location: self.to_string(),
                    reason: "this dvault was built without S3 support; build it with \
                             `cargo build --release --features s3`"
                        .to_string(),
                });
            }
        };
        Ok(RepositoryBackends::new(be, None))
    }

    /// The bucket, prefix, region and key of an `s3:` location.
    pub fn s3_target(
        &self,
        s3_credentials_file: Option<&Path>,
    ) -> Result<crate::s3::Target, RepoError> {
        let Self::S3 {
            endpoint,
            bucket,
            prefix,
        } = self
        else {
            return Err(RepoError::Location {
                location: self.to_string(),
                reason: "not an s3: location".to_string(),
            });
        };
        let credentials = crate::s3::Credentials::load(s3_credentials_file).map_err(|reason| {
            RepoError::Location {
                location: self.to_string(),
                reason,
            }
        })?;
        Ok(crate::s3::Target {
            endpoint: Some(endpoint.clone()),
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            region: crate::s3::region_from_env(),
            credentials,
        })
    }
}

/// `p` absolute, with symbolic links resolved in the part that exists (a repository that
/// `init` has not created yet keeps its missing tail as written).
pub fn canonical_path(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut missing = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(cur) {
            return missing.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// A URL in one spelling (see [`Location::canonical`]); unparsable text stays as it is.
fn canonical_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => u.trim_end_matches('/').to_string(),
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Rest(u) => write!(f, "rest:{}", crate::redact::text(u)),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } if prefix.is_empty() => {
                write!(f, "s3:{}/{bucket}", crate::redact::text(endpoint))
            }
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } => write!(f, "s3:{}/{bucket}/{prefix}", crate::redact::text(endpoint)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_restic_notation() {
        assert_eq!(
            Location::parse("/srv/repo").unwrap(),
            Location::Local("/srv/repo".into())
        );
        assert_eq!(
            Location::parse("rest:http://127.0.0.1:8000/r").unwrap(),
            Location::Rest("http://127.0.0.1:8000/r".into())
        );
        let s3 = Location::parse("s3:http://127.0.0.1:3900/bkt/some/prefix").unwrap();
        assert_eq!(
            s3,
            Location::S3 {
                endpoint: "http://127.0.0.1:3900".into(),
                bucket: "bkt".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(s3.to_string(), "s3:http://127.0.0.1:3900/bkt/some/prefix");
        assert!(Location::parse("s3:http://127.0.0.1:3900").is_err());
        assert!(Location::parse("rest:ftp://x").is_err());
        assert!(Location::parse("sftp:host:/x").is_err());
    }

    #[test]
    fn a_location_never_shows_its_password() {
        let l = Location::parse("rest:http://backup:hunter2@127.0.0.1:8000/r").unwrap();
        assert_eq!(l.to_string(), "rest:http://backup:***@127.0.0.1:8000/r");
        assert!(!format!("{l:?}").contains("hunter2"));
        let err = Location::parse("rest:ftp://u:hunter2@x/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn one_repository_has_one_canonical_spelling() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("prepo");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let canon = |s: &str| Location::parse(s).unwrap().canonical();
        let want = std::fs::canonicalize(&real).unwrap().display().to_string();
        for s in ["prepo", "prepo/", "./prepo", "link", "link/"] {
            assert_eq!(canon(&d.path().join(s).display().to_string()), want, "{s}");
        }
        // Relative to the working folder.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            canon("not-yet-made"),
            std::fs::canonicalize(&cwd)
                .unwrap()
                .join("not-yet-made")
                .display()
                .to_string()
        );
        assert_eq!(
            canon("rest:http://user:secret@LocalHost:80/r/"),
            canon("rest:http://localhost/r")
        );
        assert_eq!(canon("rest:http://localhost/r"), "rest:http://localhost/r");
        assert_eq!(
            canon("s3:http://localhost:3900/bkt/p/"),
            canon("s3:http://LOCALHOST:3900/bkt/p")
        );
    }
}
