//! Where the time of one backup went, phase by phase, so every speed figure has an explanation
//! (issue 19): shown by `dvault backup -v` and in the `--json` summary.
//!
//! The phases of a backup run one after another: preparing (lock, looking for a snapshot of
//! the same SHA-256), peeling (reading, decompressing and proving every compressed layer, and
//! writing the plain tree), the dedup layout, and storing (rustic_core reads the tree, chunks,
//! hashes, compresses, encrypts and writes packs). Inside peeling the layers run side by side
//! on their own threads; peel's own [`peel::Profile`] says which of them set the pace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Nanoseconds this process has spent writing pack files to repository backends (rustic_core
/// writes packs from threads of its own, so this overlaps the rest of storing).
static PACK_WRITE_NANOS: AtomicU64 = AtomicU64::new(0);

/// Counts the time of one pack write (called by the backend wrapper).
pub(crate) fn count_pack_write(started: Instant) {
    PACK_WRITE_NANOS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

fn pack_write_nanos() -> u64 {
    PACK_WRITE_NANOS.load(Ordering::Relaxed)
}

/// Where the time of one backup went, in wall-clock seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupProfile {
    /// The whole backup.
    pub total_s: f64,
    /// Locking and looking for a snapshot of the same SHA-256.
    pub prepare_s: f64,
    /// Expanding the file into the plain tree: reading, decompressing, proving each layer,
    /// writing the tree (the layers overlap; see `peel`).
    pub peel_s: f64,
    /// The dedup layout of the dumps (0 with `DVAULT_LAYOUT=plain`).
    pub layout_s: f64,
    /// rustic_core storing the tree: reading it, chunking, hashing, compressing, encrypting,
    /// writing packs, index and snapshot.
    pub store_s: f64,
    /// Of `store_s`, time spent writing pack files to the backend (on rustic_core's own
    /// threads, overlapping the chunking; summed over them).
    pub upload_s: f64,
    /// peel's own profile of the expansion.
    #[serde(default)]
    pub peel: peel::Profile,
}

/// Measures the phases of one backup as it goes.
pub(crate) struct Clock {
    started: Instant,
    last: Instant,
    uploads_before: u64,
    pub(crate) profile: BackupProfile,
}

/// A phase of [`BackupProfile`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    Prepare,
    Peel,
    Layout,
    Store,
}

impl Clock {
    pub(crate) fn start() -> Self {
        let now = Instant::now();
        Clock {
            started: now,
            last: now,
            uploads_before: pack_write_nanos(),
            profile: BackupProfile::default(),
        }
    }

    /// Ends `phase`: the time since the previous phase ended is its time.
    pub(crate) fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        let secs = (now - self.last).as_secs_f64();
        self.last = now;
        let p = &mut self.profile;
        match phase {
            Phase::Prepare => p.prepare_s += secs,
            Phase::Peel => p.peel_s += secs,
            Phase::Layout => p.layout_s += secs,
            Phase::Store => p.store_s += secs,
        }
    }

    /// The profile of the whole backup.
    pub(crate) fn finish(mut self, peel: peel::Profile) -> BackupProfile {
        self.profile.total_s = self.started.elapsed().as_secs_f64();
        self.profile.upload_s = pack_write_nanos().saturating_sub(self.uploads_before) as f64 / 1e9;
        self.profile.peel = peel;
        self.profile
    }
}

impl BackupProfile {
    /// The profile as log lines (`dvault backup -v`), most telling first.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "profile: {:.2} s in all: prepare {:.2} s, peel {:.2} s, layout {:.2} s, store \
             {:.2} s (of which writing packs {:.2} s, on rustic_core's threads)",
            self.total_s, self.prepare_s, self.peel_s, self.layout_s, self.store_s, self.upload_s
        )];
        let p = &self.peel;
        out.push(format!(
            "profile: peel {:.2} s wall: reading the input {:.2} s, writing the tree {:.2} s \
             (waiting for its data {:.2} s)",
            p.wall_s, p.read_input_s, p.store_entries_s, p.wait_entries_s
        ));
        for l in &p.layers {
            out.push(format!(
                "profile: gzip {}: read {:.2} s, decompress {:.2} s, probe {:.2} s, proof \
                 {:.2} s (idle {:.2} s), waiting downstream {:.2} s",
                l.location,
                l.read_s,
                l.decompress_s,
                l.probe_s,
                l.proof_s,
                l.proof_idle_s,
                l.downstream_s
            ));
        }
        out
    }
}
