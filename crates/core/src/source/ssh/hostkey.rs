//! A host key pinned by its fingerprint (`host_key_fingerprint = "SHA256:..."`) instead of a
//! known_hosts file.
//!
//! OpenSSH checks host keys only against known_hosts files, which hold whole keys, not
//! fingerprints. So the host's public keys are fetched with `ssh-keyscan` (unauthenticated, and
//! that is fine: each key is kept only if its SHA-256 fingerprint is the configured one), and the
//! matching key is written to a private known_hosts file under an alias that `ssh` then checks the
//! real connection against with `StrictHostKeyChecking=yes`. A host that shows another key in the
//! handshake than the one just pinned is refused by `ssh` itself; no key is ever trusted because
//! it was merely offered.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::config::Location;

/// The alias under which the pinned key is written and looked up (`HostKeyAlias`).
pub const ALIAS: &str = "dvault-pinned-host";

/// The 32 bytes of a `SHA256:<base64>` fingerprint (as `ssh-keygen -lf` and `ssh` print it).
pub fn parse_fingerprint(text: &str) -> Result<Vec<u8>, String> {
    let b64 = text.trim().strip_prefix("SHA256:").ok_or_else(|| {
        format!("{text:?}: expected a SHA256 fingerprint as ssh-keygen -lf prints it, SHA256:...")
    })?;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(b64.trim_end_matches('='))
        .map_err(|e| format!("{text:?}: not base64 after SHA256: ({e})"))?;
    if raw.len() != 32 {
        return Err(format!(
            "{text:?}: a SHA256 fingerprint has 32 bytes, this one {}",
            raw.len()
        ));
    }
    Ok(raw)
}

/// The `SHA256:...` fingerprint of a public key given as the base64 of a known_hosts line.
pub fn fingerprint_of(key_base64: &str) -> Option<String> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(key_base64)
        .ok()?;
    Some(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob))
    ))
}

/// Fetches the host's keys and writes the one with fingerprint `want` to a new private
/// known_hosts file under [`ALIAS`]. Errors name the host and the fingerprints it offered.
pub fn pin(
    loc: &Location,
    want: &str,
    timeout_secs: u64,
) -> Result<tempfile::NamedTempFile, String> {
    let want_raw = parse_fingerprint(want)?;
    let out = Command::new("ssh-keyscan")
        .args(["-T", &timeout_secs.max(1).to_string(), "-p"])
        .arg(loc.port.to_string())
        .arg("--")
        .arg(&loc.host)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh-keyscan (package openssh-client): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut offered = Vec::new();
    let mut lines = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.split_whitespace();
        let (Some(_host), Some(kind), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(fp) = fingerprint_of(key) else {
            continue;
        };
        if parse_fingerprint(&fp).ok().as_deref() == Some(&want_raw[..]) {
            lines.push(format!("{ALIAS} {kind} {key}\n"));
        } else {
            offered.push(format!("{kind} {fp}"));
        }
    }
    if lines.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(if offered.is_empty() {
            format!(
                "{}: could not fetch the host's keys to compare with host_key_fingerprint: {}",
                loc.describe(),
                stderr.trim()
            )
        } else {
            format!(
                "{}: HOST KEY REFUSED: none of the host's keys has the configured fingerprint \
                 {want} (it offered {}); if the key really changed, check it on the host with \
                 `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` and update \
                 host_key_fingerprint",
                loc.describe(),
                offered.join(", ")
            )
        });
    }
    let mut file = tempfile::Builder::new()
        .prefix("dvault-known-hosts-")
        .tempfile()
        .map_err(|e| format!("cannot create a temporary known_hosts file: {e}"))?;
    for l in &lines {
        file.write_all(l.as_bytes())
            .map_err(|e| format!("{}: {e}", file.path().display()))?;
    }
    file.flush()
        .map_err(|e| format!("{}: {e}", file.path().display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_what_ssh_keygen_prints() {
        // `ssh-keygen -lf` printed SHA256:K5SMpKhzVskpgl/RZtQBNj8/HaHiQaAIDbsYNyUVSEQ for this key.
        let key = "AAAAC3NzaC1lZDI1NTE5AAAAIJryt9lBGmyRdjcy1STT/wN9GSsn+JE8NLGqnZqe2B9i";
        let fp = fingerprint_of(key).unwrap();
        assert_eq!(fp, "SHA256:K5SMpKhzVskpgl/RZtQBNj8/HaHiQaAIDbsYNyUVSEQ");
        assert_eq!(parse_fingerprint(&fp).unwrap().len(), 32);
        assert!(parse_fingerprint("MD5:aa:bb")
            .unwrap_err()
            .contains("SHA256"));
        assert!(parse_fingerprint("SHA256:abc")
            .unwrap_err()
            .contains("32 bytes"));
    }
}
