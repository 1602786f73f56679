//! The `[sites.NAME.source.ssh]` table: where the forum's backups folder is reachable over SFTP
//! and how the forum host proves who it is.
//!
//! Kept beside the source rather than in `config.rs` so that the SSH options, their parsing and
//! their checks live in one place; `config.rs` only holds the field and calls [`SshSourceConfig::validate`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A backups folder on another host, read over SFTP (the pull topology: the forum host holds no
/// backup credentials; see docs/threat-model.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSourceConfig {
    /// `sftp://USER@HOST[:PORT]/PATH`: the account, the host and the backups folder as that
    /// account sees it (inside a chroot, e.g. `/default`).
    pub location: String,
    /// The private key; absent: the keys `ssh` finds itself (ssh-agent through `SSH_AUTH_SOCK`,
    /// then `~/.ssh/id_*`). A key with a passphrase must be loaded into an agent: `ssh` runs in
    /// batch mode and never asks.
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// The known_hosts file that must hold the host's key; absent: `ssh`'s own files
    /// (`~/.ssh/known_hosts`, `/etc/ssh/ssh_known_hosts`). An unknown or changed key is refused.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// The host key's fingerprint as `ssh-keygen -lf` prints it (`SHA256:...`), instead of a
    /// known_hosts file.
    #[serde(default)]
    pub host_key_fingerprint: Option<String>,
    /// An `ssh_config` file for this host (ProxyJump, ciphers, ...); absent: `ssh`'s defaults.
    /// It cannot weaken the host key check: dvault's own options come first and win.
    #[serde(default)]
    pub ssh_config: Option<PathBuf>,
    /// Bytes per second at most, e.g. `"5 MiB"`; absent: no limit.
    #[serde(default, deserialize_with = "de_rate")]
    pub bandwidth_limit: Option<u64>,
    /// Give up connecting after this long.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "crate::config::de_duration"
    )]
    pub connect_timeout: Duration,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(30)
}

fn de_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim();
    let size: bytesize::ByteSize = t.parse().map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid bandwidth {text:?}: {e} (expected e.g. \"500 KiB\" or \"5 MiB\", per second)"
        ))
    })?;
    if size.as_u64() == 0 {
        return Err(serde::de::Error::custom(
            "bandwidth_limit must be more than 0 bytes per second (leave it out for no limit)",
        ));
    }
    Ok(Some(size.as_u64()))
}

/// The parts of [`SshSourceConfig::location`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Login name on the forum host.
    pub user: String,
    /// Host name or address (no brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The backups folder as the account sees it.
    pub folder: String,
}

impl Location {
    /// `USER@HOST:PORT`, for messages.
    pub fn describe(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}@{host}:{}", self.user, self.port)
    }

    /// `sftp://USER@HOST:PORT/FOLDER/FILE`, recorded as a snapshot's source.
    pub fn origin(&self, file: &str) -> String {
        format!(
            "sftp://{}{}/{file}",
            self.describe(),
            self.folder.trim_end_matches('/')
        )
    }
}

impl SshSourceConfig {
    /// Parses and checks [`Self::location`].
    pub fn location(&self) -> Result<Location, String> {
        let bad = |why: &str| {
            format!(
                "{:?}: {why} (expected sftp://USER@HOST[:PORT]/PATH)",
                self.location
            )
        };
        let url = url::Url::parse(&self.location).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "sftp" {
            return Err(bad("the scheme must be sftp://"));
        }
        if url.password().is_some() {
            return Err(bad(
                "a password in the location is not supported; use a key (identity_file or the agent)",
            ));
        }
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8()
            .map_err(|_| bad("the user name is not UTF-8"))?
            .to_string();
        if user.is_empty() {
            return Err(bad("the user name is missing"));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(bad("the host is missing")),
        };
        // Both end up as arguments of `ssh`: one starting with '-' would be read as an option.
        if host.starts_with('-') || user.starts_with('-') {
            return Err(bad("the user and host must not start with '-'"));
        }
        let folder = percent_encoding::percent_decode_str(url.path())
            .decode_utf8()
            .map_err(|_| bad("the path is not UTF-8"))?
            .to_string();
        if folder.is_empty() {
            return Err(bad("the path of the backups folder is missing"));
        }
        Ok(Location {
            user,
            host,
            port: url.port().unwrap_or(22),
            folder,
        })
    }

    /// Checks what the types cannot; the message names the problem, the caller the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.location().map_err(|m| ("location".to_string(), m))?;
        if self.known_hosts.is_some() && self.host_key_fingerprint.is_some() {
            return Err((
                "host_key_fingerprint".into(),
                "give either known_hosts or host_key_fingerprint, not both".into(),
            ));
        }
        if let Some(fp) = &self.host_key_fingerprint {
            super::hostkey::parse_fingerprint(fp)
                .map_err(|m| ("host_key_fingerprint".to_string(), m))?;
        }
        for (key, path) in [
            ("identity_file", &self.identity_file),
            ("known_hosts", &self.known_hosts),
            ("ssh_config", &self.ssh_config),
        ] {
            if let Some(p) = path {
                super::command::check_option_path(p).map_err(|m| (key.to_string(), m))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(location: &str) -> SshSourceConfig {
        SshSourceConfig {
            location: location.into(),
            identity_file: None,
            known_hosts: None,
            host_key_fingerprint: None,
            ssh_config: None,
            bandwidth_limit: None,
            connect_timeout: default_connect_timeout(),
        }
    }

    #[test]
    fn location_gives_user_host_port_and_folder() {
        let l = cfg("sftp://dvault@forum.example.com:2222/default")
            .location()
            .unwrap();
        assert_eq!(
            l,
            Location {
                user: "dvault".into(),
                host: "forum.example.com".into(),
                port: 2222,
                folder: "/default".into()
            }
        );
        assert_eq!(
            l.origin("a.tar"),
            "sftp://dvault@forum.example.com:2222/default/a.tar"
        );
        let l = cfg("sftp://b@[::1]/x").location().unwrap();
        assert_eq!((l.host.as_str(), l.port), ("::1", 22));
    }

    #[test]
    fn location_without_user_or_with_password_or_option_like_host_is_refused() {
        for (loc, why) in [
            ("sftp://host/x", "user name is missing"),
            ("sftp://u:pw@host/x", "password"),
            ("ssh://u@host/x", "scheme"),
            ("sftp://-oProxyCommand=x@host/x", "must not start with '-'"),
            ("sftp://u@host", "path of the backups folder"),
        ] {
            let e = cfg(loc).location().unwrap_err();
            assert!(e.contains(why), "{loc}: {e}");
        }
    }
}
