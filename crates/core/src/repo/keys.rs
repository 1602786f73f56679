//! The repository's keys (`dvault key list/add/remove/passwd`), restic's `key` command.
//!
//! Every key file holds the same master key, encrypted with one password; adding a key adds a
//! password, removing one takes it away. The passwords come from a file or the environment,
//! never from the command line (see [`new_password`]).
//!
//! The ledger (see [`super::snapshot_ledger`]) records each key file's SHA-256, because a key
//! file's host, user and time are not authenticated: `dvault check` reports a key file that
//! changed or disappeared. A key change made here is on purpose, so the ledger's record is
//! brought up to date afterwards (when this host keeps one for the repository).

use std::path::{Path, PathBuf};

use rustic_core::{Credentials, FileType, Id, KeyOptions};
use serde::{Deserialize, Serialize};

use super::repo_lock::LockKind;
use super::snapshot_ledger::SnapshotLedger;
use super::{password, Password, Repo, RepoError};

/// Environment variable naming a file with the new password (`key add`, `key passwd`).
pub const ENV_NEW_PASSWORD_FILE: &str = "DVAULT_NEW_PASSWORD_FILE";
/// Environment variable holding the new password itself.
pub const ENV_NEW_PASSWORD: &str = "DVAULT_NEW_PASSWORD";

/// One key of the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key file's id (full hex).
    pub id: String,
    /// Whether the password given opened this key.
    pub current: bool,
    /// Host recorded in the key file (not authenticated).
    pub host: Option<String>,
    /// User recorded in the key file (not authenticated).
    pub user: Option<String>,
    /// Creation time recorded in the key file (not authenticated).
    pub created: Option<String>,
}

/// The key file's plain JSON fields (the rest is the encrypted master key).
#[derive(Deserialize)]
struct KeyFileFields {
    hostname: Option<String>,
    username: Option<String>,
    created: Option<String>,
}

/// The new password: `file`, else `DVAULT_NEW_PASSWORD_FILE`, else `DVAULT_NEW_PASSWORD`. A
/// file must read the same for the stock restic (one line, no surrounding spaces), so that
/// restic opens the repository with it too.
pub fn new_password(file: Option<&Path>) -> Result<Password, RepoError> {
    let file = file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(ENV_NEW_PASSWORD_FILE).map(PathBuf::from));
    if let Some(f) = file {
        return password::resolve_for_new_repository(Some(&f));
    }
    match std::env::var(ENV_NEW_PASSWORD) {
        Ok(p) if !p.is_empty() => Ok(Password::new(p)),
        _ => Err(RepoError::Invalid(format!(
            "no new password: give --new-password-file, {ENV_NEW_PASSWORD_FILE} or \
             {ENV_NEW_PASSWORD}"
        ))),
    }
}

impl Repo {
    /// Every key of the repository, oldest first when they record their time.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, RepoError> {
        let current = self.current_key()?;
        let be = self.cfg.location.backends_for(&self.cfg)?.repository();
        let ids = be
            .list(FileType::Key)
            .map_err(self.err("listing the key files"))?;
        let mut out = Vec::new();
        for id in ids {
            let hex = id.to_hex().as_str().to_string();
            let bytes = be
                .read_full(FileType::Key, &id)
                .map_err(self.err(&format!("reading keys/{hex}")))?;
            let f: Option<KeyFileFields> = serde_json::from_slice(&bytes).ok();
            out.push(KeyInfo {
                current: current.as_deref() == Some(hex.as_str()),
                id: hex,
                host: f.as_ref().and_then(|f| f.hostname.clone()),
                user: f.as_ref().and_then(|f| f.username.clone()),
                created: f.and_then(|f| f.created),
            });
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn current_key(&self) -> Result<Option<String>, RepoError> {
        self.with_open(|r| Ok(r.key_id().map(|k| k.to_hex().as_str().to_string())))
    }

    /// Adds a key for `new` (recording `host` and `user`, default this host and user) and
    /// returns its id.
    pub fn add_key(
        &self,
        new: &Password,
        host: Option<String>,
        user: Option<String>,
    ) -> Result<String, RepoError> {
        let _lock = self.lock(LockKind::Append)?;
        let opts = KeyOptions::default()
            .hostname(host.unwrap_or_else(crate::snapshot::hostname))
            .username(user.or_else(|| std::env::var("USER").ok()))
            .with_created(true);
        let id = self.with_open(|r| {
            r.add_key(new.expose(), &opts)
                .map_err(self.err("adding a key"))
        })?;
        self.refresh_ledger_keys();
        Ok(id.to_hex().as_str().to_string())
    }

    /// Removes the key whose id starts with `prefix`. The key that opened the repository
    /// cannot be removed (use `key passwd`, or open with another key).
    pub fn remove_key(&self, prefix: &str) -> Result<String, RepoError> {
        let _lock = self.lock(LockKind::Exclusive)?;
        let keys = self.keys()?;
        let found: Vec<_> = keys.iter().filter(|k| k.id.starts_with(prefix)).collect();
        let key = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(RepoError::Invalid(format!(
                    "no key `{prefix}` in {} (see `dvault key list`)",
                    self.cfg.location
                )))
            }
            _ => {
                return Err(RepoError::Invalid(format!(
                    "key id `{prefix}` is ambiguous ({} keys match); give more digits",
                    found.len()
                )))
            }
        };
        if key.current {
            return Err(RepoError::Invalid(format!(
                "key {} is the one the given password opened; a repository is never left \
                 without the key in use: open it with another key's password to remove this \
                 one, or change its password with `dvault key passwd`",
                &key.id[..8]
            )));
        }
        self.delete_key_file(&key.id)?;
        self.refresh_ledger_keys();
        Ok(key.id.clone())
    }

    /// Replaces the key that opened the repository by one for `new`: adds the new key, proves
    /// that `new` opens the repository, and only then removes the old key. Returns the old and
    /// the new key's ids.
    pub fn change_password(&self, new: &Password) -> Result<(String, String), RepoError> {
        let _lock = self.lock(LockKind::Exclusive)?;
        let old = self.current_key()?.ok_or_else(|| {
            RepoError::Invalid("the repository was not opened with a password".into())
        })?;
        let old_info = self.keys()?.into_iter().find(|k| k.id == old);
        let opts = KeyOptions::default()
            .hostname(
                old_info
                    .as_ref()
                    .and_then(|k| k.host.clone())
                    .unwrap_or_else(crate::snapshot::hostname),
            )
            .username(old_info.and_then(|k| k.user))
            .with_created(true);
        let new_id = self.with_open(|r| {
            r.add_key(new.expose(), &opts)
                .map_err(self.err("adding the key with the new password"))
        })?;
        let new_id = new_id.to_hex().as_str().to_string();
        let skip = crate::store::restic::wrapped_backend::SkipSet::default();
        let opened = super::restic::raw_repo(&self.cfg, None, &skip)?
            .open(&Credentials::password(new.expose()))
            .map_err(self.err("opening with the new password"))?;
        let opened_id = opened.key_id().map(|k| k.to_hex().as_str().to_string());
        if opened_id.as_deref() != Some(new_id.as_str()) {
            return Err(RepoError::Invalid(format!(
                "the new password opened key {} instead of the new key {}; the old key {} is \
                 kept (another key has the same password?)",
                opened_id.as_deref().unwrap_or("-"),
                &new_id[..8],
                &old[..8]
            )));
        }
        self.delete_key_file(&old)?;
        self.refresh_ledger_keys();
        Ok((old, new_id))
    }

    fn delete_key_file(&self, hex: &str) -> Result<(), RepoError> {
        let id: Id = hex
            .parse()
            .map_err(|_| RepoError::Invalid(format!("`{hex}` is not a key id")))?;
        let be = self.cfg.location.backends_for(&self.cfg)?.repository();
        be.remove(FileType::Key, &id, false)
            .map_err(|e| RepoError::rustic(&self.cfg.location, &format!("removing keys/{hex}"), &e))
    }

    /// Records the key files as they are now in this host's ledger of the repository, when
    /// there is one: the change was made on purpose, `check` must not report it.
    fn refresh_ledger_keys(&self) {
        let Some(path) = self.ledger_path().filter(|p| p.exists()) else {
            return;
        };
        let r = SnapshotLedger::load(&path).and_then(|mut l| {
            l.keys = self.key_file_hashes()?;
            l.save(&path)
        });
        if let Err(e) = r {
            tracing::warn!(
                "the keys were changed, but the ledger {} was not updated ({e:#}); `dvault \
                 check` will report the changed key files until it is",
                path.display()
            );
        }
    }
}
