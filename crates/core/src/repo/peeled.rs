//! The bridge to peel: a backup file becomes a plain tree on disk (entries plus
//! `.peel/recipe.json`), and a tree becomes the original bytes again.
//!
//! Why a tree on disk and not a stream: see `docs/repository.md` ("Why the peeled tree goes
//! through a scratch folder").

use std::io::Write;
use std::path::Path;

use super::RepoError;

/// Expands `input` (recorded under the original `name`) into `dir`, which must not exist yet;
/// returns peel's report as JSON, and where the time went. A file in which peel finds neither
/// gzip nor tar is refused.
pub(crate) fn expand_to_dir(
    input: &Path,
    name: &str,
    dir: &Path,
    opts: &peel::ExpandOptions,
) -> Result<(serde_json::Value, peel::Profile), RepoError> {
    let (_, report) = peel::tree::expand_to_dir_as(input, Some(name), dir, opts).map_err(|e| {
        RepoError::Peel {
            path: input.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    if report.layers.is_empty() {
        // Whatever its name says, this is no Discourse backup (an error page saved under the
        // backup's name, a truncated download, the wrong file): storing it would report a
        // success and leave nothing to restore.
        return Err(RepoError::Invalid(format!(
            "{}: not a Discourse backup: neither gzip nor tar (dvault stores the .tar.gz, \
             .sql.gz and .tar files Discourse writes)",
            input.display()
        )));
    }
    let json = serde_json::to_value(&report).map_err(|e| RepoError::Peel {
        path: input.to_path_buf(),
        message: format!("serializing the peel report: {e}"),
    })?;
    Ok((json, report.profile))
}

/// Rebuilds the original bytes from the tree in `dir` into `out`; peel checks them against the
/// recipe's size and SHA-256. Returns the size and SHA-256 written.
pub(crate) fn rebuild_from_dir(
    dir: &Path,
    out: &mut (dyn Write + Send),
) -> Result<(u64, String), RepoError> {
    let d = peel::tree::rebuild_from_dir(dir, out).map_err(|e| RepoError::Peel {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok((d.size, d.sha256))
}
