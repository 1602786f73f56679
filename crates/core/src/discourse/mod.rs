//! Everything dvault knows about Discourse's backup files, in one place: how Discourse names them
//! ([`BackupName`], [`classify`]) and what a file holds ([`Format`]). Every source (folder, S3
//! bucket, admin API), the snapshot metadata, retention grouping and the restore drill ask this
//! module; nothing else parses a backup's name or decides its format.
//!
//! The facts come from Discourse's own source, cited where they are used:
//! `lib/backup_restore/creator.rb` (and its predecessors `backuper.rb` and
//! `lib/export/exporter.rb`) builds the names, `lib/backup_restore/meta_data_handler.rb` reads the
//! migration back out of them, `script/discourse` (`discourse backup NAME`) lets an admin choose
//! the name, and `lib/backup_restore/local_backup_store.rb` / `s3_backup_store.rb` list them.

mod format;
mod name;
pub mod restore_api;
mod restore_log;

pub use format::Format;
pub use name::{classify, BackupName, FileKind};
