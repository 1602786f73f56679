//! S3 connection settings shared by the repository backend (`s3:` locations) and the
//! backup-bucket source: where the keys come from, the region, and the OpenDAL S3 service both
//! use (cargo feature `s3`).
//!
//! Keys never come from the command line: either a credentials file (two lines, access key id
//! then secret, as Discourse's settings hold them) or restic's environment variables
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. The region is `AWS_DEFAULT_REGION` (restic's
//! name), else `AWS_REGION`, else `us-east-1`.

use std::fmt;
use std::path::Path;

/// Environment variable with the access key id.
pub const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
/// Environment variable with the secret access key.
pub const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
/// Region used when none is configured (what AWS and most S3-compatible stores accept).
pub const DEFAULT_REGION: &str = "us-east-1";

/// An S3 access key. `Debug` hides the secret so that it cannot end up in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (not secret; shown in errors to say which key was refused).
    pub access_key_id: String,
    secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// A key from its two parts.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }

    /// The secret, for the signer only.
    pub fn secret(&self) -> &str {
        &self.secret_access_key
    }

    /// Reads a credentials file: the first non-empty line is the access key id, the next one
    /// the secret (surrounding blanks ignored).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = crate::secret_file::check(path, "S3 credentials file")
            .and_then(|()| std::fs::read_to_string(path))
            .map_err(|e| format!("S3 credentials file {}: {e}", path.display()))?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        match (lines.next(), lines.next()) {
            (Some(id), Some(secret)) => Ok(Self::new(id, secret)),
            _ => Err(format!(
                "S3 credentials file {}: expected two lines, the access key id and then the \
                 secret access key",
                path.display()
            )),
        }
    }

    /// Reads `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, naming the one that is missing.
    pub fn from_env() -> Result<Self, String> {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    format!(
                        "{k} is not set (S3 keys come from {ACCESS_KEY_ENV} and \
                         {SECRET_KEY_ENV}, or from a credentials file in the config)"
                    )
                })
        };
        Ok(Self::new(get(ACCESS_KEY_ENV)?, get(SECRET_KEY_ENV)?))
    }

    /// The file when one is named, else the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        match file {
            Some(f) => Self::from_file(f),
            None => Self::from_env(),
        }
    }
}

/// The region from `AWS_DEFAULT_REGION`, else `AWS_REGION`, else [`DEFAULT_REGION`].
pub fn region_from_env() -> String {
    ["AWS_DEFAULT_REGION", "AWS_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// Where a bucket is and how to sign for it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http(s)://host:port`; `None`: AWS itself (the endpoint follows from the region).
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Signing region.
    pub region: String,
    /// The key.
    pub credentials: Credentials,
}

impl Target {
    /// `endpoint/bucket/prefix` for messages (never the secret).
    pub fn describe(&self) -> String {
        let endpoint = self.endpoint.as_deref().unwrap_or("AWS S3");
        let mut s = format!("{endpoint} bucket {}", self.bucket);
        if !self.prefix.is_empty() {
            s.push_str(&format!(" prefix {}/", self.prefix));
        }
        s
    }

    /// OpenDAL's S3 service options. Path-style requests (what Garage, MinIO and restic use);
    /// no `~/.aws` files, environment or EC2 metadata lookups behind our back: the key given
    /// here is the only one tried, so a refused key is reported as refused.
    pub fn opendal_options(&self) -> std::collections::BTreeMap<String, String> {
        let mut o = std::collections::BTreeMap::new();
        if let Some(e) = &self.endpoint {
            o.insert("endpoint".into(), e.clone());
        }
        o.insert("bucket".into(), self.bucket.clone());
        o.insert("root".into(), format!("/{}", self.prefix));
        o.insert("region".into(), self.region.clone());
        o.insert(
            "access_key_id".into(),
            self.credentials.access_key_id.clone(),
        );
        o.insert(
            "secret_access_key".into(),
            self.credentials.secret().to_string(),
        );
        o.insert("disable_config_load".into(), "true".into());
        o.insert("disable_ec2_metadata".into(), "true".into());
        o
    }
}

/// A blocking OpenDAL operator for the target, on a runtime of its own: dvault is synchronous,
/// and OpenDAL's blocking API needs a Tokio runtime to drive the HTTP client.
#[cfg(feature = "s3")]
pub fn blocking_operator(target: &Target) -> Result<opendal::blocking::Operator, String> {
    use std::sync::OnceLock;
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let rt = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the S3 client's runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let op = opendal::Operator::via_iter("s3", target.opendal_options())
        .map_err(|e| format!("{}: bad S3 settings: {e}", target.describe()))?
        .layer(
            opendal::layers::RetryLayer::new()
                .with_max_times(3)
                .with_jitter(),
        );
    let _guard = rt.enter();
    opendal::blocking::Operator::new(op)
        .map_err(|e| format!("{}: cannot create the S3 client: {e}", target.describe()))
}

/// What an S3 failure most likely means, told from the status and error names in OpenDAL's
/// message (it carries the HTTP response parts, not the XML body).
pub fn hint(detail: &str) -> Option<&'static str> {
    let lower = detail.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&[
        "permissiondenied",
        "status: 403",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "accessdenied",
    ]) {
        Some(
            "the S3 server refused the access key (check AWS_ACCESS_KEY_ID / \
             AWS_SECRET_ACCESS_KEY or the credentials file, and the key's rights on this bucket)",
        )
    } else if has(&["nosuchbucket"]) {
        Some("no such bucket on this endpoint")
    } else if has(&["status: 400", "authorizationheadermalformed"]) {
        Some(
            "the S3 server rejected the request (HTTP 400), most often a wrong region: set \
             AWS_DEFAULT_REGION (or the config's region) to the store's region",
        )
    } else if has(&[
        "connection refused",
        "error sending request",
        "dns error",
        "timed out",
    ]) {
        Some("cannot reach the S3 endpoint")
    } else {
        None
    }
}

/// Turns an S3 failure into one line that names the endpoint, bucket and, for a refused key,
/// the key id, and says what to check.
pub fn explain(target: &Target, what: &str, detail: &str) -> String {
    match hint(detail) {
        Some(h) if h.contains("refused") => format!(
            "{}: {what}: {h}; key {}; {detail}",
            target.describe(),
            target.credentials.access_key_id
        ),
        Some(h) => format!("{}: {what}: {h}; {detail}", target.describe()),
        None => format!("{}: {what}: {detail}", target.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_needs_two_lines_and_debug_hides_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("creds");
        std::fs::write(&f, "\n  GKabc  \nsupersecret\n").unwrap();
        let c = Credentials::from_file(&f).unwrap();
        assert_eq!(c.access_key_id, "GKabc");
        assert_eq!(c.secret(), "supersecret");
        assert!(!format!("{c:?}").contains("supersecret"));
        std::fs::write(&f, "GKabc\n").unwrap();
        let e = Credentials::from_file(&f).unwrap_err();
        assert!(
            e.contains(&f.display().to_string()) && e.contains("two lines"),
            "{e}"
        );
    }
}
