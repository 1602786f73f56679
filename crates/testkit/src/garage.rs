//! A single-node Garage S3 server for tests.
//!
//! The binary is `$GARAGE_BIN`, else `garage` on `PATH`, else `/work/tools/garage/bin/garage`
//! (install: `cargo install garage --version 2.5.0 --locked --no-default-features --features
//! sqlite`). When none exists, [`Garage::start`] panics if `DVAULT_REQUIRE_S3=1` (CI) and
//! otherwise returns `None` after a loud note on stderr, so a developer without Garage can still
//! run the rest of the suite.
//!
//! Setup follows Garage's own quick start: a config with `replication_factor = 1` and the sqlite
//! metadata engine, `garage server`, then `layout assign` + `layout apply` for the one node.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// Where the lead's build puts the binary on the development machine.
const FALLBACK_BIN: &str = "/work/tools/garage/bin/garage";
/// Region Garage answers for (restic and dvault must sign for it).
pub const REGION: &str = "garage";

/// An access key created on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Key {
    /// Key id (`GK...`).
    pub id: String,
    /// Secret.
    pub secret: String,
}

/// A running single-node Garage; stopped and deleted on drop.
pub struct Garage {
    bin: PathBuf,
    config: PathBuf,
    child: Child,
    /// S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Garage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garage")
            .field("endpoint", &self.endpoint)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The Garage binary, if one is installed.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GARAGE_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from(FALLBACK_BIN)).filter(|p| p.is_file()))
}

fn required() -> bool {
    std::env::var("DVAULT_REQUIRE_S3").is_ok_and(|v| v == "1")
}

impl Garage {
    /// Starts a fresh single node for the test `test` (named in the skip note). `None` when
    /// Garage is not installed and `DVAULT_REQUIRE_S3` is not `1`.
    pub fn start(test: &str) -> Option<Garage> {
        let Some(bin) = find_binary() else {
            let msg = format!(
                "{test}: the Garage S3 server is not installed (not $GARAGE_BIN, not `garage` on \
                 PATH, not {FALLBACK_BIN}); install it with `cargo install garage --version \
                 2.5.0 --locked --no-default-features --features sqlite`"
            );
            assert!(!required(), "DVAULT_REQUIRE_S3=1: {msg}");
            // Straight to the process's stderr: the test harness captures `eprintln!`, and a
            // skip must be seen.
            let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {msg} ***\n");
            return None;
        };
        Some(Self::start_with(&bin))
    }

    fn start_with(bin: &Path) -> Garage {
        let dir = tempfile::Builder::new()
            .prefix("dvault-garage-")
            .tempdir()
            .expect("temp dir for Garage");
        let rpc = free_port();
        let s3 = free_port();
        let secret = random_hex(32);
        let config = dir.path().join("garage.toml");
        fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\n\
                 data_dir = \"{data}\"\n\
                 db_engine = \"sqlite\"\n\
                 replication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{secret}\"\n\
                 \n\
                 [s3_api]\n\
                 s3_region = \"{REGION}\"\n\
                 api_bind_addr = \"127.0.0.1:{s3}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
            ),
        )
        .expect("write the Garage config");
        let log = fs::File::create(dir.path().join("server.log")).expect("Garage log file");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut g = Garage {
            bin: bin.to_path_buf(),
            config,
            child,
            endpoint: format!("http://127.0.0.1:{s3}"),
            dir,
        };
        g.wait_ready(s3);
        let node = g.node_id();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g
    }

    /// Waits until the RPC answers (`garage node id`) and the S3 port listens.
    fn wait_ready(&mut self, s3_port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Garage exited with {status}: {}", self.server_log());
            }
            let rpc_ok = self.try_cli(&["node", "id"]).status.success();
            if rpc_ok && TcpStream::connect(("127.0.0.1", s3_port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Garage did not come up within 30 s: {}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn node_id(&self) -> String {
        let out = self.cli(&["node", "id"]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find_map(|w| w.split_once('@').map(|(id, _)| id.to_string()))
            .unwrap_or_else(|| panic!("no node id in `garage node id` output: {text}"))
    }

    /// The server's log so far (for failure messages).
    pub fn server_log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.path().join("server.log")) {
            let _ = f.read_to_string(&mut s);
        }
        let tail: Vec<&str> = s.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn try_cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// Runs `garage -c CONFIG ARGS` and insists on success.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = self.try_cli(args);
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        self.cli(&["bucket", "create", name]);
    }

    /// Creates a key (not yet allowed on any bucket).
    pub fn create_key(&self, name: &str) -> S3Key {
        let out = self.cli(&["key", "create", name]);
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |label: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {label:?} in `garage key create` output: {text}"))
        };
        S3Key {
            id: field("Key ID:"),
            secret: field("Secret key:"),
        }
    }

    /// Gives `key` read, write and owner rights on `bucket`.
    pub fn allow(&self, bucket: &str, key: &S3Key) {
        self.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", &key.id,
        ]);
    }

    /// A bucket with a new key allowed on it.
    pub fn bucket_with_key(&self, bucket: &str) -> S3Key {
        self.create_bucket(bucket);
        let key = self.create_key(&format!("{bucket}-key"));
        self.allow(bucket, &key);
        key
    }

    /// `s3:http://127.0.0.1:PORT/BUCKET[/PREFIX]`, restic's notation.
    pub fn repo_url(&self, bucket: &str, prefix: &str) -> String {
        if prefix.is_empty() {
            format!("s3:{}/{bucket}", self.endpoint)
        } else {
            format!("s3:{}/{bucket}/{prefix}", self.endpoint)
        }
    }

    /// Puts the key and region into a command's environment (restic's and dvault's names).
    pub fn with_key<'c>(&self, cmd: &'c mut Command, key: &S3Key) -> &'c mut Command {
        cmd.env("AWS_ACCESS_KEY_ID", &key.id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret)
            .env("AWS_DEFAULT_REGION", REGION)
    }

    /// `rclone` set up for this server (keys added by the caller). `AWS_CA_BUNDLE` is dropped:
    /// rclone's AWS SDK refuses to start with one on plain http, and a developer's shell may
    /// have it set for other work.
    fn rclone(&self) -> Command {
        let mut c = Command::new("rclone");
        c.env_remove("AWS_CA_BUNDLE")
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_S3_PROVIDER", "Other")
            .env("RCLONE_S3_ENDPOINT", &self.endpoint)
            .env("RCLONE_S3_REGION", REGION)
            .env("RCLONE_S3_FORCE_PATH_STYLE", "true");
        c
    }

    /// Uploads a local file to `bucket/key` with the real `rclone` (Debian package), as an
    /// admin would sync backups; the keys go through rclone's environment, not its argv.
    pub fn upload(&self, key: &S3Key, local: &Path, bucket: &str, object: &str) {
        self.copyto(
            key,
            local.as_os_str(),
            format!(":s3:{bucket}/{object}").as_ref(),
        );
    }

    /// Downloads `bucket/object` to a local file with the real `rclone`.
    pub fn download(&self, key: &S3Key, bucket: &str, object: &str, local: &Path) {
        self.copyto(
            key,
            format!(":s3:{bucket}/{object}").as_ref(),
            local.as_os_str(),
        );
    }

    fn copyto(&self, key: &S3Key, from: &std::ffi::OsStr, to: &std::ffi::OsStr) {
        let out = self
            .rclone()
            .env("RCLONE_S3_ACCESS_KEY_ID", &key.id)
            .env("RCLONE_S3_SECRET_ACCESS_KEY", &key.secret)
            .arg("copyto")
            .arg(from)
            .arg(to)
            .output()
            .expect("the rclone program (Debian package `rclone`) is installed");
        assert!(
            out.status.success(),
            "rclone copyto {from:?} {to:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The keys of `bucket` under `prefix` with their sizes, via the real `rclone lsf`.
    pub fn list(&self, key: &S3Key, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let out = self
            .rclone()
            .env("RCLONE_S3_ACCESS_KEY_ID", &key.id)
            .env("RCLONE_S3_SECRET_ACCESS_KEY", &key.secret)
            .args([
                "lsf",
                "-R",
                "--files-only",
                "--format",
                "ps",
                "--separator",
                "\t",
            ])
            .arg(format!(":s3:{bucket}/{prefix}"))
            .output()
            .expect("the rclone program (Debian package `rclone`) is installed");
        assert!(
            out.status.success(),
            "rclone lsf :s3:{bucket}/{prefix} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Vec<(String, u64)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (p, s) = l.split_once('\t')?;
                Some((p.to_string(), s.parse().ok()?))
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` random bytes as hex, for the RPC secret.
fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
