//! A real OpenSSH server (Debian's openssh-server) for the SSH source's tests: started on
//! 127.0.0.1 on a free port with its own config file and host key, and a dedicated account
//! whose SFTP is chrooted and read-only (`internal-sftp -R`), as contrib/ssh-pull/ sets it up on
//! a forum host. Needs root (sshd's chroot and the account); tests run as root here and in CI.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The account the tests pull as (created once, idempotently).
pub const USER: &str = "dvault-pull-test";

/// A running sshd and the files a client needs.
pub struct Sshd {
    /// Everything: config, keys, chroot. Root-owned and not writable by others, as ChrootDirectory
    /// demands of every component of its path.
    pub dir: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The backups folder on the "forum host" (inside the chroot: `/backups`).
    pub backups: PathBuf,
    /// Client private key (authorized for [`USER`]).
    pub client_key: PathBuf,
    /// A known_hosts file holding this server's host key.
    pub known_hosts: PathBuf,
    /// The host key's `SHA256:` fingerprint.
    pub fingerprint: String,
    child: Child,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A folder whose every component is root-owned and writable by root only (ChrootDirectory's
/// rule); `/tmp` is not one (mode 1777).
fn safe_base() -> PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let ok = |p: &Path| {
        p.ancestors()
            .all(|a| std::fs::metadata(a).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0))
    };
    let candidates = [
        option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from),
        Some(PathBuf::from("/run")),
        Some(PathBuf::from("/var/lib")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| ok(p))
        .expect("no root-owned folder for sshd's chroot (tests must run as root)")
}

fn ensure_user() {
    let exists = Command::new("id")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        // Another test may create it at the same moment: "already exists" (9) is fine.
        let s = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status()
            .expect("useradd");
        assert!(s.success() || s.code() == Some(9), "useradd {USER}: {s}");
    }
    // Without PAM, sshd refuses accounts whose password field starts with '!' (locked);
    // '*' means "no password" and still allows keys.
    run(Command::new("usermod").args(["-p", "*", USER]));
}

impl Sshd {
    /// Starts a fresh server with a new host key.
    pub fn start() -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "sshd missing: install Debian's openssh-server (scripts/deps does)"
        );
        ensure_user();
        let dir = tempfile::Builder::new()
            .prefix("dvault-sshd-")
            .tempdir_in(safe_base())
            .unwrap()
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let chroot = dir.join("chroot");
        let backups = chroot.join("backups");
        std::fs::create_dir_all(&backups).unwrap();
        for d in [&chroot, &backups] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let host_key = dir.join("host_ed25519");
        keygen(&host_key);
        let client_key = dir.join("client_ed25519");
        keygen(&client_key);
        let auth = dir.join("authorized_keys");
        std::fs::create_dir(&auth).unwrap();
        std::fs::copy(client_key.with_extension("pub"), auth.join(USER)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys/%u\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin no\n\
                 AllowUsers {USER}\nSubsystem sftp internal-sftp\n\
                 {snippet}",
                hk = host_key.display(),
                d = dir.display(),
                snippet = contrib_match_block(&chroot),
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {port}: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let pubkey = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let mut parts = pubkey.split_whitespace();
        let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {kind} {key}\n")).unwrap();
        let fingerprint = run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(host_key.with_extension("pub")))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
        Sshd {
            dir,
            port,
            backups,
            client_key,
            known_hosts,
            fingerprint,
            child,
        }
    }

    /// `sftp://USER@127.0.0.1:PORT/backups`.
    pub fn location(&self) -> String {
        format!("sftp://{USER}@127.0.0.1:{}/backups", self.port)
    }

    /// Gives the server a new host key (a reinstalled host, or someone in between) and
    /// restarts it on the same port.
    pub fn change_host_key(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let host_key = self.dir.join("host_ed25519");
        std::fs::remove_file(&host_key).unwrap();
        std::fs::remove_file(host_key.with_extension("pub")).unwrap();
        keygen(&host_key);
        let config = self.dir.join("sshd_config");
        self.child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("sshd2.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not come back");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Puts a file into the backups folder (root-owned, read-only for the account).
    pub fn put(&self, name: &str, bytes: &[u8]) {
        let p = self.backups.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// What sshd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dvault-test", "-f"])
        .arg(path));
}

/// The `Match` block of contrib/ssh-pull/sshd_config.snippet with the test's chroot and user:
/// the tests check the shipped snippet, not a copy of it.
fn contrib_match_block(chroot: &Path) -> String {
    let snippet = include_str!("../../../../../contrib/ssh-pull/sshd_config.snippet");
    snippet
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| {
            // The chroot first: its default path contains the user's name.
            l.replace("/srv/dvault-pull", &chroot.display().to_string())
                .replace("dvault-pull", USER)
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
