//! The bundled zlib's raw deflate with an explicit memLevel.
//!
//! flate2 only exposes level and window size, but zlib's output also depends on memLevel (it sets
//! the hash size and the symbol buffer, hence where blocks end), and pg_dump and Ruby use 8 while
//! other writers use 9. So this calls `deflateInit2_` of the statically linked zlib (libz-sys
//! feature "static") directly, behind a small safe type.

use std::io;

use libz_sys as z;

/// A raw deflate compressor (no zlib/gzip wrapper), window 15, default strategy.
pub(crate) struct ZlibDeflate {
    // Boxed because zlib keeps a pointer back to the stream in its internal state: the stream must
    // not move after deflateInit2_.
    strm: Box<z::z_stream>,
    finished: bool,
}

// SAFETY: the z_stream and its state are owned exclusively by this value and only touched through
// `&mut self`; zlib keeps no thread-local state.
unsafe impl Send for ZlibDeflate {}

unsafe extern "C" fn zalloc(_opaque: z::voidpf, items: z::uInt, size: z::uInt) -> z::voidpf {
    // SAFETY: plain C allocation, freed by `zfree`.
    unsafe { libc::calloc(items as libc::size_t, size as libc::size_t) }
}

unsafe extern "C" fn zfree(_opaque: z::voidpf, address: z::voidpf) {
    // SAFETY: `address` came from `zalloc`.
    unsafe { libc::free(address) }
}

impl ZlibDeflate {
    /// A compressor at `level` 1..=9 and `mem_level` 1..=9.
    pub(crate) fn new(level: u8, mem_level: u8) -> io::Result<Self> {
        let mut strm = Box::new(z::z_stream {
            next_in: std::ptr::null_mut(),
            avail_in: 0,
            total_in: 0,
            next_out: std::ptr::null_mut(),
            avail_out: 0,
            total_out: 0,
            msg: std::ptr::null_mut(),
            state: std::ptr::null_mut(),
            zalloc,
            zfree,
            opaque: std::ptr::null_mut(),
            data_type: 0,
            adler: 0,
            reserved: 0,
        });
        // SAFETY: `strm` is a valid, initialised z_stream with working allocators; the version and
        // struct size let zlib check that the headers match the library.
        let ret = unsafe {
            z::deflateInit2_(
                &mut *strm,
                level as libc::c_int,
                z::Z_DEFLATED,
                -15,
                mem_level as libc::c_int,
                z::Z_DEFAULT_STRATEGY,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as libc::c_int,
            )
        };
        if ret != z::Z_OK {
            return Err(io::Error::other(format!(
                "zlib deflateInit2 failed ({ret}) for level {level} memLevel {mem_level}"
            )));
        }
        Ok(ZlibDeflate {
            strm,
            finished: false,
        })
    }

    /// Compresses `input`, appending the bytes zlib emits to `out`. Bytes emitted before
    /// [`finish`](Self::finish) are final: zlib's output does not depend on how the input is split
    /// into calls without flushing.
    pub(crate) fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.run(input, z::Z_NO_FLUSH, out)
    }

    /// Ends the stream, appending the rest of the output.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.run(&[], z::Z_FINISH, out)
    }

    fn run(&mut self, mut input: &[u8], flush: libc::c_int, out: &mut Vec<u8>) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("zlib stream already finished"));
        }
        loop {
            // avail_in is 32-bit: hand zlib at most 1 GiB per call.
            let take = input.len().min(1 << 30);
            out.reserve(64 * 1024);
            let spare = out.capacity() - out.len();
            let out_len = out.len();
            self.strm.next_in = input.as_ptr() as *mut u8;
            self.strm.avail_in = take as z::uInt;
            // SAFETY: next_out points to `spare` writable bytes inside `out`'s allocation.
            self.strm.next_out = unsafe { out.as_mut_ptr().add(out_len) };
            self.strm.avail_out = spare.min(u32::MAX as usize) as z::uInt;
            let avail_out_before = self.strm.avail_out;
            // SAFETY: the stream was initialised by deflateInit2_; zlib only reads `take` bytes of
            // input and writes at most `avail_out` bytes of output.
            let ret = unsafe { z::deflate(&mut *self.strm, flush) };
            let consumed = take - self.strm.avail_in as usize;
            let produced = (avail_out_before - self.strm.avail_out) as usize;
            // SAFETY: zlib initialised `produced` bytes after the old length.
            unsafe { out.set_len(out_len + produced) };
            input = &input[consumed..];
            self.strm.next_in = std::ptr::null_mut();
            self.strm.next_out = std::ptr::null_mut();
            match ret {
                z::Z_STREAM_END => {
                    self.finished = true;
                    return Ok(());
                }
                z::Z_OK | z::Z_BUF_ERROR => {
                    let out_full = self.strm.avail_out == 0;
                    if flush == z::Z_NO_FLUSH && input.is_empty() && !out_full {
                        return Ok(());
                    }
                    if ret == z::Z_BUF_ERROR && consumed == 0 && produced == 0 {
                        return Err(io::Error::other("zlib deflate made no progress"));
                    }
                }
                other => {
                    return Err(io::Error::other(format!("zlib deflate failed ({other})")));
                }
            }
        }
    }
}

impl Drop for ZlibDeflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by deflateInit2_ and is ended exactly once.
        unsafe {
            z::deflateEnd(&mut *self.strm);
        }
    }
}

/// The bundled zlib's version string (part of what makes recompression exact).
pub fn zlib_version() -> String {
    // SAFETY: zlibVersion returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(z::zlibVersion()) }
        .to_string_lossy()
        .into_owned()
}
