//! The simulator's integration tests, as one test binary (one link of the crate and its
//! dependencies instead of one per file): its backups checked with the real tools (`backups`),
//! each Discourse generation against Discourse's own writers (`generations`), and the command
//! line (`cli`); `common` holds what they share.

mod backups;
mod cli;
mod common;
mod generations;
