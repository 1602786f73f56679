//! The drill's database and the role that loads it.
//!
//! A backup is untrusted input: whoever broke into the forum's host can leave a crafted file
//! in its backups folder. So the dump never runs with the administrator's rights. For each
//! drill dvault creates, as the administrator, a fresh role that is not a superuser and may
//! create no roles or databases, and a fresh database owned by it; the dump is loaded and
//! checked logged in as that role. It can do what a database owner can do inside its own
//! database and nothing more: no `COPY ... TO PROGRAM` or server files (superuser or
//! `pg_execute_server_program` only), no `ALTER SYSTEM`, no untrusted language, no other
//! database, no `SET ROLE` to a role it is not a member of. Afterwards the database and then
//! the role are dropped, so the server is left as it was.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};

use super::server::Server;
use crate::postgres::quote_ident;

/// How a client program logs in as the drill's role.
pub(crate) struct Login {
    /// The role's name (the database's name: `dvault_drill_...`).
    pub role: String,
    /// Its password, random for this drill; handed to psql through `PGPASSWORD`.
    pub password: String,
}

/// A database created for a drill, with its own role; both dropped when this goes out of scope.
pub(crate) struct DrillDatabase<'a> {
    server: &'a Server,
    name: String,
    login: Login,
    dropped: bool,
}

/// `n` random ASCII letters and digits from the operating system's random source.
pub(crate) fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    // 256 = 4 * 62 + 8: the bias is below 4 %, harmless for a one-off key.
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

impl<'a> DrillDatabase<'a> {
    /// Creates a new, uniquely named role and a database owned by it.
    pub(crate) fn create(server: &'a Server) -> Result<DrillDatabase<'a>> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!(
            "dvault_drill_{secs}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let login = Login {
            role: name.clone(),
            password: random_token(32),
        };
        let admin_db = server.maintenance_db();
        // The password travels in the SQL on psql's standard input, never on a command line.
        server
            .execute(
                &admin_db,
                &format!(
                    "CREATE ROLE {} LOGIN PASSWORD '{}' NOSUPERUSER NOCREATEDB NOCREATEROLE \
                     NOREPLICATION NOBYPASSRLS",
                    quote_ident(&name),
                    login.password
                ),
            )
            .with_context(|| {
                format!(
                    "creating the drill role {name} on {} (the --postgres user needs the right to \
                     create roles and databases)",
                    server.describe()
                )
            })?;
        let mut db = DrillDatabase {
            server,
            name,
            login,
            dropped: false,
        };
        // A superuser may give the database to any role; anyone else must be a member of it.
        let mut superuser = false;
        server.query_as(
            &admin_db,
            None,
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user;\n",
            &mut |f| {
                superuser = f.first().copied().flatten() == Some("t");
                Ok(())
            },
        )?;
        let grant = if superuser {
            String::new()
        } else {
            format!("GRANT {} TO CURRENT_USER;\n", quote_ident(&db.name))
        };
        server
            .execute(
                &admin_db,
                &format!(
                    "{grant}CREATE DATABASE {0} OWNER {0} TEMPLATE template0 ENCODING 'UTF8' \
                     LC_COLLATE 'C' LC_CTYPE 'C'",
                    quote_ident(&db.name)
                ),
            )
            .with_context(|| {
                format!(
                    "creating the drill database {} on {}",
                    db.name,
                    server.describe()
                )
            })
            .inspect_err(|_| {
                // Only the role exists yet: drop it now.
                db.dropped = true;
                let _ = db.drop_role();
            })?;
        // The dump creates its tables in `public`. PostgreSQL 15 gives that schema to the
        // database's owner; a cluster upgraded from an older release may keep the bootstrap
        // superuser as its owner: give it to the role either way.
        server
            .execute(
                &db.name,
                &format!("ALTER SCHEMA public OWNER TO {}", quote_ident(&db.name)),
            )
            .with_context(|| format!("giving schema public of {} to its role", db.name))?;
        Ok(db)
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// How to log in as its role.
    pub(crate) fn login(&self) -> &Login {
        &self.login
    }

    /// Drops the database and the role now, reporting an error.
    pub(crate) fn drop_now(mut self) -> Result<()> {
        self.dropped = true;
        self.drop_database()
            .with_context(|| format!("dropping the drill database {}", self.name))?;
        self.drop_role()
            .with_context(|| format!("dropping the drill role {}", self.name))
    }

    fn drop_database(&self) -> Result<()> {
        // WITH (FORCE): a session the dump left behind must not keep the database alive.
        self.server.execute(
            &self.server.maintenance_db(),
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.name)
            ),
        )
    }

    fn drop_role(&self) -> Result<()> {
        self.server.execute(
            &self.server.maintenance_db(),
            &format!("DROP ROLE IF EXISTS {}", quote_ident(&self.name)),
        )
    }
}

impl Drop for DrillDatabase<'_> {
    fn drop(&mut self) {
        if !self.dropped {
            self.dropped = true;
            if let Err(e) = self.drop_database().and_then(|()| self.drop_role()) {
                tracing::warn!("dropping the drill database and role {}: {e:#}", self.name);
            }
        }
    }
}
