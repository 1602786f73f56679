//! Progress bars on the terminal (indicatif) for core's progress reports
//! ([`dvault_core::repo::ProgressBars`]): one bar per phase, and the bytes stored so far beside
//! the bytes read. Apart from the commands that use them (`repo_cmds.rs`, `copy_cmd.rs`,
//! `run_cmds.rs`) because drawing is a job of its own.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dvault_core::repo::{ProgressBar, ProgressBars, ProgressKind};
use indicatif::{MultiProgress, ProgressStyle};

/// Progress bars on stderr when it is a terminal; nothing otherwise.
pub(crate) fn bars() -> Option<Arc<dyn ProgressBars>> {
    (std::io::stderr().is_terminal() && !crate::quiet()).then(|| {
        Arc::new(TermBars {
            multi: MultiProgress::new(),
            added: Arc::new(AtomicU64::new(0)),
            byte_bars: std::sync::Mutex::new(Vec::new()),
        }) as Arc<dyn ProgressBars>
    })
}

#[derive(Debug)]
struct TermBars {
    multi: MultiProgress,
    /// Bytes written to new pack files so far (new data, compressed and encrypted, as the
    /// summary's "stored"); byte bars show it beside the bytes read.
    added: Arc<AtomicU64>,
    /// The byte bars, so that a pack written between two reads shows at once.
    byte_bars: std::sync::Mutex<Vec<indicatif::ProgressBar>>,
}

/// The "stored" message of a byte bar.
fn stored_message(added: &AtomicU64) -> String {
    format!(
        "stored {}",
        indicatif::HumanBytes(added.load(Ordering::Relaxed))
    )
}

impl ProgressBars for TermBars {
    fn start(&self, kind: ProgressKind, title: &str) -> Box<dyn ProgressBar> {
        let (bar, tmpl) = match kind {
            ProgressKind::Spinner => (
                indicatif::ProgressBar::new_spinner(),
                "{spinner} {prefix} [{elapsed}]",
            ),
            ProgressKind::Counter => (
                indicatif::ProgressBar::new(0),
                "{prefix:30} [{elapsed}] {bar:30} {pos}/{len}",
            ),
            ProgressKind::Bytes => (
                indicatif::ProgressBar::new(0),
                "{prefix:30} [{elapsed}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} eta {eta}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(tmpl) {
            bar.set_style(style);
        }
        bar.set_prefix(title.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        let bar = self.multi.add(bar);
        if kind == ProgressKind::Bytes {
            bar.set_message(stored_message(&self.added));
            if let Ok(mut bars) = self.byte_bars.lock() {
                bars.retain(|b| !b.is_finished());
                bars.push(bar.clone());
            }
        }
        Box::new(TermBar {
            bar,
            added: (kind == ProgressKind::Bytes).then(|| self.added.clone()),
        })
    }

    fn added(&self, bytes: u64) {
        self.added.fetch_add(bytes, Ordering::Relaxed);
        if let Ok(bars) = self.byte_bars.lock() {
            for b in bars.iter().filter(|b| !b.is_finished()) {
                b.set_message(stored_message(&self.added));
            }
        }
    }
}

#[derive(Debug)]
struct TermBar {
    bar: indicatif::ProgressBar,
    added: Option<Arc<AtomicU64>>,
}

impl ProgressBar for TermBar {
    fn set_length(&self, len: u64) {
        self.bar.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.bar.set_prefix(title.to_string());
    }
    fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(added) = &self.added {
            self.bar.set_message(stored_message(added));
        }
    }
    fn finish(&self) {
        self.bar.finish();
    }
}
