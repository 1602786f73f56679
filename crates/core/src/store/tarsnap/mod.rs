//! Tarsnap as a store: the peeled backup goes to `tarsnap` as one tar stream
//! ([`peel::tarstream`]), so Tarsnap's own deduplication sees the plain dump and uploads instead
//! of a compressed file that changes completely every day.
//!
//! dvault drives the `tarsnap` client as a child process and never touches its keys:
//! - backup: `tarsnap -c -f ARCHIVE --keyfile WRITE_KEY [--cachedir DIR] @-`, the stream on its
//!   stdin (a write-only key from `tarsnap-keymgmt -w` is enough);
//! - restore: `tarsnap -r -f ARCHIVE --keyfile KEY`, which writes the archive back as a tar
//!   stream on stdout (`-x -O` would concatenate the members' contents and lose where each
//!   ends), piped into [`peel::tarstream::rebuild_from_tar`];
//! - list: `tarsnap --list-archives --keyfile KEY`; delete: `tarsnap -d -f ARCHIVE --keyfile KEY`
//!   (both need a key with read or delete rights: the admin key, which the backup host need
//!   not have).
//!
//! Archive names are `PREFIX SITE - YYYY-MM-DD-HHMMSS` (the Discourse backup's own time), so the
//! name says which forum and which backup, and retention can sort without reading archives.
//! `docs/tarsnap.md` has the commands for the keys and a config example.
//!
//! The client is this file; `site.rs` is the [`Store`](super::Store) of a Tarsnap site and
//! `ledger.rs` what a host with a write-only key remembers of its archives.

pub mod ledger;
mod site;

pub(crate) use site::TarsnapSiteStore;

use std::ffi::OsString;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

pub use crate::config::TarsnapConfig;

/// What a backup to Tarsnap did.
#[derive(Debug, Clone)]
pub struct TarsnapBackup {
    /// The archive written.
    pub archive: String,
    /// Size and SHA-256 of the original backup file (in the stream's recipe).
    pub original: peel::Digest,
    /// The peel report of the expansion.
    pub report: peel::Report,
}

/// A Tarsnap account (one key set) used as a store.
#[derive(Debug, Clone)]
pub struct TarsnapStore {
    cfg: TarsnapConfig,
}

/// Length of `YYYY-MM-DD-HHMMSS`.
const TIME_LEN: usize = 17;

/// Whether `s` is a `YYYY-MM-DD-HHMMSS` time.
fn is_time(s: &str) -> bool {
    s.len() == TIME_LEN
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 10 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// The `YYYY-MM-DD-HHMMSS` time in a Discourse backup file name
/// (`<site>-2026-01-01-033014-v2025...`), if there is one.
pub fn time_from_backup_name(name: &str) -> Option<String> {
    (0..name.len().saturating_sub(TIME_LEN - 1))
        .filter(|&i| name.is_char_boundary(i) && name.is_char_boundary(i + TIME_LEN))
        .map(|i| &name[i..i + TIME_LEN])
        .find(|s| is_time(s))
        .map(str::to_string)
}

impl TarsnapStore {
    /// A store with `cfg`.
    pub fn new(cfg: TarsnapConfig) -> Self {
        TarsnapStore { cfg }
    }

    /// The settings it was made with.
    pub fn config(&self) -> &TarsnapConfig {
        &self.cfg
    }

    fn binary(&self) -> OsString {
        self.cfg
            .binary
            .clone()
            .map_or_else(|| OsString::from("tarsnap"), PathBuf::into_os_string)
    }

    fn admin_key(&self, what: &str) -> Result<&Path> {
        self.cfg.admin_keyfile.as_deref().with_context(|| {
            format!(
                "tarsnap: {what} needs a key with read/delete rights (admin_keyfile); this \
                 host has only the write key {}",
                self.cfg.keyfile.display()
            )
        })
    }

    /// The archive name for `site`'s backup made at `time` (`YYYY-MM-DD-HHMMSS`).
    pub fn archive_name(&self, site: &str, time: &str) -> Result<String> {
        if site.is_empty()
            || !site
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            bail!("site name {site:?}: only letters, digits, '.', '_' and '-' may go into a tarsnap archive name");
        }
        if !is_time(time) {
            bail!("backup time {time:?}: expected YYYY-MM-DD-HHMMSS");
        }
        Ok(format!("{}{site}-{time}", self.cfg.prefix))
    }

    /// The site's archives among `names`, with their times, oldest first.
    pub fn site_archives(&self, site: &str, names: &[String]) -> Vec<(String, String)> {
        let start = format!("{}{site}-", self.cfg.prefix);
        let mut v: Vec<(String, String)> = names
            .iter()
            .filter_map(|n| {
                let time = n.strip_prefix(&start)?;
                is_time(time).then(|| (time.to_string(), n.clone()))
            })
            .collect();
        v.sort();
        v
    }

    /// `--keyfile KEY`, and `--cachedir DIR` for the modes whose synopsis has it (`-c`, `-d`).
    fn common(&self, args: &mut Vec<OsString>, key: &Path, cache: bool) {
        args.push("--keyfile".into());
        args.push(key.as_os_str().to_owned());
        if let Some(dir) = self.cfg.cachedir.as_ref().filter(|_| cache) {
            args.push("--cachedir".into());
            args.push(dir.as_os_str().to_owned());
        }
    }

    /// Arguments of `tarsnap` that store stdin as `archive`.
    pub fn backup_args(&self, archive: &str) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-c".into(), "-f".into(), archive.into()];
        self.common(&mut a, &self.cfg.keyfile, true);
        a.push("@-".into());
        a
    }

    /// Arguments of `tarsnap` that write `archive` as a tar stream to stdout.
    pub fn restore_args(&self, archive: &str) -> Result<Vec<OsString>> {
        let mut a: Vec<OsString> = vec!["-r".into(), "-f".into(), archive.into()];
        self.common(&mut a, self.admin_key("restore")?, false);
        Ok(a)
    }

    /// Arguments of `tarsnap` that list the archives.
    pub fn list_args(&self) -> Result<Vec<OsString>> {
        let mut a: Vec<OsString> = vec!["--list-archives".into()];
        self.common(&mut a, self.admin_key("listing archives")?, false);
        Ok(a)
    }

    /// Arguments of `tarsnap` that delete `archive`.
    pub fn delete_args(&self, archive: &str) -> Result<Vec<OsString>> {
        let mut a: Vec<OsString> = vec!["-d".into(), "-f".into(), archive.into()];
        self.common(&mut a, self.admin_key("deleting archives")?, true);
        Ok(a)
    }

    fn spawn(&self, args: &[OsString], stdin: Stdio, stdout: Stdio) -> Result<(Child, Stderr)> {
        let mut child = Command::new(self.binary())
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "running {} (is the tarsnap client installed?)",
                    self.binary().to_string_lossy()
                )
            })?;
        let stderr = Stderr::collect(child.stderr.take());
        Ok((child, stderr))
    }

    /// Expands the backup file `backup` and stores it as the archive for `site` at the time in
    /// its file name. If the expansion fails the client is killed before it can commit, so no
    /// partial archive is left.
    pub fn backup(&self, site: &str, backup: &Path) -> Result<TarsnapBackup> {
        let file_name = backup
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{}: not a file", backup.display()))?;
        self.backup_as(site, backup, &file_name)
    }

    /// [`TarsnapStore::backup`] of a file whose Discourse name is `file_name` (a download kept
    /// under a temporary name, say).
    pub fn backup_as(&self, site: &str, backup: &Path, file_name: &str) -> Result<TarsnapBackup> {
        let time = time_from_backup_name(file_name).with_context(|| {
            format!("{file_name}: no YYYY-MM-DD-HHMMSS time in the backup's name")
        })?;
        self.backup_at(site, backup, file_name, &time)
    }

    /// [`TarsnapStore::backup_as`] at a given `YYYY-MM-DD-HHMMSS` time (the file's mtime for an
    /// admin-chosen name without one, see [`crate::discourse::BackupName::with_mtime`]).
    pub fn backup_at(
        &self,
        site: &str,
        backup: &Path,
        file_name: &str,
        time: &str,
    ) -> Result<TarsnapBackup> {
        let archive = self.archive_name(site, time)?;
        let args = self.backup_args(&archive);
        let (mut child, stderr) = self.spawn(&args, Stdio::piped(), Stdio::null())?;
        let stdin = child.stdin.take().context("tarsnap's stdin")?;
        let mut w = BufWriter::with_capacity(256 * 1024, stdin);
        let opts = peel::ExpandOptions {
            allow_plain_root: false,
            ..Default::default()
        };
        let expanded = peel::tarstream::expand_to_tar(backup, Some(file_name), &mut w, &opts)
            .and_then(|r| {
                w.flush().map_err(|e| peel::Error::Io {
                    context: "writing the tar stream to tarsnap".into(),
                    source: e,
                })?;
                Ok(r)
            });
        let (recipe, report) = match expanded {
            Ok(r) => r,
            Err(e) => {
                // Killed (not interrupted: SIGINT would make tarsnap save a truncated archive).
                let _ = child.kill();
                drop(w);
                let _ = child.wait();
                let said = stderr.finish();
                return Err(anyhow::Error::new(e).context(format!(
                    "storing {} as tarsnap archive {archive}{}",
                    backup.display(),
                    said.map(|s| format!(" (tarsnap said: {s})"))
                        .unwrap_or_default()
                )));
            }
        };
        drop(w);
        let status = child.wait().context("waiting for tarsnap")?;
        let said = stderr.finish();
        if !status.success() {
            bail!(
                "tarsnap -c -f {archive} failed ({status}): {}",
                said.unwrap_or_default()
            );
        }
        Ok(TarsnapBackup {
            archive,
            original: recipe.original,
            report,
        })
    }

    /// Reads `archive` back and writes the original backup file to `out`, SHA-256 checked.
    pub fn restore(&self, archive: &str, out: &mut (dyn Write + Send)) -> Result<peel::Digest> {
        let args = self.restore_args(archive)?;
        let (mut child, stderr) = self.spawn(&args, Stdio::null(), Stdio::piped())?;
        let mut stdout = child.stdout.take().context("tarsnap's stdout")?;
        let rebuilt = peel::tarstream::rebuild_from_tar(&mut stdout, out);
        drop(stdout);
        if rebuilt.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().context("waiting for tarsnap")?;
        let said = stderr.finish();
        if !status.success() && rebuilt.is_ok() {
            bail!(
                "tarsnap -r -f {archive} failed ({status}): {}",
                said.unwrap_or_default()
            );
        }
        match rebuilt {
            Ok(d) => Ok(d),
            Err(e) if !status.success() => Err(anyhow::Error::new(e).context(format!(
                "restoring tarsnap archive {archive}: tarsnap failed ({status}): {}",
                said.unwrap_or_default()
            ))),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("restoring tarsnap archive {archive}")))
            }
        }
    }

    fn run_quiet(&self, args: &[OsString]) -> Result<String> {
        let (mut child, stderr) = self.spawn(args, Stdio::null(), Stdio::piped())?;
        let mut text = String::new();
        child
            .stdout
            .take()
            .context("tarsnap's stdout")?
            .read_to_string(&mut text)
            .context("reading tarsnap's output")?;
        let status = child.wait().context("waiting for tarsnap")?;
        if !status.success() {
            bail!(
                "tarsnap {} failed ({status}): {}",
                args.first()
                    .map(|a| a.to_string_lossy())
                    .unwrap_or_default(),
                stderr.finish().unwrap_or_default()
            );
        }
        Ok(text)
    }

    /// All archive names of the account (any site, any tool).
    pub fn list(&self) -> Result<Vec<String>> {
        let text = self.run_quiet(&self.list_args()?)?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Deletes `archive`.
    pub fn delete(&self, archive: &str) -> Result<()> {
        self.run_quiet(&self.delete_args(archive)?).map(|_| ())
    }

    /// Which of `site`'s archives among `names` the retention rules drop, oldest first. With no
    /// rule configured nothing is dropped.
    pub fn to_delete(&self, site: &str, names: &[String]) -> Vec<String> {
        let archives = self.site_archives(site, names);
        if self.cfg.keep_last.is_none() && self.cfg.keep_daily.is_none() {
            return Vec::new();
        }
        let mut keep = vec![false; archives.len()];
        let n = archives.len();
        if let Some(k) = self.cfg.keep_last {
            for flag in keep.iter_mut().skip(n.saturating_sub(k as usize)) {
                *flag = true;
            }
        }
        if let Some(days) = self.cfg.keep_daily {
            let mut seen: Vec<&str> = Vec::new();
            for (i, (time, _)) in archives.iter().enumerate().rev() {
                let day = &time[..10];
                if seen.len() >= days as usize {
                    break;
                }
                if !seen.contains(&day) {
                    seen.push(day);
                    keep[i] = true;
                }
            }
        }
        archives
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| !k)
            .map(|((_, name), _)| name)
            .collect()
    }

    /// Lists the archives, deletes those of `site` the retention rules drop; returns them.
    pub fn apply_retention(&self, site: &str) -> Result<Vec<String>> {
        let names = self.list()?;
        let doomed = self.to_delete(site, &names);
        for name in &doomed {
            self.delete(name)?;
            tracing::info!("tarsnap: deleted archive {name}");
        }
        Ok(doomed)
    }
}

/// A child's stderr, read on a thread so a chatty child cannot block on a full pipe.
struct Stderr(Option<std::thread::JoinHandle<String>>);

impl Stderr {
    fn collect(pipe: Option<std::process::ChildStderr>) -> Self {
        Stderr(pipe.map(|mut p| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = (&mut p).take(64 * 1024).read_to_end(&mut buf);
                let _ = io::copy(&mut p, &mut io::sink());
                String::from_utf8_lossy(&buf).trim().to_string()
            })
        }))
    }

    /// What the child wrote, if anything.
    fn finish(self) -> Option<String> {
        self.0.and_then(|h| h.join().ok()).filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(keep_last: Option<u32>, keep_daily: Option<u32>) -> TarsnapStore {
        TarsnapStore::new(TarsnapConfig {
            keyfile: "/k/write.key".into(),
            admin_keyfile: Some("/k/admin.key".into()),
            cachedir: Some("/var/cache/tarsnap".into()),
            binary: None,
            prefix: "dvault-".to_string(),
            keep_last,
            keep_daily,
        })
    }

    #[test]
    fn archive_names_carry_site_and_backup_time() {
        let s = store(None, None);
        let t = time_from_backup_name("forum-2026-01-02-033017-v3.5.0-20250612081530.tar").unwrap();
        assert_eq!(t, "2026-01-02-033017");
        assert_eq!(
            s.archive_name("forum", &t).unwrap(),
            "dvault-forum-2026-01-02-033017"
        );
        assert!(s.archive_name("a b", &t).is_err());
        assert!(s.archive_name("forum", "2026-01-02").is_err());
        assert_eq!(time_from_backup_name("dump.sql.gz"), None);
    }

    #[test]
    fn command_lines_use_the_write_key_for_backup_and_the_admin_key_otherwise() {
        let s = store(None, None);
        let j = |v: Vec<OsString>| {
            v.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            j(s.backup_args("dvault-f-2026-01-01-000000")),
            "-c -f dvault-f-2026-01-01-000000 --keyfile /k/write.key --cachedir /var/cache/tarsnap @-"
        );
        assert_eq!(
            j(s.restore_args("A").unwrap()),
            "-r -f A --keyfile /k/admin.key"
        );
        assert_eq!(
            j(s.delete_args("A").unwrap()),
            "-d -f A --keyfile /k/admin.key --cachedir /var/cache/tarsnap"
        );
        assert_eq!(
            j(s.list_args().unwrap()),
            "--list-archives --keyfile /k/admin.key"
        );
        let mut cfg = s.cfg.clone();
        cfg.admin_keyfile = None;
        let err = TarsnapStore::new(cfg).restore_args("A").unwrap_err();
        assert!(err.to_string().contains("admin_keyfile"), "{err}");
    }

    #[test]
    fn retention_keeps_the_newest_and_one_per_day() {
        let names: Vec<String> = [
            "dvault-forum-2026-01-01-033000",
            "dvault-forum-2026-01-02-033000",
            "dvault-forum-2026-01-02-153000",
            "dvault-forum-2026-01-03-033000",
            "dvault-forum-2026-01-04-033000",
            "dvault-forum2-2026-01-01-033000",
            "other-archive",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            store(Some(2), None).to_delete("forum", &names),
            [
                "dvault-forum-2026-01-01-033000",
                "dvault-forum-2026-01-02-033000",
                "dvault-forum-2026-01-02-153000"
            ]
        );
        assert_eq!(
            store(None, Some(3)).to_delete("forum", &names),
            [
                "dvault-forum-2026-01-01-033000",
                "dvault-forum-2026-01-02-033000"
            ]
        );
        assert!(store(None, None).to_delete("forum", &names).is_empty());
    }
}
