//! The gzip layer picks the exact method that made each member, and rebuilds it bit for bit.
//! Inputs come from the real tools: GNU gzip, Python's zlib, pigz.

use crate::gzip_support;

use gzip_support::*;
use peel::gzip::{self, GzipOptions, Method, MethodKind};
use peel::Error;

#[test]
fn rebuild_is_bit_exact_for_gnu_gzip_levels_1_to_9_with_and_without_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = sql_text(1_000_000, 1);
    let path = dir.path().join("dump.sql");
    for level in 1..=9u8 {
        // With name and mtime in the header (gzip FILE), and without (gzip -n from stdin).
        std::fs::write(&path, &text).unwrap();
        let status = std::process::Command::new("gzip")
            .env_remove("GZIP")
            .args(["-f", &format!("-{level}")])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let named = std::fs::read(dir.path().join("dump.sql.gz")).unwrap();
        assert_eq!(named[3] & 0x08, 0x08, "gzip FILE writes FNAME");
        let anonymous = run("gzip", &["-c", "-n", &format!("-{level}")], &text);
        for gz in [named, anonymous] {
            let (recipe, report, _) = roundtrip(&gz, &GzipOptions::default(), Some(&text));
            assert_eq!(recipe.members.len(), 1);
            assert_eq!(recipe.members[0].method, Method::GnuGzip { level });
            assert_eq!(
                recipe.members[0].header.0,
                gz[..recipe.members[0].header.0.len()]
            );
            let version = report.gzip_version.expect("gzip version is reported");
            assert!(version.starts_with("gzip "), "{version}");
            assert_eq!(report.members[0].level, Some(level));
        }
    }
}

#[test]
fn rebuild_is_bit_exact_for_zlib_levels_1_to_9_from_python() {
    let text = sql_text(1_000_000, 2);
    for level in 1..=9u8 {
        // Python's gzip module: zlib, raw deflate, memLevel 8 (like pg_dump and Ruby).
        let gz = python(
            &format!(
                "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read(), {level}, mtime=0))"
            ),
            &text,
        );
        let (recipe, report, _) = roundtrip(&gz, &GzipOptions::default(), Some(&text));
        assert_eq!(
            recipe.members[0].method,
            Method::Zlib {
                level,
                mem_level: 8
            },
            "python zlib level {level}"
        );
        assert!(report.zlib_version.is_some());
        assert_eq!(report.gzip_version, None);
    }
}

/// A gzip file written by Python's zlib with an explicit memLevel.
fn zlib_gzip(text: &[u8], level: u8, mem_level: u8) -> Vec<u8> {
    python(
        &format!(
            "import zlib,sys,struct\n\
             d=sys.stdin.buffer.read()\n\
             c=zlib.compressobj({level}, zlib.DEFLATED, -15, {mem_level})\n\
             body=c.compress(d)+c.flush()\n\
             sys.stdout.buffer.write(b'\\x1f\\x8b\\x08\\x00'+b'\\x00'*4+b'\\x00\\x03'+body+struct.pack('<II', zlib.crc32(d), len(d)&0xffffffff))"
        ),
        text,
    )
}

#[test]
fn zlib_mem_level_9_is_found() {
    let text = sql_text(1_000_000, 3);
    let gz = zlib_gzip(&text, 6, 9);
    let (recipe, _, _) = roundtrip(&gz, &GzipOptions::default(), Some(&text));
    assert_eq!(
        recipe.members[0].method,
        Method::Zlib {
            level: 6,
            mem_level: 9
        }
    );
}

#[test]
fn long_members_are_proven_by_streaming_past_the_probe() {
    // 3 MB with a 512 KiB probe: the method is chosen on the prefix and the rest is recompressed
    // in the second thread while decompressing.
    let text = sql_text(3_000_000, 4);
    let gz = run("gzip", &["-c", "-n", "-5"], &text);
    let (recipe, report, _) = roundtrip(&gz, &small_probe(), Some(&text));
    assert_eq!(recipe.members[0].method, Method::GnuGzip { level: 5 });
    assert_eq!(report.members[0].plain_size, text.len() as u64);
    assert_eq!(report.members[0].deflate_size, gz.len() as u64 - 18);

    let gz = zlib_gzip(&text, 4, 8);
    let (recipe, _, _) = roundtrip(&gz, &small_probe(), Some(&text));
    assert_eq!(
        recipe.members[0].method,
        Method::Zlib {
            level: 4,
            mem_level: 8
        }
    );
}

#[test]
fn pigz_is_reproduced_by_preflate_with_small_corrections() {
    let text = sql_text(1_500_000, 5);
    for args in [
        &["-c", "-n"][..],
        &["-c", "-n", "-9"],
        &["-c", "-n", "-1", "-b", "32"],
    ] {
        let gz = run("pigz", args, &text);
        let (recipe, report, _) = roundtrip(&gz, &GzipOptions::default(), Some(&text));
        let m = &report.members[0];
        assert_eq!(m.method, MethodKind::Preflate, "pigz {args:?}");
        assert!(
            m.corrections_size * 2 < m.deflate_size,
            "pigz {args:?}: corrections {} for {} deflate bytes",
            m.corrections_size,
            m.deflate_size
        );
        assert!(matches!(recipe.members[0].method, Method::Preflate { .. }));
    }
}

#[test]
fn members_beyond_the_preflate_memory_cap_are_not_reproducible() {
    let text = sql_text(3_000_000, 6);
    let gz = run("pigz", &["-c", "-n", "-6"], &text);
    let opts = GzipOptions {
        preflate_memory_cap: 512 * 1024,
        ..small_probe()
    };
    let mut input: &[u8] = &gz;
    match gzip::expand(&mut input, &mut std::io::sink(), &opts, "big.gz") {
        Err(Error::NotReproducible { location, reason }) => {
            assert!(location.contains("big.gz"), "{location}");
            assert!(
                reason.contains("larger than the preflate memory cap"),
                "{reason}"
            );
        }
        other => panic!("expected NotReproducible, got {other:?}"),
    }
    // Within the cap the same member is reproduced, in one chunk.
    let (recipe, _, _) = roundtrip(&gz, &small_probe(), Some(&text));
    let Method::Preflate { chunks } = &recipe.members[0].method else {
        panic!("expected preflate, got {}", recipe.members[0].method);
    };
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].plain_size, text.len() as u64);
}

/// A reader that returns reads of varying small sizes, like a pipe or a network stream.
struct Choppy<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Choppy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = (self.step * 7 + 3) % 9973 + 1;
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn recipe_does_not_depend_on_how_reads_are_split() {
    let text = sql_text(2_000_000, 7);
    let opts = small_probe();
    for gz in [
        run("pigz", &["-c", "-n"], &text),
        run("gzip", &["-c", "-n", "-5"], &text),
    ] {
        let mut whole: &[u8] = &gz;
        let (a, _) = gzip::expand(&mut whole, &mut std::io::sink(), &opts, "a.gz").unwrap();
        let mut choppy = Choppy { data: &gz, step: 1 };
        let (b, _) = gzip::expand(&mut choppy, &mut std::io::sink(), &opts, "b.gz").unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }
}

#[test]
fn late_divergence_is_not_reproducible_and_a_retry_without_that_method_finds_another() {
    // zlib level 6 with a full flush after 1.5 MB: the first 512 KiB match plain zlib level 6
    // exactly, the flush point does not.
    let text = sql_text(2_500_000, 8);
    let gz = python(
        "import gzip,zlib,sys,struct\n\
         d=sys.stdin.buffer.read()\n\
         c=zlib.compressobj(6, zlib.DEFLATED, -15, 8)\n\
         body=c.compress(d[:1500000])+c.flush(zlib.Z_FULL_FLUSH)+c.compress(d[1500000:])+c.flush()\n\
         sys.stdout.buffer.write(b'\\x1f\\x8b\\x08\\x00'+b'\\x00'*4+b'\\x00\\x03'+body+struct.pack('<II', zlib.crc32(d), len(d)))",
        &text,
    );
    let mut input: &[u8] = &gz;
    let err = gzip::expand(
        &mut input,
        &mut std::io::sink(),
        &small_probe(),
        "flushed.gz",
    )
    .expect_err("zlib level 6 must not be accepted past the flush");
    match &err {
        Error::NotReproducible { location, reason } => {
            assert!(location.contains("flushed.gz"), "{location}");
            assert!(
                reason.contains("zlib level 6 memLevel 8 diverges"),
                "{reason}"
            );
        }
        other => panic!("expected NotReproducible, got {other}"),
    }
    let retry = small_probe().without(MethodKind::Zlib);
    let (recipe, _, _) = roundtrip(&gz, &retry, Some(&text));
    assert_eq!(recipe.members[0].method.kind(), MethodKind::Preflate);
}

#[test]
fn members_with_different_methods_and_trailing_bytes_round_trip() {
    let a = sql_text(400_000, 9);
    let b = sql_text(300_000, 10);
    let mut gz = run("gzip", &["-c", "-n", "-5"], &a);
    gz.extend(python(
        "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read(), 4, mtime=0))",
        &b,
    ));
    let mut expected = a.clone();
    expected.extend_from_slice(&b);
    let (recipe, report, _) = roundtrip(&gz, &GzipOptions::default(), Some(&expected));
    assert_eq!(recipe.members.len(), 2);
    assert_eq!(recipe.members[0].method, Method::GnuGzip { level: 5 });
    assert_eq!(
        recipe.members[1].method,
        Method::Zlib {
            level: 4,
            mem_level: 8
        }
    );
    assert_eq!(recipe.members[1].plain_size, b.len() as u64);
    assert!(report.gzip_version.is_some() && report.zlib_version.is_some());

    // Bytes after the last member that are not a member: kept as they are.
    gz.extend_from_slice(b"\0\0\0\0tape padding\n");
    let (recipe, report, _) = roundtrip(&gz, &GzipOptions::default(), Some(&expected));
    assert_eq!(recipe.trailing.0, b"\0\0\0\0tape padding\n");
    assert_eq!(report.trailing_size, 17);
}

#[test]
fn too_many_trailing_bytes_leave_the_layer_stored() {
    let mut gz = run("gzip", &["-c", "-n"], b"small");
    gz.extend(std::iter::repeat_n(0xaa, 100));
    let opts = GzipOptions {
        max_trailing: 64,
        ..GzipOptions::default()
    };
    let mut input: &[u8] = &gz;
    match gzip::expand(&mut input, &mut std::io::sink(), &opts, "padded.gz") {
        Err(Error::NotReproducible { reason, .. }) => {
            assert!(reason.contains("more than 64 bytes follow"), "{reason}")
        }
        other => panic!("expected NotReproducible, got {other:?}"),
    }
}

#[test]
fn every_header_field_round_trips() {
    // FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT, an mtime, XFL and OS, built by hand in Python.
    let text = sql_text(200_000, 11);
    let gz = python(
        "import zlib,sys,struct\n\
         d=sys.stdin.buffer.read()\n\
         extra=b'AP'+struct.pack('<H',4)+b'\\x01\\x02\\x03\\x04'\n\
         h=b'\\x1f\\x8b\\x08'+bytes([0x1f])+struct.pack('<I',1700000000)+b'\\x00\\x0b'\n\
         h+=struct.pack('<H',len(extra))+extra+b'dump.sql\\x00'+b'made for a test\\x00'\n\
         h+=struct.pack('<H', zlib.crc32(h)&0xffff)\n\
         c=zlib.compressobj(6, zlib.DEFLATED, -15, 8)\n\
         sys.stdout.buffer.write(h+c.compress(d)+c.flush()+struct.pack('<II', zlib.crc32(d), len(d)))",
        &text,
    );
    let (recipe, _, _) = roundtrip(&gz, &GzipOptions::default(), Some(&text));
    let header = &recipe.members[0].header.0;
    assert_eq!(header.len(), 10 + 2 + 8 + 9 + 16 + 2);
    assert_eq!(header[..], gz[..header.len()]);
    assert_eq!(
        recipe.members[0].method,
        Method::Zlib {
            level: 6,
            mem_level: 8
        }
    );
}

#[test]
fn an_empty_file_gzipped_round_trips() {
    let gz = run("gzip", &["-c", "-n"], b"");
    let (recipe, report, plain) = roundtrip(&gz, &GzipOptions::default(), Some(b""));
    assert!(plain.is_empty());
    assert_eq!(recipe.members.len(), 1);
    assert_eq!(report.members[0].plain_size, 0);
    // zlib (tried first) and GNU gzip write the same two bytes for nothing.
    assert_eq!(recipe.members[0].method.kind(), MethodKind::Zlib);
}

#[test]
fn rebuild_refuses_plain_data_of_the_wrong_length() {
    let text = sql_text(100_000, 12);
    let gz = run("gzip", &["-c", "-n", "-6"], &text);
    let mut input: &[u8] = &gz;
    let (recipe, _) = gzip::expand(
        &mut input,
        &mut std::io::sink(),
        &GzipOptions::default(),
        "t.gz",
    )
    .unwrap();
    let mut short: &[u8] = &text[..text.len() - 1];
    let err = gzip::rebuild(&recipe, &mut short, &mut Vec::new(), "t.gz").unwrap_err();
    assert!(err.to_string().contains("ends 1 bytes before"), "{err}");
    let mut long = text.clone();
    long.push(b'x');
    let err = gzip::rebuild(&recipe, &mut &long[..], &mut Vec::new(), "t.gz").unwrap_err();
    assert!(
        err.to_string()
            .contains("longer than the gzip members hold"),
        "{err}"
    );
}

#[test]
fn candidates_a_prefix_cannot_tell_apart_are_verified_side_by_side() {
    // Zeros first: gzip -4..-9 (and zlib's slow levels) write the same bytes for them, so the
    // probe cannot pick one; the text after them decides.
    let mut data = vec![0u8; 3_000_000];
    data.extend(sql_text(1_000_000, 13));
    let opts = GzipOptions {
        probe_size: 256 * 1024,
        ..GzipOptions::default()
    };
    for level in [5u8, 9] {
        let gz = run("gzip", &["-c", "-n", &format!("-{level}")], &data);
        let (recipe, _, _) = roundtrip(&gz, &opts, Some(&data));
        assert_eq!(recipe.members[0].method, Method::GnuGzip { level });
    }
    let gz = zlib_gzip(&data, 4, 8);
    let (recipe, _, _) = roundtrip(&gz, &opts, Some(&data));
    assert_eq!(
        recipe.members[0].method,
        Method::Zlib {
            level: 4,
            mem_level: 8
        }
    );
}
