//! Keeping credentials out of everything dvault prints or stores.
//!
//! A repository location such as `rest:https://user:secret@host/` carries a password in the
//! URL's user info (restic's notation; also an S3 endpoint or a ping URL may). Every place that
//! shows or stores a location (messages, `--json`, log lines, ping bodies, the snapshot ledger,
//! state files) goes through [`text`], which replaces the password of every URL in it with
//! `***`; the user name stays, as restic shows it. Only the backend that talks to the server
//! sees the real URL (see `repo::backend`).

use std::borrow::Cow;

/// What a password is replaced with.
pub const MASK: &str = "***";

/// `s` with the password of every `scheme://user:password@host` in it replaced by [`MASK`].
/// Works on free text (error messages, log lines), not only on a single URL; borrows when
/// there is nothing to hide.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains("://") || !s.contains('@') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends where the path, query or fragment starts (RFC 3986), or where the
        // URL ends in the surrounding text.
        let end = tail
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '`' | '\'' | '"' | '<' | '>' | ')' | ']'
                ) || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        // As URL parsers do, the last `@` ends the user info (a raw `@` in a password).
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, password)) if password != MASK => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                        changed = true;
                    }
                    _ => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// [`text`] as an owned string, for the many `format!` call sites.
pub fn string(s: &str) -> String {
    text(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_of_a_rest_location() {
        assert_eq!(
            text("rest:http://backup:s3cr%40t@127.0.0.1:8000/repo"),
            "rest:http://backup:***@127.0.0.1:8000/repo"
        );
    }

    #[test]
    fn hides_passwords_in_free_text_and_keeps_everything_else() {
        let msg = "no repository at rest:https://u:pw@h:1/ (run init); see https://x.org/a@b \
                   and `s3:http://k:sec@host/bucket`";
        assert_eq!(
            text(msg),
            "no repository at rest:https://u:***@h:1/ (run init); see https://x.org/a@b \
             and `s3:http://k:***@host/bucket`"
        );
    }

    #[test]
    fn a_raw_at_sign_in_the_password_is_hidden_too() {
        assert_eq!(text("http://u:p@ss@h/"), "http://u:***@h/");
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        for s in [
            "rest:http://127.0.0.1:8000/",
            "rest:http://user@host/",
            "/srv/repo",
            "mail me@example.org",
            "http://u:***@h/",
        ] {
            assert!(matches!(text(s), Cow::Borrowed(_)), "{s}");
        }
    }
}
