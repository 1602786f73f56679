//! The whole expand path on arbitrary bytes (gzip, tar, nesting), then the rebuild: either
//! expand fails with an error, or the rebuild from its entries gives back exactly the input.
#![no_main]

use std::collections::HashMap;
use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Mem(HashMap<String, Vec<u8>>);

impl peel::EntrySink for Mem {
    fn entry(&mut self, path: &str, data: &mut dyn Read) -> io::Result<u64> {
        let mut buf = Vec::new();
        data.read_to_end(&mut buf)?;
        let n = buf.len() as u64;
        self.0.insert(path.to_string(), buf);
        Ok(n)
    }
    fn discard(&mut self, path: &str) -> io::Result<()> {
        self.0.remove(path);
        Ok(())
    }
}

struct Source<'a>(&'a HashMap<String, Vec<u8>>);

impl peel::EntrySource for Source<'_> {
    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        let data = self.0.get(path).ok_or(io::ErrorKind::NotFound)?.clone();
        Ok(Box::new(io::Cursor::new(data)))
    }
}

fuzz_target!(|data: &[u8]| {
    // peel's layers talk through pipes; a layer that stops early closes its end. Rust programs
    // ignore SIGPIPE from their start (the write then fails with EPIPE, which peel handles),
    // but libFuzzer's C main does not set that up.
    static SIGPIPE: std::sync::Once = std::sync::Once::new();
    SIGPIPE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    let mut opts = peel::ExpandOptions::default();
    // Spawning `gzip` per input would make the fuzzer crawl; zlib and preflate stay in.
    opts.gzip.gnu_gzip = false;
    opts.gzip.probe_size = 64 << 10;
    opts.gzip.preflate_memory_cap = 1 << 20;
    let mut sink = Mem::default();
    let mut input: &[u8] = data;
    let Ok((recipe, _report)) = peel::expand_reader(&mut input, Some("fuzz.bin"), &mut sink, &opts)
    else {
        return;
    };
    let mut out = Vec::new();
    let digest = peel::rebuild(&recipe, &mut Source(&sink.0), &mut out)
        .unwrap_or_else(|e| panic!("expand accepted the input but the rebuild failed: {e}"));
    assert_eq!(out, data, "rebuild differs from the input");
    assert_eq!(digest.size, data.len() as u64);
});
