//! Writing a tar archive back from its recipe: the header blocks from the headers entry, each
//! member's data (rebuilt by the caller when it is a nested layer), padding and end zeros.
//!
//! Members whose data is a gzip layer (format B's `db/NNNN.dat.gz`) are recompressed by jobs
//! that run ahead of the writer, up to `RebuildOptions::parallel_jobs` at once, when the source
//! can open entries from several threads ([`EntrySource::try_clone`]). A thread of its own starts
//! the jobs in member order; this thread writes everything in order, taking each job's output
//! when its member comes (`crate::ordered`: bounded memory, no deadlock), so the bytes are the
//! same as one member after another.

use std::io::{self, BufReader, Read, Write};

use super::header::BLOCK;
use super::{padding, RebuildNested, TarRecipe};
use crate::entries::EntrySource;
use crate::error::{Error, Result};
use crate::options::RebuildOptions;
use crate::ordered::Ordered;
use crate::recipe::Node;
use crate::stream::CountWrite;

/// Writes the archive described by `recipe`, taking member data from `source`.
pub(crate) fn rebuild(
    recipe: &TarRecipe,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
    location: &str,
    nested: RebuildNested<'_>,
    opts: &RebuildOptions,
) -> Result<()> {
    let open = source.open(&recipe.headers).map_err(|e| Error::Io {
        context: format!("opening entry {}", recipe.headers),
        source: e,
    })?;
    let mut headers = BufReader::new(open);
    let ahead = opts.parallel_jobs > 0
        && recipe
            .members
            .iter()
            .any(|m| m.data.as_ref().is_some_and(runs_ahead));
    let template = if ahead { source.try_clone() } else { None };
    let mut w = Writer {
        recipe,
        source,
        headers: &mut headers,
        location,
        nested,
        opts,
    };
    let Some(template) = template else {
        return w.write(out, None);
    };
    let ordered = Ordered::new(opts.parallel_jobs, opts.buffer_cap);
    std::thread::scope(|s| {
        // Whatever happens to the writer, the jobs and the scheduler stop waiting.
        let _closer = ordered.closer();
        let ordered = &ordered;
        s.spawn(move || {
            let _end = ordered.ender();
            start_jobs(recipe, &*template, location, nested, ordered, s);
        });
        w.write(out, Some(ordered))
    })
}

/// Whether a member's data is rebuilt by a job running ahead: a gzip layer, whose
/// recompression is the work worth spreading over the cores.
fn runs_ahead(data: &Node) -> bool {
    matches!(data, Node::Gzip { .. })
}

fn member_location(location: &str, i: usize) -> String {
    format!("{location}>member {i}")
}

/// Starts a job for every member that [`runs_ahead`], in member order, as places free up. Inside
/// a job the member's layers are rebuilt one part after another (a job is one core's work).
fn start_jobs<'s, 'e: 's>(
    recipe: &'e TarRecipe,
    template: &dyn EntrySource,
    location: &'e str,
    nested: RebuildNested<'e>,
    ordered: &'e Ordered,
    s: &'s std::thread::Scope<'s, 'e>,
) {
    for (i, m) in recipe.members.iter().enumerate() {
        let Some(data) = m.data.as_ref().filter(|d| runs_ahead(d)) else {
            continue;
        };
        let Some(mut job) = ordered.begin() else {
            return;
        };
        let source = template.try_clone();
        s.spawn(move || {
            let at = member_location(location, i);
            let result = match source {
                Some(mut source) => nested(
                    data,
                    &mut *source,
                    &mut job,
                    &at,
                    &RebuildOptions::sequential(),
                ),
                None => Err(Error::Recipe(format!(
                    "{at}: the entries cannot be opened from another thread"
                ))),
            };
            job.finish(result);
        });
    }
}

/// The thread writing the archive in order.
struct Writer<'a, 'r> {
    recipe: &'a TarRecipe,
    source: &'a mut dyn EntrySource,
    headers: &'a mut BufReader<Box<dyn Read + Send + 'r>>,
    location: &'a str,
    nested: RebuildNested<'a>,
    opts: &'a RebuildOptions,
}

impl Writer<'_, '_> {
    /// Writes the archive; members that [`runs_ahead`] come from `ordered` when it is given.
    fn write(&mut self, out: &mut (dyn Write + Send), ordered: Option<&Ordered>) -> Result<()> {
        let (recipe, location, nested) = (self.recipe, self.location, self.nested);
        let mut headers = &mut *self.headers;
        let write_err = |e| Error::Io {
            context: "writing the rebuilt tar".to_string(),
            source: e,
        };
        let zeros = [0u8; BLOCK];
        for (i, m) in recipe.members.iter().enumerate() {
            let want = u64::from(m.blocks) * BLOCK as u64;
            let got = io::copy(&mut (&mut headers).take(want), out).map_err(|e| Error::Io {
                context: format!("copying entry {}", recipe.headers),
                source: e,
            })?;
            if got != want {
                return Err(Error::Recipe(format!(
                    "entry {} ends inside the headers of member {i}",
                    recipe.headers
                )));
            }
            if let Some(data) = &m.data {
                let mut w = CountWrite {
                    inner: &mut *out,
                    count: 0,
                };
                let at = member_location(location, i);
                match ordered.filter(|_| runs_ahead(data)) {
                    Some(o) => match o.write_next(&mut w, &write_err) {
                        Some(result) => result?,
                        None => {
                            return Err(Error::Recipe(format!(
                                "{at}: the rebuild stopped before this member"
                            )))
                        }
                    },
                    None => nested(data, &mut *self.source, &mut w, &at, self.opts)?,
                }
                if w.count != m.size {
                    return Err(Error::Recipe(format!(
                        "tar member {i}: rebuilt {} data bytes, the recipe says {}",
                        w.count, m.size
                    )));
                }
            }
            let pad = padding(m.size) as usize;
            match &m.pad {
                Some(p) if p.0.len() == pad => out.write_all(&p.0).map_err(write_err)?,
                Some(p) => {
                    return Err(Error::Recipe(format!(
                        "tar member {i}: padding of {} bytes recorded, {pad} expected",
                        p.0.len()
                    )))
                }
                None => out.write_all(&zeros[..pad]).map_err(write_err)?,
            }
        }
        let mut left = recipe.end_zeros;
        while left > 0 {
            let n = left.min(BLOCK as u64) as usize;
            out.write_all(&zeros[..n]).map_err(write_err)?;
            left -= n as u64;
        }
        if let Some(after) = &recipe.after {
            nested(after, &mut *self.source, out, location, self.opts)?;
        }
        Ok(())
    }
}
