//! peel's integration tests, as one test binary (one link of the crate and its dependencies
//! instead of one per file). Each module is one former test file; `common` and `gzip_support`
//! are the helpers they share.
//!
//! `hostile_names` installs a counting global allocator for the whole binary; it counts only on
//! a thread that turned it on, so the other modules' tests are not affected.

mod common;
mod gzip_support;

mod bad_input;
mod gzip_errors;
mod gzip_methods;
mod hostile;
mod hostile_names;
mod nested;
mod parallel;
mod rebuild_parallel;
mod tar_formats;
mod tarstream_stream;
