//! The edits Discourse's own restore makes to a dump before `psql` sees it
//! (`DatabaseRestorer`, lib/backup_restore/database_restorer.rb): the statements it drops, and
//! the readonly trigger functions it creates first. The scanner (`super`) applies them.

/// Statement lines Discourse's restore deletes before `psql` runs the dump (its
/// `DatabaseRestorer#sed_command`, lib/backup_restore/database_restorer.rb): the dump's `public`
/// schema already exists in the target, and PostgreSQL 12's access-method setting is unknown to
/// older servers. `CREATE EXTENSION` and `COMMENT ON EXTENSION` go too (issue 17 reports newer
/// Discourse removing them; the stored copy of that file, commit 3a481af, predates it): the
/// drill's database gets its extensions from dvault itself, as the server's administrator,
/// before the load (each one the dump names, if allowed: see `extensions.rs`), and the load
/// runs as a role that may not create or comment on them.
/// `SET transaction_timeout` (pg_dump 17 and later) is unknown to older servers, and issue 17
/// lists it among Discourse's filters too.
pub(super) const DROPPED_PREFIXES: [&[u8]; 7] = [
    b"DROP SCHEMA",
    b"CREATE SCHEMA",
    b"COMMENT ON SCHEMA",
    b"SET default_table_access_method",
    b"SET transaction_timeout",
    b"CREATE EXTENSION",
    b"COMMENT ON EXTENSION",
];

/// Statements dropped whole, over as many lines as they take (issue 17's list of newer
/// Discourse's filters): the `discourse_functions` readonly functions (created by the
/// restore itself, here by the scanner at the trigger that needs them), and foreign servers,
/// user mappings and foreign tables (they point at other servers, need an extension the
/// drill's database does not have, and hold no forum data).
pub(super) const DROPPED_STATEMENTS: [&[u8]; 4] = [
    b"CREATE FUNCTION discourse_functions.",
    b"CREATE SERVER ",
    b"CREATE USER MAPPING ",
    b"CREATE FOREIGN TABLE ",
];

/// psql's own restricted-mode lines, written by pg_dump 13.22, 14.19, 15.14, 16.10, 17.6 and
/// later: dropped, because the drill wraps the whole load in a `\restrict` with its own key
/// (in restricted mode a second `\restrict` is an error).
pub(super) const RESTRICT_LINES: [&[u8]; 2] = [b"\\restrict ", b"\\unrestrict "];

/// The schema of the functions Discourse's readonly triggers call (`Migration::BaseDropper`).
/// A dump made with `--schema=public` refers to them without defining them; Discourse's restore
/// creates them first, and so do we.
pub(super) const FUNCTION_SCHEMA: &str = "discourse_functions";

/// The `discourse_functions` function a trigger line executes, if any.
pub(super) fn readonly_function(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let needle = format!("{FUNCTION_SCHEMA}.");
    let at = text.find(&needle)? + needle.len();
    let rest = &text[at..];
    let end = rest.find('(')?;
    let name = &rest[..end];
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

/// The SQL Discourse runs to create a readonly trigger function, on one line.
pub(crate) fn readonly_function_sql(name: &str) -> String {
    // Discourse's message names the table or column; the name carries both.
    let what = name
        .strip_prefix("raise_")
        .and_then(|n| n.strip_suffix("_readonly"))
        .unwrap_or(name);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {FUNCTION_SCHEMA}; CREATE OR REPLACE FUNCTION \
         {FUNCTION_SCHEMA}.{name}() RETURNS trigger AS $rcr$ BEGIN RAISE EXCEPTION \
         'Discourse: {what} is read only'; END $rcr$ LANGUAGE plpgsql; "
    )
}
