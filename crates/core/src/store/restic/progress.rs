//! rustic_core's progress reports passed on to dvault's [`ProgressBars`].

use super::*;

/// Lets rustic report progress through our [`ProgressBars`].
#[derive(Debug)]
pub(super) struct ProgressAdapter(pub(super) Arc<dyn ProgressBars>);

impl rustic_core::ProgressBars for ProgressAdapter {
    fn progress(&self, t: rustic_core::ProgressType, prefix: &str) -> rustic_core::Progress {
        let kind = match t {
            rustic_core::ProgressType::Spinner => ProgressKind::Spinner,
            rustic_core::ProgressType::Counter => ProgressKind::Counter,
            rustic_core::ProgressType::Bytes => ProgressKind::Bytes,
        };
        rustic_core::Progress::new(BarAdapter(self.0.start(kind, prefix)))
    }
}

#[derive(Debug)]
pub(super) struct BarAdapter(Box<dyn crate::repo::ProgressBar>);

impl rustic_core::RusticProgress for BarAdapter {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_title(title);
    }
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish();
    }
}
