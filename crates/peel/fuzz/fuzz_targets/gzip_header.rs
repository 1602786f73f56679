//! The gzip member header parser: any bytes give a header length within the input or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((len, _xfl)) = peel::gzip::parse_header(data, "fuzz") {
        assert!(
            len >= 10 && len <= data.len(),
            "header length {len} of {}",
            data.len()
        );
    }
});
