//! What a restic lock file says (the holder, when, shared or exclusive) and when it is stale:
//! the record written into `locks/<id>`, restic's staleness rule, and this process's user for
//! the record. Apart from the taking and holding of locks (`repo_lock.rs`, `held.rs`) because
//! it is restic's data format and rule, read the same by every process that meets a lock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::held::is_held_here;

/// How long after its last refresh a lock counts as stale (restic's `staleLockTimeout`).
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// The lock record, field for field as restic writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRecord {
    /// When the lock was written or last refreshed.
    pub time: jiff::Timestamp,
    /// Exclusive (forget, prune) or shared.
    pub exclusive: bool,
    /// Host name of the holder.
    #[serde(default)]
    pub hostname: String,
    /// User name of the holder.
    #[serde(default)]
    pub username: String,
    /// Process id of the holder.
    #[serde(default)]
    pub pid: i64,
    /// User id (omitted when 0, as Go's `omitempty` does).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    /// Group id (omitted when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl std::fmt::Display for LockRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}pid {} on {} by {} since {}",
            if self.exclusive {
                "exclusive lock, "
            } else {
                ""
            },
            self.pid,
            self.hostname,
            if self.username.is_empty() {
                "an unknown user"
            } else {
                &self.username
            },
            self.time.round(jiff::Unit::Second).unwrap_or(self.time)
        )
    }
}

/// restic's staleness rule (see the module docs).
pub fn is_stale(rec: &LockRecord, id: &str) -> bool {
    let age = jiff::Timestamp::now().duration_since(rec.time);
    if age > jiff::SignedDuration::try_from(STALE_AFTER).unwrap_or(jiff::SignedDuration::MAX) {
        return true;
    }
    if rec.hostname != crate::lock::hostname() {
        return false;
    }
    if rec.pid == i64::from(std::process::id()) {
        return !is_held_here(id);
    }
    match libc::pid_t::try_from(rec.pid) {
        Ok(pid) if pid > 0 => !process_alive(pid),
        _ => true,
    }
}

/// Whether a process exists (signal 0; EPERM means it exists under another user).
fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This process's user name, uid and gid (as restic's `user.Current()` gives them).
pub(super) fn user() -> (String, u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut name = String::new();
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data; getpwuid_r writes into `pwd` and `buf` (of the length given)
    // and sets `result` to `&pwd` on success.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) == 0
            && !result.is_null()
            && !pwd.pw_name.is_null()
        {
            name = std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    if name.is_empty() {
        name = std::env::var("USER").unwrap_or_default();
    }
    (name, uid, gid)
}
