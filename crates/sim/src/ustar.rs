//! The uncompressed ustar archive of Discourse's current backup format (format B), written the
//! way Discourse's Ruby `BackupRestore::ArchiveWriter` (`lib/backup_restore/archive_writer.rb`)
//! writes it: RubyGems' `Gem::Package::TarHeader` layout, empty uname/gname, `mode & 0o777`, a
//! PAX `x` header named `PaxHeaders/entry` (mode 0644; uid/gid 0 and uname/gname `wheel` are
//! RubyGems' defaults, as that header passes none) followed by an entry named `entry`, for
//! paths or link targets over 100 bytes and sizes of 8 GiB or more; hard links as type `1`
//! (mode 0644 unless given); no record padding; exactly 1024 zero bytes at the end.
//!
//! Written by hand rather than with the `tar` crate because the point is to reproduce that one
//! writer's bytes (field formatting, PAX naming, trailer), which no general tar library promises.

use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Owner and time fields of an entry.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    /// Permission bits (only `& 0o777` is written).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
}

/// Streams entries into a format-B archive.
pub struct UstarWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> UstarWriter<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> UstarWriter<W> {
        UstarWriter { out, written: 0 }
    }

    /// Adds a regular file with the content of `source`.
    pub fn add_file(&mut self, name: &str, source: &Path, meta: Meta) -> Result<()> {
        let mut f =
            std::fs::File::open(source).with_context(|| format!("opening {}", source.display()))?;
        let size = f
            .metadata()
            .with_context(|| format!("reading the size of {}", source.display()))?
            .len();
        self.header(name, size, b'0', "", meta)?;
        let copied = io::copy(&mut (&mut f).take(size), &mut self.out)
            .with_context(|| format!("archiving {}", source.display()))?;
        anyhow::ensure!(
            copied == size,
            "{} shrank while archiving: {copied} of {size} bytes",
            source.display()
        );
        self.written += copied;
        self.pad(size)
    }

    /// Adds a directory entry. Discourse names them without a trailing `/` (`db`,
    /// `uploads/default/original`), and so does the simulator.
    pub fn add_directory(&mut self, name: &str, meta: Meta) -> Result<()> {
        self.header(name, 0, b'5', "", meta)
    }

    /// Adds a hard link `name` to the earlier entry `target`.
    pub fn add_hardlink(&mut self, name: &str, target: &str, meta: Meta) -> Result<()> {
        self.header(name, 0, b'1', target, meta)
    }

    /// Writes the 1024-byte end-of-archive marker and returns the writer and the archive size.
    pub fn finish(mut self) -> Result<(W, u64)> {
        self.write(&[0u8; 1024])?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }

    fn header(
        &mut self,
        name: &str,
        size: u64,
        typeflag: u8,
        link: &str,
        meta: Meta,
    ) -> Result<()> {
        let mut pax = String::new();
        if name.len() > 100 {
            pax.push_str(&pax_record("path", name));
        }
        if link.len() > 100 {
            pax.push_str(&pax_record("linkpath", link));
        }
        if size >= 8u64.pow(11) {
            pax.push_str(&pax_record("size", &size.to_string()));
        }
        let long_name = name.len() > 100;
        if !pax.is_empty() {
            let block = header_block(&HeaderFields {
                name: "PaxHeaders/entry",
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: pax.len() as u64,
                mtime: meta.mtime,
                typeflag: b'x',
                linkname: "",
                uname: "wheel",
                gname: "wheel",
            });
            self.write(&block)?;
            self.write(pax.as_bytes())?;
            self.pad(pax.len() as u64)?;
        }
        let block = header_block(&HeaderFields {
            name: if long_name { "entry" } else { name },
            mode: meta.mode & 0o777,
            uid: meta.uid,
            gid: meta.gid,
            size: if size >= 8u64.pow(11) { 0 } else { size },
            mtime: meta.mtime,
            typeflag,
            linkname: if link.len() > 100 { "" } else { link },
            uname: "",
            gname: "",
        });
        self.write(&block)
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let n = ((512 - size % 512) % 512) as usize;
        self.write(&vec![0u8; n])
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).context("writing the archive")?;
        self.written += b.len() as u64;
        Ok(())
    }
}

struct HeaderFields<'a> {
    name: &'a str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
    typeflag: u8,
    linkname: &'a str,
    uname: &'a str,
    gname: &'a str,
}

/// One 512-byte header: every number as zero-padded octal followed by NUL, the checksum as six
/// digits, NUL and space, magic `ustar\0`, version `00`, empty prefix.
fn header_block(h: &HeaderFields) -> [u8; 512] {
    let mut b = [0u8; 512];
    put(&mut b[0..100], h.name.as_bytes());
    put_octal(&mut b[100..108], h.mode as u64);
    put_octal(&mut b[108..116], h.uid as u64);
    put_octal(&mut b[116..124], h.gid as u64);
    put_octal(&mut b[124..136], h.size);
    put_octal(&mut b[136..148], h.mtime);
    b[148..156].copy_from_slice(b"        ");
    b[156] = h.typeflag;
    put(&mut b[157..257], h.linkname.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put(&mut b[265..297], h.uname.as_bytes());
    put(&mut b[297..329], h.gname.as_bytes());
    put_octal(&mut b[329..337], 0);
    put_octal(&mut b[337..345], 0);
    let sum: u32 = b.iter().map(|&x| x as u32).sum();
    let digits = format!("{sum:06o}");
    b[148..154].copy_from_slice(&digits.as_bytes()[digits.len() - 6..]);
    b[154] = 0;
    b[155] = b' ';
    b
}

fn put(field: &mut [u8], v: &[u8]) {
    let n = v.len().min(field.len());
    field[..n].copy_from_slice(&v[..n]);
}

fn put_octal(field: &mut [u8], v: u64) {
    let width = field.len() - 1;
    let s = format!("{v:0width$o}");
    let s = &s.as_bytes()[s.len().saturating_sub(width)..];
    field[..width].copy_from_slice(s);
    field[width] = 0;
}

/// A PAX record `"<len> <key>=<value>\n"` whose length counts itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    loop {
        let total = body.len() + len.to_string().len();
        if total == len {
            return format!("{len}{body}");
        }
        len = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", "abc"), "12 path=abc\n");
        let r = pax_record("path", &"x".repeat(95));
        assert_eq!(r.len().to_string(), r.split(' ').next().unwrap());
    }

    #[test]
    fn archive_with_long_name_and_hard_link_lists_and_extracts_with_gnu_tar() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.bin");
        std::fs::write(&src, vec![7u8; 1000]).unwrap();
        let long = format!("uploads/default/original/{}/file.png", "d".repeat(90));
        let tar_path = dir.path().join("t.tar");
        let meta = Meta {
            mode: 0o100644,
            mtime: 1_767_238_200,
            uid: 1000,
            gid: 1000,
        };
        let mut w = UstarWriter::new(std::fs::File::create(&tar_path).unwrap());
        w.add_directory(
            "db",
            Meta {
                mode: 0o755,
                ..meta
            },
        )
        .unwrap();
        w.add_file("db/toc.dat", &src, meta).unwrap();
        w.add_file(&long, &src, meta).unwrap();
        w.add_hardlink("uploads/x.png", &long, meta).unwrap();
        let (_, size) = w.finish().unwrap();
        let bytes = std::fs::read(&tar_path).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert!(bytes[bytes.len() - 1024..].iter().all(|&b| b == 0));
        let before = &bytes[bytes.len() - 1536..bytes.len() - 1024];
        assert!(
            before.iter().any(|&b| b != 0),
            "more than 1024 trailing zero bytes"
        );
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&tar_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains(&long), "{listing}");
        assert!(listing.contains("uploads/x.png link to"), "{listing}");
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let st = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar_path)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read(x.join("uploads/x.png")).unwrap(),
            vec![7u8; 1000]
        );
        assert_eq!(std::fs::read(x.join(&long)).unwrap(), vec![7u8; 1000]);
    }
}
