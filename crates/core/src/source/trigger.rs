//! Making a fresh backup through Discourse's admin API before one is fetched: wait for an
//! operation already running, else ask for a backup and wait for it, and take only a backup
//! that was not there before. Each kind of source says what "there" means (see `newest.rs`).

use super::{api, Note, SourceError};
use crate::config::ApiConfig;

/// Whether the backup Discourse was asked for (or was already making) has appeared.
pub(super) enum Fresh<T> {
    /// It has: the selection holding it.
    New(T),
    /// It has not: why, for the error.
    Not(String),
}

/// The admin-API flow, as Discourse answers (see [`api`]): when an operation already runs (its
/// own scheduled backup, or a restore), wait for it to end and take the backup it wrote; when it
/// wrote none, or nothing ran, start a backup and wait for it. `fresh` says whether a complete
/// backup appeared that was not there before.
pub(super) fn through_api<T>(
    api_cfg: &ApiConfig,
    note: Note<'_>,
    mut fresh: impl FnMut() -> Result<Fresh<T>, SourceError>,
) -> Result<T, SourceError> {
    let client = api::ApiClient::from_config(api_cfg)?;
    if client.wait_until_idle(&mut *note)? {
        match fresh()? {
            Fresh::New(t) => {
                note("took the backup that the forum's own operation wrote");
                return Ok(t);
            }
            Fresh::Not(_) => note(
                "the operation that was running wrote no new backup (a restore, or a backup that \
                 failed); asking the forum for one",
            ),
        }
    }
    // Each round either ends with a backup or waits for an operation that ran in between; a
    // forum that is busy round after round (or refuses while idle) ends the site with an error.
    let mut last_refusal = String::new();
    for _ in 0..3 {
        match client.start_backup(api_cfg.with_uploads)? {
            api::Start::Started => {
                note("asked the forum to make a backup; waiting for it to finish");
                client.wait_for_backup(&mut *note)?;
                return match fresh()? {
                    Fresh::New(t) => Ok(t),
                    Fresh::Not(why) => Err(SourceError::NothingFound(format!(
                        "Discourse reported the backup finished, but {why}"
                    ))),
                };
            }
            api::Start::Busy => {
                note(
                    "the forum did not start a backup: status.json says an operation is running; \
                     waiting for it",
                );
                client.wait_until_idle(&mut *note)?;
                if let Fresh::New(t) = fresh()? {
                    note("took the backup that the forum's own operation wrote");
                    return Ok(t);
                }
            }
            // Refused although nothing runs: the operation may have ended in between, so the
            // next round asks again; the forum's words are kept for the error.
            api::Start::Refused(why) => last_refusal = why,
        }
    }
    Err(SourceError::Api(api::ApiError::Unexpected {
        url: client.create_url(),
        message: if last_refusal.is_empty() {
            "the forum stayed busy with other backups or restores through three attempts".into()
        } else {
            format!(
                "the forum refused to start a backup although no operation is running: \
                 {last_refusal}"
            )
        },
    }))
}
