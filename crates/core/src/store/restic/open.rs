//! Opening a repository (`init`, `open`) and loading its index, with the one recovery from
//! damaged index files that every indexed operation shares.

use rustic_core::{IndexedTree, RusticResult};

use super::*;

/// One of rustic_core's index-loading steps (`Repository::to_indexed` and its kin).
type LoadIndex<S> = fn(Repository<OpenStatus>) -> RusticResult<Repository<S>>;

impl Repo {
    /// Creates a new repository at `cfg.location`, protected by `password`. Refuses when one
    /// exists already.
    pub fn init(
        cfg: &RepoConfig,
        password: &Password,
        opts: &InitOptions,
        progress: Option<Arc<dyn ProgressBars>>,
    ) -> Result<Self, RepoError> {
        let loc = &cfg.location;
        let mut config_opts = ConfigOptions::default();
        let ch = opts
            .chunker
            .unwrap_or(crate::repo::ChunkerSizes::DVAULT_DEFAULT);
        ch.validate()?;
        config_opts.set_chunk_min_size = Some(bytesize(ch.min));
        config_opts.set_chunk_size = Some(bytesize(ch.avg));
        config_opts.set_chunk_max_size = Some(bytesize(ch.max));
        if let Location::Local(p) = loc {
            // rustic creates missing parents; an existing non-empty folder that is not a
            // repository is a mistake in the path more often than not.
            if p.is_dir()
                && fs::read_dir(p)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                if p.join("config").exists() {
                    return Err(RepoError::AlreadyExists(loc.to_string()));
                }
                return Err(RepoError::Invalid(format!(
                    "{}: folder exists and is not empty; init wants a new or empty folder",
                    p.display()
                )));
            }
        }
        let skip = SkipSet::default();
        let raw = raw_repo(cfg, progress.clone(), &skip)?;
        if raw
            .config_id()
            .map_err(|e| RepoError::rustic(loc, "looking for a config file", &e))?
            .is_some()
        {
            return Err(RepoError::AlreadyExists(loc.to_string()));
        }
        let repo = raw
            .init(
                &Credentials::password(password.expose()),
                &KeyOptions::default(),
                &config_opts,
            )
            .map_err(|e| RepoError::rustic(loc, "initializing", &e))?;
        Ok(Self {
            cfg: cfg.clone(),
            repo: Mutex::new(Some(repo)),
            skip,
            progress,
        })
    }

    /// Opens an existing repository.
    pub fn open(
        cfg: &RepoConfig,
        password: &Password,
        progress: Option<Arc<dyn ProgressBars>>,
    ) -> Result<Self, RepoError> {
        let loc = &cfg.location;
        if let Location::Local(p) = loc {
            if !p.join("config").is_file() {
                return Err(RepoError::NotFound(loc.to_string()));
            }
        }
        let skip = SkipSet::default();
        let raw = raw_repo(cfg, progress.clone(), &skip)?;
        let found = raw
            .config_id()
            .map_err(|e| RepoError::rustic(loc, "looking for the config file", &e))?;
        if found.is_none() {
            return Err(RepoError::NotFound(loc.to_string()));
        }
        let repo = raw
            .open(&Credentials::password(password.expose()))
            .map_err(|e| {
                if e.is_incorrect_password() {
                    RepoError::WrongPassword(loc.to_string())
                } else {
                    RepoError::rustic(loc, "opening", &e)
                }
            })?;
        Ok(Self {
            cfg: cfg.clone(),
            repo: Mutex::new(Some(repo)),
            skip,
            progress,
        })
    }

    pub(super) fn slot(&self) -> MutexGuard<'_, Option<Repository<OpenStatus>>> {
        self.repo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the repository's own lock (restic's lock files, see repo_lock.rs); held until
    /// the returned guard is dropped.
    pub(crate) fn lock(&self, kind: LockKind) -> Result<Option<HeldLock>, RepoError> {
        let (key, version) = self.with_open(|r| Ok((r.key(), r.config().version)))?;
        let parts = (&key.encrypt[..], &key.mac.k[..], &key.mac.r[..]);
        repo_lock::take(&self.cfg, parts, version, kind)
    }

    /// Runs `f` on the open repository.
    pub(crate) fn with_open<T>(
        &self,
        f: impl FnOnce(&Repository<OpenStatus>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        let slot = self.slot();
        let repo = slot.as_ref().ok_or_else(|| self.lost())?;
        f(repo)
    }

    /// Runs `f` on the repository with its full index loaded.
    ///
    /// One damaged index file must not stop restores of snapshots that do not need it: it is
    /// left out, and the packs it listed are found by reading their own headers (they are
    /// encrypted and authenticated like everything else). Blobs are still checked against
    /// their ids when read, and restored files against their SHA-256.
    pub(crate) fn with_index<T>(
        &self,
        f: impl FnOnce(&Repository<IndexedFullStatus>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        self.with_indexed(
            Repository::to_indexed,
            Some(Repository::to_indexed_checked),
            f,
        )
    }

    /// Runs `f` on the repository with the index of blob ids loaded (enough to back up).
    ///
    /// A backup without the damaged index files stores again the blobs they listed, so the
    /// new snapshot does not depend on them: no pack headers are read.
    pub(crate) fn with_ids<T>(
        &self,
        f: impl FnOnce(&Repository<IndexedIdsStatus>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        self.with_indexed(Repository::to_indexed_ids, None, f)
    }

    /// Loads an index with `load` and runs `f` on it; the one recovery from damaged index
    /// files. When `load` fails and some index files cannot be read, they are left out (see
    /// `wrapped_backend.rs`) and the index is loaded again: first with `from_headers` (which
    /// also reads the headers of packs no readable index file lists), then, if that fails
    /// too, with `load` from the readable index files only.
    fn with_indexed<S: IndexedTree, T>(
        &self,
        load: LoadIndex<S>,
        from_headers: Option<LoadIndex<S>>,
        f: impl FnOnce(&Repository<S>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        let mut slot = self.slot();
        let open = slot.take().ok_or_else(|| self.lost())?;
        let key = open.key();
        let indexed = match load(open) {
            Ok(i) => i,
            Err(first) => {
                let again = self.reopen(&key)?;
                if !self.skip_damaged_index(&again) {
                    *slot = Some(again);
                    return Err(self.err("reading the index")(first));
                }
                let checked = match from_headers {
                    Some(from_headers) => match from_headers(self.reopen(&key)?) {
                        Ok(i) => Some(i),
                        Err(e) => {
                            tracing::warn!(
                                "reading the headers of packs that no readable index file \
                                 lists failed ({}); going on with the readable index files only",
                                one_line(&e)
                            );
                            None
                        }
                    },
                    None => None,
                };
                match checked.map_or_else(|| load(again), Ok) {
                    Ok(i) => i,
                    Err(e) => {
                        self.skip.clear();
                        *slot = Some(self.reopen(&key)?);
                        return Err(self.err("reading the index")(e));
                    }
                }
            }
        };
        let r = f(&indexed);
        self.skip.clear();
        *slot = Some(indexed.drop_index());
        r
    }

    /// Opens the repository again with the master key of an earlier opening (no password
    /// hashing), for when rustic_core consumed the open repository in a failed step.
    pub(super) fn reopen(&self, key: &MasterKey) -> Result<Repository<OpenStatus>, RepoError> {
        raw_repo(&self.cfg, self.progress.clone(), &self.skip)?
            .open(&Credentials::Masterkey(key.clone()))
            .map_err(self.err("opening again"))
    }

    /// Finds index files that cannot be read, warns about each and leaves them out of index
    /// listings until the operation ends; true when there were any.
    pub(super) fn skip_damaged_index(&self, repo: &Repository<OpenStatus>) -> bool {
        let damaged = damaged_files::<IndexFile>(repo);
        for (id, why) in &damaged {
            tracing::warn!(
                "index file index/{id} of {} is damaged ({why}); leaving it out: the packs it \
                 listed are found from their own headers. Run `dvault check`.",
                self.cfg.location
            );
        }
        self.skip.skip(
            damaged
                .iter()
                .filter_map(|(id, _)| id.parse::<rustic_core::Id>().ok()),
        );
        !damaged.is_empty()
    }

    pub(super) fn lost(&self) -> RepoError {
        RepoError::Invalid(format!(
            "repository {}: unusable after an earlier error while reading its index; open it again",
            self.cfg.location
        ))
    }
}

/// The files of type `F` that cannot be read and decrypted: (full id, what is wrong).
pub(super) fn damaged_files<F: rustic_core::repofile::RepoFile>(
    repo: &Repository<OpenStatus>,
) -> Vec<(String, String)> {
    let Ok(ids) = repo.list::<F::Id>() else {
        return Vec::new();
    };
    ids.filter_map(|id| {
        repo.get_file::<F>(&id)
            .err()
            .map(|e| (id.to_hex().as_str().to_string(), one_line(&e)))
    })
    .collect()
}

pub(super) fn bytesize(n: u64) -> bytesize::ByteSize {
    bytesize::ByteSize::b(n)
}

pub(crate) fn raw_repo(
    cfg: &RepoConfig,
    progress: Option<Arc<dyn ProgressBars>>,
    skip: &SkipSet,
) -> Result<Repository<()>, RepoError> {
    let backends = cfg.location.backends_for(cfg)?;
    let repository = Arc::new(WrappedBackend::new(
        backends.repository(),
        skip.clone(),
        progress.clone(),
    ));
    let backends = RepositoryBackends::new(repository, backends.repo_hot());
    let mut opts = RepositoryOptions::default();
    opts.cache_dir.clone_from(&cfg.cache_dir);
    let r = match progress {
        Some(p) => Repository::new_with_progress(&opts, &backends, ProgressAdapter(p)),
        None => Repository::new(&opts, &backends),
    };
    r.map_err(|e| RepoError::rustic(&cfg.location, "preparing", &e))
}
