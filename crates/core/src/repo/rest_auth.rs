//! Credentials of a REST server (rest-server's `.htpasswd`, `rclone serve restic --user/--pass`),
//! and telling a refused login apart from a missing repository.
//!
//! As restic does, the user name and password may sit in the URL
//! (`rest:https://user:pass@host/`), or come from `DVAULT_REST_USERNAME` / `DVAULT_REST_PASSWORD`
//! (restic's `RESTIC_REST_USERNAME` / `RESTIC_REST_PASSWORD` are read too); dvault also takes the
//! password from a file (`[repository] rest_password_file`, or `DVAULT_REST_PASSWORD_FILE`), so
//! it need not be in the environment or the config. What the URL holds wins, as in restic.
//!
//! The credentials are put into the URL only when it is handed to rustic_backend's REST client
//! ([`url_with_credentials`]); everything dvault prints or stores shows the location with the
//! password replaced (see [`crate::redact`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::RepoError;

/// User name for the REST server (restic: `RESTIC_REST_USERNAME`, also read).
pub const ENV_USERNAME: &str = "DVAULT_REST_USERNAME";
/// Password for the REST server (restic: `RESTIC_REST_PASSWORD`, also read).
pub const ENV_PASSWORD: &str = "DVAULT_REST_PASSWORD";
/// File whose first line is the REST server's password.
pub const ENV_PASSWORD_FILE: &str = "DVAULT_REST_PASSWORD_FILE";

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// `url` (a `rest:` location without the prefix) with the user name and password from the
/// URL itself, else `password_file` / the environment (see the module docs). Only for the
/// HTTP client: the result holds the password in clear.
pub fn url_with_credentials(url: &str, password_file: Option<&Path>) -> Result<String, RepoError> {
    let shown = crate::redact::string(url);
    let bad = |reason: String| RepoError::Location {
        location: format!("rest:{shown}"),
        reason,
    };
    let mut parsed = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
    if parsed.password().is_some() {
        return Ok(url.to_string());
    }
    if parsed.username().is_empty() {
        if let Some(user) = env(&[ENV_USERNAME, "RESTIC_REST_USERNAME"]) {
            parsed
                .set_username(&user)
                .map_err(|()| bad("this URL cannot carry a user name".into()))?;
        }
    }
    let file = password_file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(ENV_PASSWORD_FILE).map(PathBuf::from));
    let password = match file {
        Some(f) => Some(super::password::read_file(&f)?.expose().to_string()),
        None => env(&[ENV_PASSWORD, "RESTIC_REST_PASSWORD"]),
    };
    let Some(password) = password else {
        return Ok(parsed.to_string());
    };
    if parsed.username().is_empty() {
        return Err(bad(format!(
            "a REST password was given but no user name: put it in the URL \
             (rest:http://USER@host/) or in {ENV_USERNAME}"
        )));
    }
    parsed
        .set_password(Some(&password))
        .map_err(|()| bad("this URL cannot carry a password".into()))?;
    Ok(parsed.to_string())
}

/// Asks the server for the repository's `config` file before rustic does: rustic_backend reads
/// any answer but 200 as "no such file", which turned a wrong password into "no repository
/// here, run init". A 401 or 403 is reported as what it is; anything else (found, not found,
/// no answer) is left to rustic, which reports it in its own words.
pub fn refused_login(url_with_credentials: &str, shown: &str) -> Result<(), RepoError> {
    // join() replaces the last path segment unless the base ends with a slash.
    let with_slash = if url_with_credentials.ends_with('/') {
        url_with_credentials.to_string()
    } else {
        format!("{url_with_credentials}/")
    };
    let Ok(base) = url::Url::parse(&with_slash) else {
        return Ok(());
    };
    let Ok(config) = base.join("config") else {
        return Ok(());
    };
    let Ok(client) = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    else {
        return Ok(());
    };
    let Ok(answer) = client.head(config).send() else {
        return Ok(());
    };
    let status = answer.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let has_login = base.password().is_some() || !base.username().is_empty();
        return Err(RepoError::RestRefused {
            location: shown.to_string(),
            status: status.as_u16(),
            hint: if has_login {
                "check the user name and password (URL, rest_password_file, \
                 DVAULT_REST_USERNAME / DVAULT_REST_PASSWORD)"
            } else {
                "the server wants a login: give the user name in the URL or \
                 DVAULT_REST_USERNAME, the password in rest_password_file, \
                 DVAULT_REST_PASSWORD_FILE or DVAULT_REST_PASSWORD"
            },
        });
    }
    Ok(())
}
