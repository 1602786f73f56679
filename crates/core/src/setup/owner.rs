//! Who owns what setup creates. Setup runs as root, the timer as the `dvault` user: a password
//! file, config or repository left owned by root is one the service cannot read ("Permission
//! denied" at 04:30 the next morning). So everything setup creates is handed to the service
//! user, looked up in the root's own `/etc/passwd` (which is also right for `--root` on an image
//! whose user exists only there).

use std::path::Path;

use anyhow::Context as _;

/// A numeric owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// The user `name` in `<root>/etc/passwd`, if it is there.
pub fn lookup(root: &Path, name: &str) -> Option<Owner> {
    let text = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some(Owner {
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        } else {
            None
        }
    })
}

/// Whether this process may give files away (only root may).
pub fn can_chown() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Gives `path` (not following a symlink) to `owner`; nothing when `owner` is `None`.
pub fn give(owner: Option<Owner>, path: &Path) -> anyhow::Result<()> {
    let Some(o) = owner else {
        return Ok(());
    };
    std::os::unix::fs::lchown(path, Some(o.uid), Some(o.gid))
        .with_context(|| format!("{}: cannot give it to uid {}", path.display(), o.uid))
}

/// Gives `dir` and everything below it to `owner`.
pub fn give_tree(owner: Option<Owner>, dir: &Path) -> anyhow::Result<()> {
    if owner.is_none() {
        return Ok(());
    }
    give(owner, dir)?;
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("{}: cannot read", dir.display()))?;
    if meta.is_dir() {
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?
        {
            let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
            give_tree(owner, &entry.path())?;
        }
    }
    Ok(())
}

/// The `setfacl` entries for an access letter of [`crate::setup::Action::Grant`]: read and
/// traverse (also as the default for files created later), write, or traverse only.
fn acl_entries(o: Owner, access: char) -> Vec<String> {
    let u = o.uid;
    match access {
        'r' => vec![format!("u:{u}:rX"), format!("d:u:{u}:rX")],
        'w' => vec![format!("u:{u}:rwx")],
        _ => vec![format!("u:{u}:x")],
    }
}

/// Whether `dir` already carries the ACL entries for `access` (from `getfacl -n`).
pub fn has_acl(dir: &Path, o: Owner, access: char) -> bool {
    let Ok(out) = std::process::Command::new("getfacl")
        .args(["-n", "-p", "--omit-header"])
        .arg(dir)
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let u = o.uid;
    let want: &[String] = &match access {
        'r' => vec![format!("user:{u}:r-x"), format!("default:user:{u}:r-x")],
        'w' => vec![format!("user:{u}:rwx")],
        _ => vec![format!("user:{u}:--x")],
    };
    want.iter()
        .all(|w| text.lines().any(|l| l.starts_with(w.as_str())))
}

/// Adds the ACL entries for `access` to `dir` (recursively for read: backups made before).
pub fn grant(dir: &Path, o: Owner, access: char) -> anyhow::Result<()> {
    let mut cmd = std::process::Command::new("setfacl");
    if access == 'r' {
        cmd.arg("-R");
    }
    for e in acl_entries(o, access) {
        cmd.arg("-m").arg(e);
    }
    cmd.arg(dir);
    let out = cmd.output().map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot run setfacl ({e}); install the acl package",
            dir.display()
        )
    })?;
    if !out.status.success() {
        anyhow::bail!(
            "{}: setfacl failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Environment variable that lets root write into the service user's folders anyway (as the
/// global `--allow-root` flag does), for an expert who fixes the owners afterwards.
pub const ALLOW_ROOT_ENV: &str = "DVAULT_ALLOW_ROOT";

/// Started as root over folders that belong to another user (the service user's state, cache,
/// scratch folder or local repository): the files this command would create there would be
/// root's, and the next timer run, as that user, could not read them ("Permission denied", a
/// snapshot that looks damaged). Returns the reason to refuse, naming the folder, its owner and
/// what to run instead; `None` when this process is not root or every folder is root's. A
/// folder that does not exist yet counts as its nearest existing parent (`init` as root under
/// the service user's `/srv/dvault` would make a root-owned repository). `command` is the
/// command line to suggest (`dvault backup ...`).
pub fn root_over_service_files(paths: &[&Path], command: &str) -> Option<String> {
    if !can_chown() {
        return None;
    }
    paths.iter().find_map(|p| {
        let (dir, uid) = nearest_owner(p)?;
        (uid != 0).then(|| refusal(&dir, uid, command))
    })
}

/// The nearest existing folder at or above `path`, and its owner.
fn nearest_owner(path: &Path) -> Option<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::absolute(path).ok()?;
    path.ancestors().find_map(|a| {
        std::fs::metadata(a)
            .ok()
            .map(|m| (a.to_path_buf(), m.uid()))
    })
}

fn refusal(dir: &Path, uid: u32, command: &str) -> String {
    let name = user_name(uid);
    let named = name.as_ref().map_or(String::new(), |n| format!(" ({n})"));
    // sudo takes a uid as `#N`; runuser needs a name.
    let sudo_user = name.clone().unwrap_or_else(|| format!("#{uid}"));
    let runuser = name.as_ref().map_or(String::new(), |n| {
        format!(", or `runuser -u {n} -- {command}`")
    });
    format!(
        "refusing to run as root: {} belongs to uid {uid}{named}, the service user, and the \
         files this command would write there would be root's, which that user's runs (the \
         timer) could not read. Run it as that user: `sudo -u {sudo_user} {command}`{runuser} \
         (a whole run: `systemctl start dvault`). To write there as root anyway (and fix the \
         owners yourself): --allow-root or {ALLOW_ROOT_ENV}=1",
        dir.display(),
    )
}

/// The name of user `uid` in this host's `/etc/passwd`, if it is there.
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}
