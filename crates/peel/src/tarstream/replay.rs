//! Pass 2 of writing the tar stream: follows the recipe through the input again, only
//! decompressing, and writes each entry as it comes out, checked against pass 1's digest.

use std::collections::HashMap;
use std::io::{self, Read};

use super::write::TarWriter;
use super::BLOCK;
use crate::gzip::GzipRecipe;
use crate::recipe::Node;
use crate::stream::{drain, read_full, CountRead, HashRead};
use crate::tar::TarRecipe;
use crate::Error;
use crate::Result;

/// Pass 2: follows the recipe through the input, writing entries to the stream.
pub(super) struct Replay<'a, 'w> {
    pub(super) w: &'a mut TarWriter<'w>,
    pub(super) digests: &'a HashMap<String, (u64, [u8; 32])>,
    pub(super) location: &'a str,
}

impl Replay<'_, '_> {
    fn changed(&self, problem: String) -> Error {
        Error::Format {
            location: self.location.to_string(),
            problem: format!("the input changed between the two passes: {problem}"),
        }
    }

    pub(super) fn node(&mut self, node: &Node, input: &mut dyn Read) -> Result<()> {
        match node {
            Node::Entry { path, size } | Node::Stored { path, size, .. } => {
                self.entry(path, *size, input)
            }
            Node::Gzip { gzip, inner } => self.gzip(gzip, inner, input),
            Node::Tar(t) => self.tar(t, input),
        }
    }

    fn entry(&mut self, path: &str, size: u64, input: &mut dyn Read) -> Result<()> {
        let mut hashed = HashRead::new(input.take(size));
        self.w.member(path, size, &mut hashed)?;
        let got = hashed.digest();
        match self.digests.get(path) {
            Some((n, sha)) if *n == got.size && hex::encode(sha) == got.sha256 => Ok(()),
            Some((n, sha)) => Err(self.changed(format!(
                "entry {path} was {n} bytes, sha256 {}; now {} bytes, sha256 {}",
                hex::encode(sha),
                got.size,
                got.sha256
            ))),
            None => Err(Error::Recipe(format!(
                "entry {path} is in the recipe but was never written"
            ))),
        }
    }

    fn skip(&self, input: &mut dyn Read, n: u64, what: &str) -> Result<()> {
        let got = io::copy(&mut input.take(n), &mut io::sink()).map_err(|e| Error::Io {
            context: format!("{}: reading {what}", self.location),
            source: e,
        })?;
        if got != n {
            return Err(self.changed(format!("it ends inside {what}")));
        }
        Ok(())
    }

    fn tar(&mut self, t: &TarRecipe, input: &mut dyn Read) -> Result<()> {
        for (i, m) in t.members.iter().enumerate() {
            self.skip(
                input,
                u64::from(m.blocks) * BLOCK as u64,
                &format!("the headers of tar member {i}"),
            )?;
            if let Some(data) = &m.data {
                let mut member = CountRead {
                    inner: (&mut *input).take(m.size),
                    count: 0,
                };
                self.node(data, &mut member)?;
                let rest = drain(&mut member).map_err(|e| Error::Io {
                    context: format!("{}: reading tar member {i}", self.location),
                    source: e,
                })?;
                if rest != 0 || member.count != m.size {
                    return Err(self.changed(format!(
                        "tar member {i} was {} bytes, its layers now account for {}",
                        m.size,
                        member.count - rest
                    )));
                }
            }
            let pad = (BLOCK as u64 - m.size % BLOCK as u64) % BLOCK as u64;
            self.skip(input, pad, &format!("the padding of tar member {i}"))?;
        }
        self.skip(input, t.end_zeros, "the end of a tar archive")?;
        if let Some(after) = &t.after {
            self.node(after, input)?;
        }
        Ok(())
    }

    fn gzip(&mut self, g: &GzipRecipe, inner: &Node, input: &mut dyn Read) -> Result<()> {
        let mut content = Gunzip {
            input: Some(input),
            members: &g.members,
            next: 0,
            current: None,
            location: self.location,
        };
        self.node(inner, &mut content)?;
        let rest = drain(&mut content).map_err(|e| self.changed(e.to_string()))?;
        if rest != 0 {
            return Err(self.changed(format!(
                "a gzip layer has {rest} bytes of content beyond what the recipe uses"
            )));
        }
        let input = content.input.take().ok_or_else(|| {
            self.changed("a gzip member did not end where the recipe says".into())
        })?;
        let mut trailing = vec![0u8; g.trailing.0.len()];
        let got = read_full(input, &mut trailing).map_err(|e| Error::Io {
            context: format!("{}: reading", self.location),
            source: e,
        })?;
        if got != trailing.len() || trailing != g.trailing.0 {
            return Err(self.changed("the bytes after the last gzip member differ".into()));
        }
        Ok(())
    }
}

/// The concatenated content of a gzip layer's members, decompressed member by member at the
/// offsets the recipe gives (plain inflate: pass 1 already proved the recompression).
struct Gunzip<'a, 'r> {
    input: Option<&'r mut dyn Read>,
    members: &'a [crate::gzip::MemberRecipe],
    next: usize,
    current: Option<(
        flate2::read::DeflateDecoder<io::Take<&'r mut dyn Read>>,
        u64,
    )>,
    location: &'a str,
}

impl Gunzip<'_, '_> {
    fn bad(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: gzip member {}: {what}", self.location, self.next),
        )
    }
}

impl Read for Gunzip<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((dec, count)) = &mut self.current {
                let n = dec.read(buf)?;
                if n > 0 {
                    *count += n as u64;
                    return Ok(n);
                }
                let (dec, count) = self.current.take().expect("current member");
                let member = &self.members[self.next - 1];
                if count != member.plain_size {
                    return Err(self.bad(format!(
                        "{count} bytes of content, the recipe says {}",
                        member.plain_size
                    )));
                }
                let mut rest = dec.into_inner();
                drain(&mut rest)?;
                let input = rest.into_inner();
                let mut trailer = [0u8; 8];
                if read_full(input, &mut trailer)? != 8 {
                    return Err(self.bad("the input ends inside the trailer".into()));
                }
                self.input = Some(input);
                continue;
            }
            let Some(member) = self.members.get(self.next) else {
                return Ok(0);
            };
            let Some(input) = self.input.take() else {
                return Ok(0);
            };
            let mut header = vec![0u8; member.header.0.len()];
            if read_full(input, &mut header)? != header.len() || header != member.header.0 {
                return Err(self.bad("the header differs from the recipe's".into()));
            }
            self.next += 1;
            let body = input.take(member.deflate_size);
            self.current = Some((flate2::read::DeflateDecoder::new(body), 0));
        }
    }
}
