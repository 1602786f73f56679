//! Turning a panic inside rustic_core into an error at dvault's boundary.
//!
//! rustic_core 0.13's restore reads and decrypts packs in a rayon pool whose jobs `unwrap()`
//! every read (`commands/restore.rs`, "TODO: error handling!"): one flipped byte in a pack
//! panics a worker thread. rayon hands that panic to the thread that called the restore once
//! the other jobs are done, so [`catch`] around the call gets it back as an error, and dvault
//! can say which pack is damaged and what it costs instead of "internal failure".
//!
//! The command line's panic hook ends the process at any other panic (a panic in a detached
//! thread would leave the main thread waiting forever); while a [`catch`] runs it only records
//! the message here ([`record`]), without printing a backtrace (`-vv` logs it).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

static CATCHING: AtomicUsize = AtomicUsize::new(0);
static CAUGHT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// True while some thread runs inside [`catch`]: a panic hook should then [`record`] the
/// panic and return, so that it unwinds to the `catch`.
pub fn catching() -> bool {
    CATCHING.load(Ordering::SeqCst) > 0
}

/// Notes a panic's message for the [`catch`] that will receive it.
pub fn record(message: String) {
    CAUGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(message);
}

/// Runs `f`; a panic in it (or in the rayon jobs it waits for) comes back as `Err` with the
/// first panic's message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    CATCHING.fetch_add(1, Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(f));
    CATCHING.fetch_sub(1, Ordering::SeqCst);
    let recorded = std::mem::take(
        &mut *CAUGHT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    r.map_err(|payload| {
        recorded.into_iter().next().unwrap_or_else(|| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panic without a message".to_string())
        })
    })
}
