//! One 512-byte tar header block: recognizing it, checking its checksum, and reading the fields
//! the tar layer needs. Field decoding (octal and GNU base-256 numbers, the ustar name prefix)
//! is the `tar` crate's; the block itself is never rewritten, only read.

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// The kinds of header the tar layer distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file ('0', NUL or contiguous '7'): has data, becomes an entry.
    File,
    /// Hard link ('1'): recipe only.
    HardLink,
    /// Symbolic link ('2'): recipe only.
    Symlink,
    /// Directory ('5'): recipe only.
    Dir,
    /// Character or block device ('3', '4') or FIFO ('6'): refused.
    Device,
    /// GNU long name ('L'): data is the next member's path.
    LongName,
    /// GNU long link name ('K'): data is the next member's link target.
    LongLink,
    /// PAX extended header ('x'): records for the next member.
    Pax,
    /// PAX global header ('g'): records for all following members.
    PaxGlobal,
    /// GNU sparse file ('S'): refused.
    Sparse,
    /// Anything else ('V' volume labels, 'M' multi-volume...): refused.
    Other(u8),
}

/// A parsed header block.
pub struct Header<'a> {
    raw: &'a tar::Header,
}

impl<'a> Header<'a> {
    /// Wraps a block. Call [`checksum_ok`] first.
    pub fn new(block: &'a [u8; BLOCK]) -> Self {
        Header {
            raw: tar::Header::from_byte_slice(block),
        }
    }

    /// What this header describes.
    pub fn kind(&self) -> Kind {
        match self.raw.as_bytes()[156] {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' | b'4' | b'6' => Kind::Device,
            b'5' => Kind::Dir,
            b'L' => Kind::LongName,
            b'K' => Kind::LongLink,
            b'x' => Kind::Pax,
            b'g' => Kind::PaxGlobal,
            b'S' => Kind::Sparse,
            other => Kind::Other(other),
        }
    }

    /// The size field (octal or base-256), or a description of what is wrong with it.
    pub fn size(&self) -> Result<u64, String> {
        self.raw
            .entry_size()
            .map_err(|e| format!("unreadable size field: {e}"))
    }

    /// The path from the name field (with the ustar prefix when the block is ustar).
    pub fn path_bytes(&self) -> Vec<u8> {
        self.raw.path_bytes().into_owned()
    }

    /// The link target field.
    pub fn link_bytes(&self) -> Vec<u8> {
        self.raw
            .link_name_bytes()
            .map(|b| b.into_owned())
            .unwrap_or_default()
    }
}

/// Whether the stored checksum matches the block. Both the unsigned sum (POSIX) and the signed
/// sum (some historic tars) are accepted, as GNU tar does.
pub fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// Whether a block starts a tar archive: a valid checksum plus either a ustar/GNU magic, or (old
/// v7 archives) a name, a known type flag and numeric fields that are octal.
pub fn looks_like_tar(block: &[u8; BLOCK]) -> bool {
    if block.iter().all(|&b| b == 0) || !checksum_ok(block) {
        return false;
    }
    let magic = &block[257..265];
    if magic == b"ustar\x0000" || magic == b"ustar  \x00" {
        return true;
    }
    let v7_type = matches!(block[156], 0 | b'0'..=b'7');
    let octal_fields = [100..108, 108..116, 116..124, 124..136, 136..148]
        .into_iter()
        .all(|r| parse_octal(&block[r]).is_some());
    block[0] != 0 && v7_type && magic.iter().all(|&b| b == 0) && octal_fields
}

/// Parses a NUL/space-terminated octal field. Hand-written because the checksum field must be
/// read before the block is trusted as a header at all.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let s: &[u8] = {
        let start = field.iter().position(|&b| b != b' ')?;
        let rest = &field[start..];
        let end = rest
            .iter()
            .position(|&b| b == 0 || b == b' ')
            .unwrap_or(rest.len());
        &rest[..end]
    };
    if s.is_empty() || !s.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(8)?.checked_add(u64::from(b - b'0'))
    })
}

/// Parses the records of a PAX extended header and returns the values of `path`, `linkpath`
/// and `size` when present.
pub fn pax_fields(data: &[u8]) -> Result<PaxFields, String> {
    let mut out = PaxFields::default();
    for rec in tar::PaxExtensions::new(data) {
        let rec = rec.map_err(|e| format!("malformed PAX record: {e}"))?;
        match rec.key_bytes() {
            b"path" => out.path = Some(rec.value_bytes().to_vec()),
            b"linkpath" => out.linkpath = Some(rec.value_bytes().to_vec()),
            b"size" => {
                let v = rec
                    .value()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| "PAX size record is not a number".to_string())?;
                out.size = Some(v);
            }
            b"GNU.sparse.major" | b"GNU.sparse.map" | b"GNU.sparse.size" => {
                out.sparse = true;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The PAX records the tar layer acts on.
#[derive(Debug, Default, Clone)]
pub struct PaxFields {
    /// `path`: overrides the name field.
    pub path: Option<Vec<u8>>,
    /// `linkpath`: overrides the link field.
    pub linkpath: Option<Vec<u8>>,
    /// `size`: overrides the size field (files of 8 GiB and more).
    pub size: Option<u64>,
    /// A GNU sparse record was present.
    pub sparse: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, typeflag: u8, magic: &[u8; 8]) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..108].copy_from_slice(b"0000644\0");
        b[108..116].copy_from_slice(b"0000000\0");
        b[116..124].copy_from_slice(b"0000000\0");
        b[124..136].copy_from_slice(b"00000000005\0");
        b[136..148].copy_from_slice(b"00000000000\0");
        b[156] = typeflag;
        b[257..265].copy_from_slice(magic);
        b[148..156].copy_from_slice(b"        ");
        let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
        let s = format!("{sum:06o}\0 ");
        b[148..156].copy_from_slice(s.as_bytes());
        b
    }

    #[test]
    fn recognizes_ustar_gnu_and_v7_headers() {
        assert!(looks_like_tar(&header("a.txt", b'0', b"ustar\x0000")));
        assert!(looks_like_tar(&header("a.txt", b'0', b"ustar  \x00")));
        assert!(looks_like_tar(&header("a.txt", b'0', &[0; 8])));
        assert!(!looks_like_tar(&header("a.txt", b'x', &[0; 8])));
        let mut bad = header("a.txt", b'0', b"ustar\x0000");
        bad[0] = b'b';
        assert!(!looks_like_tar(&bad));
        assert!(!looks_like_tar(&[0u8; BLOCK]));
    }

    #[test]
    fn reads_size_and_kind() {
        let b = header("a.txt", b'0', b"ustar\x0000");
        let h = Header::new(&b);
        assert_eq!(h.kind(), Kind::File);
        assert_eq!(h.size().unwrap(), 5);
        assert_eq!(h.path_bytes(), b"a.txt");
    }

    #[test]
    fn parses_pax_records() {
        let f = pax_fields(b"28 path=some/long/name/here\n11 size=99\n").unwrap();
        assert_eq!(f.path.as_deref(), Some(&b"some/long/name/here"[..]));
        assert_eq!(f.size, Some(99));
    }
}
