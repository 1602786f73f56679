//! The extensions a drill database gets: which ones a dump may ask for, and creating them as
//! the server's administrator before the dump's own statements need them.
//!
//! Discourse's restore drops a dump's `CREATE EXTENSION` lines (issue 17): it restores into a
//! database that already has its extensions. A drill database is new, so dvault creates them
//! itself, as the administrator (the drill role may not create extensions): those every
//! Discourse database has, and each one the dump's `CREATE EXTENSION` lines name, but only
//! from [`ALLOWED`] (the dump reader, `crate::dump`, finds the names). A crafted dump naming
//! anything else (an untrusted language, `file_fdw`, `adminpack`, `dblink`) gets nothing
//! created and the drill fails naming it.

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
