//! Sources of Discourse backups (to be written).
