//! The extensions a drill database gets: which ones a dump may ask for, and creating them as
//! the server's administrator before the dump's own statements need them.
//!
//! Discourse's restore drops a dump's `CREATE EXTENSION` lines (issue 17): it restores into a
//! database that already has its extensions. A drill database is new, so dvault creates them
//! itself, as the administrator (the drill role may not create extensions): those every
//! Discourse database has, and each one the dump's `CREATE EXTENSION` lines name, but only
//! from [`ALLOWED`]. A crafted dump naming anything else (an untrusted language, `file_fdw`,
//! `adminpack`, `dblink`) gets nothing created and the drill fails naming it.

use anyhow::{bail, Result};

use crate::postgres::quote_ident;

/// Extensions a Discourse database uses. Discourse's Docker install creates `hstore`, `pg_trgm`
/// and `vector` (pgvector, for discourse-ai embeddings) in every forum database
/// (discourse/discourse_docker, templates/postgres.template.yml, `create_db`); `plpgsql` is in
/// every database. The rest are contrib extensions that run no untrusted code and touch no
/// server files, kept for plugins that use them (this list was not found in the stored
/// Discourse source; it is the set issue 17 names).
pub(crate) const ALLOWED: &[&str] = &[
    "hstore",
    "pg_trgm",
    "vector",
    "plpgsql",
    "unaccent",
    "citext",
    "pgcrypto",
    "fuzzystrmatch",
    "btree_gist",
    "btree_gin",
    "intarray",
];

/// Created in every drill database before the load (when the server has them): a dump made with
/// `--schema=public`, as Discourse makes it, uses them without creating them. Same source as
/// [`ALLOWED`].
pub(crate) const BASELINE: &[&str] = &["hstore", "pg_trgm", "vector"];

/// How long the administrator's `CREATE EXTENSION` may wait: the load's transaction is open
/// meanwhile, and a crafted dump could hold a lock it needs.
const CREATE_TIMEOUT: &str = "60s";

/// The extension a `CREATE EXTENSION [IF NOT EXISTS] name ...` line names, unquoted.
pub(crate) fn named_in(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"CREATE EXTENSION ")?;
    let rest = rest.strip_prefix(b"IF NOT EXISTS ").unwrap_or(rest);
    let text = std::str::from_utf8(rest).ok()?;
    let text = text.trim_start();
    if let Some(quoted) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    name.push('"');
                    continue;
                }
                return Some(name);
            }
            name.push(c);
        }
        None
    } else {
        let name: String = text
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
            .collect();
        // Unquoted names fold to lower case, as PostgreSQL folds them.
        (!name.is_empty()).then(|| name.to_ascii_lowercase())
    }
}

/// Why a named extension is not created, or `Ok` when it may be.
pub(crate) fn check_allowed(name: &str) -> Result<()> {
    if !ALLOWED.contains(&name) {
        bail!(
            "the dump creates extension {name:?}, which no Discourse database uses (allowed: {}); \
             it was not created, since a crafted backup must not get an untrusted language or \
             file access installed",
            ALLOWED.join(", ")
        );
    }
    Ok(())
}

/// SQL run as the administrator in the drill database: creates `name` when the server has it,
/// fails naming it otherwise.
pub(crate) fn create_sql(name: &str) -> String {
    let ident = quote_ident(name);
    let literal = name.replace('\'', "''");
    format!(
        "SET statement_timeout = '{CREATE_TIMEOUT}';\n\
         DO $dvault$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions \
         WHERE name = '{literal}') THEN RAISE EXCEPTION 'extension % is not available on this \
         server (pg_available_extensions; install its package, e.g. postgresql-NN-pgvector for \
         vector)', '{literal}'; END IF; END $dvault$;\n\
         CREATE EXTENSION IF NOT EXISTS {ident} WITH SCHEMA public;\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_pg_dump_writes_them() {
        assert_eq!(
            named_in(b"CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;").as_deref(),
            Some("hstore")
        );
        assert_eq!(
            named_in(b"CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA public;")
                .as_deref(),
            Some("uuid-ossp")
        );
        assert_eq!(
            named_in(b"CREATE EXTENSION Vector;").as_deref(),
            Some("vector")
        );
        assert_eq!(
            named_in(b"CREATE EXTENSION \"a\"\"b\";").as_deref(),
            Some("a\"b")
        );
        assert_eq!(named_in(b"CREATE TABLE x ();"), None);
    }

    #[test]
    fn only_listed_extensions_are_allowed() {
        for ok in ["hstore", "pg_trgm", "vector", "unaccent", "plpgsql"] {
            check_allowed(ok).unwrap();
        }
        for bad in [
            "plperlu",
            "plpython3u",
            "file_fdw",
            "adminpack",
            "dblink",
            "HSTORE",
        ] {
            let e = check_allowed(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
