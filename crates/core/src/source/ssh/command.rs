//! Starting OpenSSH's `ssh` with the SFTP subsystem, and the SFTP session on its pipes.
//!
//! The options that keep the connection safe come first on the command line, where `ssh` takes
//! the first value it sees, so no `ssh_config` can weaken them: the host key must already be
//! known (`StrictHostKeyChecking=yes`, never added or updated), nothing is ever asked
//! (`BatchMode=yes`), and nothing is forwarded. Only file paths go into the arguments, never a
//! secret: keys come from the identity file or the agent.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use openssh_sftp_client::{Sftp, SftpOptions};
use tokio::io::AsyncReadExt as _;

use super::config::{Location, SshSourceConfig};
use super::hostkey;

/// Refuses paths that `ssh -o KEY=VALUE` would split or expand (spaces, quotes, `%` tokens),
/// so the path `ssh` reads is the one the config names.
pub fn check_option_path(p: &Path) -> Result<(), String> {
    let s = p
        .to_str()
        .ok_or_else(|| format!("{}: the path is not UTF-8", p.display()))?;
    if !p.is_absolute() {
        return Err(format!("{s}: must be an absolute path"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '%' | '\\'))
    {
        return Err(format!(
            "{s}: ssh cannot take this path (spaces, quotes, '%' or '\\' in it)"
        ));
    }
    Ok(())
}

/// A running `ssh` child with an SFTP session on its stdin and stdout.
pub struct Connection {
    /// The SFTP session.
    pub sftp: Sftp,
    child: tokio::process::Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Keeps the pinned known_hosts file while `ssh` may read it.
    _pinned: Option<tempfile::NamedTempFile>,
    what: String,
}

impl Connection {
    /// Starts `ssh` and the SFTP session. Must run inside a Tokio runtime.
    pub async fn open(cfg: &SshSourceConfig, loc: &Location) -> Result<Connection, String> {
        // Else ssh only says "Host key verification failed", as for a changed key.
        if let Some(kh) = &cfg.known_hosts {
            std::fs::File::open(kh)
                .map_err(|e| format!("source.ssh.known_hosts {}: {e}", kh.display()))?;
        }
        let pinned = match &cfg.host_key_fingerprint {
            Some(fp) => Some(hostkey::pin(loc, fp, cfg.connect_timeout.as_secs())?),
            None => None,
        };
        let mut cmd = tokio::process::Command::new("ssh");
        for opt in [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "CheckHostIP=no",
            "ForwardAgent=no",
            "ForwardX11=no",
            "ClearAllForwardings=yes",
            "PermitLocalCommand=no",
            "RequestTTY=no",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=4",
            "LogLevel=ERROR",
        ] {
            cmd.arg("-o").arg(opt);
        }
        cmd.arg("-o").arg(format!(
            "ConnectTimeout={}",
            cfg.connect_timeout.as_secs().max(1)
        ));
        match (&pinned, &cfg.known_hosts) {
            (Some(file), _) => {
                cmd.arg("-o")
                    .arg(format!("UserKnownHostsFile={}", file.path().display()))
                    .arg("-o")
                    .arg("GlobalKnownHostsFile=/dev/null")
                    .arg("-o")
                    .arg(format!("HostKeyAlias={}", hostkey::ALIAS));
            }
            (None, Some(kh)) => {
                cmd.arg("-o")
                    .arg(format!("UserKnownHostsFile={}", kh.display()))
                    .arg("-o")
                    .arg("GlobalKnownHostsFile=/dev/null");
            }
            (None, None) => {}
        }
        if let Some(id) = &cfg.identity_file {
            cmd.arg("-o").arg("IdentitiesOnly=yes").arg("-i").arg(id);
        }
        if let Some(f) = &cfg.ssh_config {
            cmd.arg("-F").arg(f);
        }
        cmd.arg("-p")
            .arg(loc.port.to_string())
            .arg("-l")
            .arg(&loc.user)
            .arg("-s")
            .arg(&loc.host)
            .arg("sftp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let what = loc.describe();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{what}: cannot run ssh (package openssh-client): {e}"))?;
        let (Some(stdin), Some(stdout), Some(mut err_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(format!("{what}: ssh started without its pipes"));
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                // ssh says little; the cap only guards against a chatty ProxyCommand.
                if s.len() < 64 * 1024 {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        });
        let sftp = match Sftp::new(stdin, stdout, SftpOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                let status = child.wait().await.ok();
                // Let the stderr reader catch ssh's last words.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let said =
                    String::from_utf8_lossy(&stderr.lock().unwrap_or_else(|e| e.into_inner()))
                        .trim()
                        .to_string();
                return Err(explain_failure(&what, cfg, &said, status, &e.to_string()));
            }
        };
        Ok(Connection {
            sftp,
            child,
            stderr,
            _pinned: pinned,
            what,
        })
    }

    /// What `ssh` said on stderr so far (for errors after the session started).
    pub fn ssh_said(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()))
            .trim()
            .to_string()
    }

    /// `USER@HOST:PORT`.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Ends the session and `ssh`.
    pub async fn close(mut self) {
        let _ = self.sftp.close().await;
        let _ = self.child.kill().await;
    }
}

/// The error for an `ssh` that did not get to SFTP: its own words, plus what to check.
fn explain_failure(
    what: &str,
    cfg: &SshSourceConfig,
    said: &str,
    status: Option<std::process::ExitStatus>,
    sftp_error: &str,
) -> String {
    let said = if said.is_empty() {
        format!(
            "ssh ended ({}) : {sftp_error}",
            status.map_or("?".into(), |s| s.to_string())
        )
    } else {
        said.lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("@@@@@@@@"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let hint = if said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || said.contains("Host key verification failed")
        || said.contains("No ED25519 host key is known")
        || said.contains("host key is known")
    {
        let file = match (&cfg.known_hosts, &cfg.host_key_fingerprint) {
            (Some(f), _) => format!("known_hosts file {}", f.display()),
            (None, Some(fp)) => format!("host_key_fingerprint {fp}"),
            (None, None) => "ssh's known_hosts files (~/.ssh/known_hosts)".into(),
        };
        format!(
            "HOST KEY REFUSED: the host's key is not the one in {file}. If the forum host was \
             reinstalled, check its key on the host itself (ssh-keygen -lf \
             /etc/ssh/ssh_host_ed25519_key.pub) before trusting the new one"
        )
    } else if said.contains("Permission denied") {
        match &cfg.identity_file {
            Some(f) => format!(
                "the host refused the key {} (is its public key in the account's \
                 authorized_keys?)",
                f.display()
            ),
            None => "the host refused every key ssh offered (agent and ~/.ssh/id_*)".into(),
        }
    } else {
        "cannot reach the host's SFTP service".into()
    };
    format!("{what}: {hint}: {said}")
}
