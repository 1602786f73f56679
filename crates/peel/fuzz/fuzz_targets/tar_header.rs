//! The tar header block parser and the PAX record parser: any bytes give fields or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peel::tar::header::{checksum_ok, looks_like_tar, pax_fields, Header, BLOCK};

fuzz_target!(|data: &[u8]| {
    let mut block = [0u8; BLOCK];
    let n = data.len().min(BLOCK);
    block[..n].copy_from_slice(&data[..n]);
    let _ = checksum_ok(&block);
    let _ = looks_like_tar(&block);
    let h = Header::new(&block);
    let _ = h.kind();
    let _ = h.size();
    let _ = h.path_bytes();
    let _ = h.link_bytes();
    // The rest of the input as the data of a PAX extended header.
    let _ = pax_fields(&data[n..]);
});
