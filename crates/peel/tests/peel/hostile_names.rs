//! Hostile names (the part of the hostile-archive suite about name and header lengths): a path
//! 100,000 directories deep once cost 9.9 GB of memory before it was refused, and the error
//! printed all 200 KB of it. Each test here bounds what the expansion reads and allocates, and
//! the length of the error.
//!
//! Memory is measured by a counting allocator that counts only the thread that turned it on:
//! the other tests of this binary run in parallel threads, and a plain tar is expanded on the
//! calling thread (only gzip layers get threads of their own).

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read};

use common::{py, PY_TAR};
use peel::ExpandOptions;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static NOW: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the thread-local cells
// are const-initialized, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grew(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

fn grew(by: isize) {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            NOW.with(|n| {
                let now = n.get().saturating_add_signed(by);
                n.set(now);
                PEAK.with(|p| p.set(p.get().max(now)));
            });
        }
    });
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the most memory it held at once (this thread only).
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    NOW.with(|n| n.set(0));
    PEAK.with(|p| p.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, PEAK.with(Cell::get))
}

/// Counts the bytes read from the input.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// A sink that keeps nothing.
struct Discard;

impl peel::EntrySink for Discard {
    fn entry(&mut self, _: &str, data: &mut dyn Read) -> io::Result<u64> {
        io::copy(data, &mut io::sink())
    }
}

/// Writes `script`'s tar (built with Python's tarfile) and returns its bytes.
fn tar_from_python(script: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    py(dir.path(), &format!("{PY_TAR}\n{script}"));
    std::fs::read(dir.path().join("t.tar")).unwrap()
}

/// Expands `tar` from memory: the error text, the bytes read and the peak memory.
fn refusal(tar: &[u8]) -> (String, u64, usize) {
    let mut input = Counted {
        inner: tar,
        read: 0,
    };
    let (result, peak) = peak_bytes(|| {
        peel::expand_reader(
            &mut input,
            Some("t.tar"),
            &mut Discard,
            &ExpandOptions::default(),
        )
    });
    let err = result.expect_err("must be refused").to_string();
    (err, input.read, peak)
}

#[test]
fn a_gnu_long_name_100000_directories_deep_is_refused_before_it_is_read() {
    let tar = tar_from_python(
        "open('t.tar','wb').write(member('a/' * 100000 + 'f', b'x', fmt=tarfile.GNU_FORMAT) + END)",
    );
    assert!(tar.len() > 200_000);
    let (err, read, peak) = refusal(&tar);
    assert!(
        err.contains("GNU long name of 200002 bytes is longer than PATH_MAX"),
        "{err}"
    );
    assert!(err.len() < 1024, "a short message: {err}");
    assert!(
        read <= 1024,
        "read {read} bytes: only the header block is needed"
    );
    assert!(peak < 1 << 20, "held {peak} bytes");
}

#[test]
fn a_huge_pax_path_is_refused_with_a_short_error() {
    // 900 KB: under the PAX header cap, so the header is read, and its path then refused.
    let tar = tar_from_python(
        "open('t.tar','wb').write(member('x', b'x', fmt=tarfile.PAX_FORMAT, pax_headers={'path': 'a/' * 450000 + 'f'}) + END)",
    );
    let (err, read, peak) = refusal(&tar);
    assert!(
        err.contains("PAX path record of 900001 bytes is longer than PATH_MAX (4095 bytes"),
        "{err}"
    );
    assert!(err.len() < 1024, "a short message: {err}");
    assert!(read < 1 << 20, "read {read} bytes");
    assert!(peak < 4 << 20, "held {peak} bytes");
}

#[test]
fn long_link_names_and_components_are_refused_with_short_errors() {
    let tar = tar_from_python(
        "open('t.tar','wb').write(member('x', b'x', fmt=tarfile.PAX_FORMAT, pax_headers={'linkpath': 'l' * 5000}) + END)",
    );
    let (err, _, _) = refusal(&tar);
    assert!(
        err.contains("PAX linkpath record of 5000 bytes is longer than PATH_MAX"),
        "{err}"
    );
    let tar = tar_from_python(
        "open('t.tar','wb').write(member('c' * 256, b'x', fmt=tarfile.PAX_FORMAT) + END)",
    );
    let (err, _, _) = refusal(&tar);
    assert!(
        err.contains("longer than NAME_MAX") && err.contains("…(256 bytes)…"),
        "the component is named, shortened: {err}"
    );
    assert!(err.len() < 1024, "{err}");
}

#[test]
fn a_chain_of_extension_headers_is_refused_before_it_fills_memory() {
    // Many PAX headers of 900 KB each before one member: each is allowed, their sum is not.
    let tar = tar_from_python(
        "x = member('x', b'', fmt=tarfile.PAX_FORMAT, pax_headers={'comment': 'c' * 900000})\n\
         x = x[:-512]  # the PAX header and its data without its member\n\
         open('t.tar','wb').write(x * 20 + member('x', b'x') + END)",
    );
    let (err, read, peak) = refusal(&tar);
    assert!(
        err.contains("extension headers of more than 4194304 bytes before one member"),
        "{err}"
    );
    assert!(read < 6 << 20, "read {read} bytes");
    // At most the 4 MiB of headers (in a vector that may have grown to twice that) and one
    // header's data.
    assert!(peak < 12 << 20, "held {peak} bytes");
}

#[test]
fn deep_paths_under_path_max_cost_memory_linear_in_their_length() {
    // 100 members, each 2,000 directories deep (4 KB) under its own top folder, and a symbolic
    // link so that every member is checked against the links. Kept as a set of whole prefixes
    // the names took 4 MB per member (400 MB); kept component by component, a few dozen bytes
    // per directory.
    let tar = tar_from_python(
        "ms = [member('link', type=tarfile.SYMTYPE, linkname='elsewhere')]\n\
         ms += [member('%03d/' % i + 'a/' * 2000 + 'f', b'x', fmt=tarfile.GNU_FORMAT) for i in range(100)]\n\
         open('t.tar','wb').write(b''.join(ms) + END)",
    );
    let (result, peak) = peak_bytes(|| {
        peel::expand_reader(
            &mut &tar[..],
            Some("t.tar"),
            &mut Discard,
            &ExpandOptions::default(),
        )
    });
    let (recipe, _) = result.expect("4 KB paths are accepted");
    let peel::Node::Tar(t) = &recipe.root else {
        panic!("a tar layer")
    };
    assert_eq!(t.members.len(), 101);
    assert!(peak < 64 << 20, "held {peak} bytes for 400 KB of names");
}
