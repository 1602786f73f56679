//! What the host provides for a cluster: the PostgreSQL installation, an unprivileged user
//! when we are root (PostgreSQL refuses to run as root), and a free TCP port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{HOST, SERVICE_USER};

/// Finds the folder with PostgreSQL's server programs: `DVAULT_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/<major>/bin`, else the folder of `initdb` on `PATH`.
pub fn find_bindir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DVAULT_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        bail!("DVAULT_PG_BINDIR={} has no initdb", dir.display());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Follow symlinks (Debian puts wrappers in /usr/bin) so pg_ctl and friends
                // come from the same installation.
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(parent) = real.parent() {
                    return Ok(parent.to_path_buf());
                }
            }
        }
    }
    bail!(
        "PostgreSQL server programs not found: no /usr/lib/postgresql/<major>/bin/initdb and no \
         initdb on PATH (install postgresql, or set DVAULT_PG_BINDIR)"
    )
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of [`SERVICE_USER`], creating it when missing; `nobody` when that fails.
pub(crate) fn service_user() -> Result<(u32, u32)> {
    if let Some(ids) = lookup_user(SERVICE_USER) {
        return Ok(ids);
    }
    let created = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if created {
        if let Some(ids) = lookup_user(SERVICE_USER) {
            return Ok(ids);
        }
    }
    lookup_user("nobody").with_context(|| {
        format!(
            "running as root: could not create user {SERVICE_USER}, and there is no user nobody"
        )
    })
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let mut fields = line.trim().split(':');
    let uid = fields.nth(2)?.parse().ok()?;
    let gid = fields.next()?.parse().ok()?;
    Some((uid, gid))
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((HOST, 0)).context("finding a free TCP port on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    // Give the kernel a moment; a just-closed listening socket is reusable at once on Linux.
    std::thread::sleep(Duration::from_millis(1));
    Ok(port)
}
