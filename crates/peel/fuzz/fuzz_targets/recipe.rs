//! The recipe reader and the rebuild it drives: a hostile recipe (absurd sizes, unknown
//! methods, paths outside the tree) must give an error, never a panic, a hang or a huge
//! allocation. Entries come from memory: every path reads as the same few bytes.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;

struct Fixed;

impl peel::EntrySource for Fixed {
    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        if let Some(why) = peel::names::unsafe_reason(path) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        Ok(Box::new(io::Cursor::new(vec![b'x'; 4096])))
    }
}

/// Discards what is written, but stops a rebuild that runs away.
struct Bounded(u64);

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        if self.0 > 64 << 20 {
            return Err(io::Error::other("rebuild output over 64 MiB"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // See expand.rs: a Rust main would ignore SIGPIPE, libFuzzer's does not.
    static SIGPIPE: std::sync::Once = std::sync::Once::new();
    SIGPIPE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    if let Ok(recipe) = peel::tree::parse_recipe(data) {
        let _ = peel::rebuild(&recipe, &mut Fixed, &mut Bounded(0));
    }
});
