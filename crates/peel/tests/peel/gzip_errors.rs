//! Bad gzip input gives a clear Error::Format that names the file, the byte offset and the cause.

use crate::gzip_support;

use gzip_support::*;
use peel::gzip::{self, GzipOptions};
use peel::Error;

/// Expands `data` as "backup.tar.gz" and returns the Format error's text.
fn format_error(data: &[u8]) -> String {
    let mut input: &[u8] = data;
    match gzip::expand(
        &mut input,
        &mut std::io::sink(),
        &GzipOptions::default(),
        "backup.tar.gz",
    ) {
        Err(e @ Error::Format { .. }) => e.to_string(),
        Err(other) => panic!("expected a format error, got {other}"),
        Ok(_) => panic!("bad input was accepted"),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

fn sample() -> Vec<u8> {
    run("gzip", &["-c", "-n", "-5"], &sql_text(200_000, 20))
}

#[test]
fn data_that_is_not_gzip_is_refused_at_byte_0() {
    let e = format_error(b"PGDMP this is a custom-format dump, not gzip");
    assert_mentions(
        &e,
        &["backup.tar.gz at byte 0", "not gzip", "1f 8b", "50 47"],
    );
    let e = format_error(b"");
    assert_mentions(&e, &["backup.tar.gz at byte 0", "truncated gzip header"]);
}

#[test]
fn truncation_anywhere_names_the_offset() {
    let gz = sample();
    let n = gz.len();
    for (cut, expect) in [
        (5, "truncated gzip header"),
        (10, "truncated gzip member"),
        (n / 2, "truncated gzip member"),
        (n - 8, "truncated gzip trailer"),
        (n - 3, "truncated gzip trailer"),
    ] {
        let e = format_error(&gz[..cut]);
        assert_mentions(&e, &[&format!("backup.tar.gz at byte {cut}"), expect]);
    }
}

#[test]
fn wrong_crc_and_wrong_length_are_refused() {
    let gz = sample();
    let n = gz.len();
    let mut bad = gz.clone();
    bad[n - 8] ^= 0x01;
    assert_mentions(
        &format_error(&bad),
        &[
            &format!("backup.tar.gz at byte {}", n - 8),
            "CRC32 mismatch",
        ],
    );
    let mut bad = gz.clone();
    bad[n - 1] ^= 0x40;
    assert_mentions(
        &format_error(&bad),
        &[
            &format!("backup.tar.gz at byte {}", n - 4),
            "length mismatch",
            "ISIZE",
        ],
    );
}

#[test]
fn damaged_deflate_data_is_refused() {
    let gz = sample();
    let mut bad = gz.clone();
    // A block header with the reserved block type 3.
    bad[10] = 0x07;
    assert_mentions(
        &format_error(&bad),
        &["backup.tar.gz at byte", "invalid deflate data"],
    );
}

#[test]
fn bad_header_fields_are_refused() {
    let gz = sample();
    let mut bad = gz.clone();
    bad[2] = 7;
    assert_mentions(
        &format_error(&bad),
        &["at byte 2", "unknown compression method 7"],
    );
    let mut bad = gz.clone();
    bad[3] = 0x20;
    assert_mentions(&format_error(&bad), &["at byte 3", "reserved header flag"]);
    // FNAME set but the input ends inside the name.
    let mut bad = gz[..10].to_vec();
    bad[3] = 0x08;
    bad.extend_from_slice(b"dump.sq");
    assert_mentions(&format_error(&bad), &["at byte 17", "inside the file name"]);
    // FHCRC with a wrong header checksum.
    let mut bad = gz[..10].to_vec();
    bad[3] = 0x02;
    bad.extend_from_slice(&[0x12, 0x34]);
    bad.extend_from_slice(&gz[10..]);
    assert_mentions(&format_error(&bad), &["at byte 10", "FHCRC"]);
}

#[test]
fn a_damaged_second_member_is_refused_with_its_offset() {
    let first = sample();
    let mut gz = first.clone();
    gz.extend_from_slice(&sample());
    let cut = first.len() + 6;
    let e = format_error(&gz[..cut]);
    assert_mentions(&e, &[&format!("at byte {cut}"), "truncated gzip header"]);
}

#[test]
fn truncation_past_the_probe_is_a_format_error_not_a_fallback() {
    // 3 MB with a 512 KiB probe: the cut is met while the second thread is recompressing.
    let gz = run("gzip", &["-c", "-n", "-5"], &sql_text(3_000_000, 21));
    let cut = gz.len() * 3 / 4;
    let mut input: &[u8] = &gz[..cut];
    match gzip::expand(
        &mut input,
        &mut std::io::sink(),
        &small_probe(),
        "backup.tar.gz",
    ) {
        Err(e @ Error::Format { .. }) => assert_mentions(
            &e.to_string(),
            &[
                &format!("backup.tar.gz at byte {cut}"),
                "truncated gzip member",
            ],
        ),
        other => panic!("expected a format error, got {other:?}"),
    }
}
