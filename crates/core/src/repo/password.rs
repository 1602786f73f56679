//! Where the repository password comes from: a file or the environment, never a command-line
//! value (argv is visible to every user of the host through `ps`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::RepoError;

/// Environment variable naming a file that holds the password.
pub const ENV_PASSWORD_FILE: &str = "DVAULT_PASSWORD_FILE";
/// Environment variable holding the password itself.
pub const ENV_PASSWORD: &str = "DVAULT_PASSWORD";

/// A repository password. `Debug` never shows it, so it cannot leak into logs.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password that was read from a file or the environment.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for handing to the repository layer only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Finds the password: `--password-file` first, then `DVAULT_PASSWORD_FILE`, then
/// `DVAULT_PASSWORD`.
pub fn resolve(password_file: Option<&Path>) -> Result<Password, RepoError> {
    if let Some(file) = password_file {
        return read_file(file);
    }
    if let Some(file) = std::env::var_os(ENV_PASSWORD_FILE) {
        return read_file(&PathBuf::from(file));
    }
    match std::env::var(ENV_PASSWORD) {
        Ok(p) if !p.is_empty() => Ok(Password(p)),
        _ => Err(RepoError::NoPassword),
    }
}

/// Reads a password file: its first line, without the line ending (see
/// [`resolve_for_new_repository`] for how restic differs).
pub fn read_file(file: &Path) -> Result<Password, RepoError> {
    first_line(file, &read_text(file)?)
}

/// Like [`resolve`], for a new repository: a password file that the stock restic would read
/// differently is refused. restic takes the whole file with white space trimmed at both ends,
/// dvault its first line; they agree on a one-line file without leading or trailing spaces.
pub fn resolve_for_new_repository(password_file: Option<&Path>) -> Result<Password, RepoError> {
    let file = password_file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(ENV_PASSWORD_FILE).map(PathBuf::from));
    let Some(file) = file else {
        return resolve(None);
    };
    let text = read_text(&file)?;
    let password = first_line(&file, &text)?;
    if text.trim() == password.expose() {
        return Ok(password);
    }
    Err(RepoError::PasswordFile {
        path: file,
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the password has spaces at its start or end, or the file has more than one line; \
             the stock restic reads such a file differently and could not open the repository",
        ),
    })
}

fn read_text(file: &Path) -> Result<String, RepoError> {
    let err = |source| RepoError::PasswordFile {
        path: file.to_path_buf(),
        source,
    };
    crate::secret_file::check(file, "password file").map_err(err)?;
    fs::read_to_string(file).map_err(err)
}

/// The password in a password file's `text`: its first line.
fn first_line(file: &Path, text: &str) -> Result<Password, RepoError> {
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(RepoError::PasswordFile {
            path: file.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
        });
    }
    Ok(Password(line.to_string()))
}

/// Creates a new file holding `contents` with mode 0600 from the first byte on (never
/// world-readable, not even briefly). Refuses to overwrite an existing file.
pub fn create_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Creates `path` (0600, must not exist) holding a new random password (32 bytes from the
/// kernel's generator, hex) and returns it.
pub fn generate_into(path: &Path) -> Result<Password, RepoError> {
    let io_err = |source| RepoError::PasswordFile {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = [0u8; 32];
    std::io::Read::read_exact(
        &mut fs::File::open("/dev/urandom").map_err(io_err)?,
        &mut raw,
    )
    .map_err(io_err)?;
    let secret = hex::encode(raw);
    create_secret_file(path, format!("{secret}\n").as_bytes()).map_err(io_err)?;
    Ok(Password(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_password_file_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        let p = generate_into(&f).unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_file(&f).unwrap().expose(), p.expose());
        assert!(generate_into(&f).is_err(), "never overwrites");
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(
            resolve_for_new_repository(Some(&f)).unwrap().expose(),
            p.expose()
        );
    }

    #[test]
    fn a_password_restic_would_read_differently_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("spaces", "secret pass  \r\n"), ("lines", "one\ntwo\n")] {
            let f = dir.path().join(name);
            fs::write(&f, text).unwrap();
            assert!(read_file(&f).is_ok());
            let e = resolve_for_new_repository(Some(&f))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name) && e.contains("restic reads"), "{e}");
        }
    }
}
