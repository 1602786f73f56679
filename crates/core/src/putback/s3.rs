//! Putting a backup into a Discourse S3 backup bucket: the objects under
//! `<bucket>[/<folder>]/<db>/` (`lib/backup_restore/s3_backup_store.rb`). The file is rebuilt in
//! a local scratch folder first, then uploaded as one object that S3 shows only once complete
//! and that never replaces an existing one. Its Last-Modified is set by the store, so a put-back
//! object counts as the newest backup there (said in the outcome's notes).

#[cfg(feature = "s3")]
use std::fs;

#[cfg(feature = "s3")]
use super::{io, STAGING_PREFIX};
use super::{Options, PutBackError, Target};
use crate::repo::{Repo, SnapshotInfo};

#[cfg(feature = "s3")]
pub(super) fn into_s3(
    repo: &Repo,
    info: &SnapshotInfo,
    target: &Target,
    opts: &Options,
) -> Result<String, PutBackError> {
    use std::io::Read;
    let Target::S3 {
        endpoint,
        bucket,
        prefix,
    } = target
    else {
        unreachable!("into_s3 takes S3 targets")
    };
    let credentials = crate::s3::Credentials::load(opts.s3_credentials_file.as_deref())
        .map_err(PutBackError::S3)?;
    let s3 = crate::s3::Target {
        endpoint: Some(endpoint.clone()),
        bucket: bucket.clone(),
        prefix: prefix.clone(),
        region: crate::s3::region_from_env(),
        credentials,
    };
    let op = crate::s3::blocking_operator(&s3).map_err(PutBackError::S3)?;
    let name = &info.meta.file_name;
    let fail = |what: &str, e: opendal::Error| {
        PutBackError::S3(crate::s3::explain(&s3, what, &e.to_string()))
    };
    match op.stat(name) {
        Ok(_) => {
            return Err(PutBackError::Exists(format!(
                "s3://{bucket}/{}",
                key_of(prefix, name)
            )))
        }
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
        Err(e) => return Err(fail("cannot look for an existing backup", e)),
    }
    let scratch = opts.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(&scratch)
        .map_err(io(&scratch))?;
    let file = dir.path().join(name);
    repo.restore_file(&info.id, &file)?;
    // One PUT (or multipart upload) per object: S3 shows the object only once it is complete.
    // `if_not_exists`: the store refuses the upload if another writer made the key meanwhile.
    let write_options = opendal::options::WriteOptions {
        if_not_exists: true,
        chunk: Some(16 << 20),
        ..Default::default()
    };
    let mut writer = op
        .writer_options(name, write_options)
        .map_err(|e| fail("cannot start the upload", e))?;
    let mut f = fs::File::open(&file).map_err(io(&file))?;
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(&file))?;
        if n == 0 {
            break;
        }
        writer
            .write(buf[..n].to_vec())
            .map_err(|e| fail("upload failed", e))?;
    }
    writer.close().map_err(|e| fail("upload failed", e))?;
    Ok(format!("s3://{bucket}/{}", key_of(prefix, name)))
}

#[cfg(not(feature = "s3"))]
pub(super) fn into_s3(
    _: &Repo,
    _: &SnapshotInfo,
    target: &Target,
    _: &Options,
) -> Result<String, PutBackError> {
    Err(PutBackError::Target(format!(
        "{}: S3 needs dvault built with the `s3` feature",
        target.describe()
    )))
}

#[cfg(feature = "s3")]
fn key_of(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}
