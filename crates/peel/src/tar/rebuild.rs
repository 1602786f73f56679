//! Writing a tar archive back from its recipe: the header blocks from the headers entry, each
//! member's data (rebuilt by the caller when it is a nested layer), padding and end zeros.

use std::io::{self, BufReader, Read, Write};

use super::header::BLOCK;
use super::{padding, RebuildNested, TarRecipe};
use crate::entries::EntrySource;
use crate::error::{Error, Result};
use crate::stream::CountWrite;

/// Writes the archive described by `recipe`, taking member data from `source`.
pub(crate) fn rebuild(
    recipe: &TarRecipe,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
    location: &str,
    nested: RebuildNested<'_>,
) -> Result<()> {
    let open = source.open(&recipe.headers).map_err(|e| Error::Io {
        context: format!("opening entry {}", recipe.headers),
        source: e,
    })?;
    let mut headers = BufReader::new(open);
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
            nested(data, source, &mut w, &format!("{location}>member {i}"))?;
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
        nested(after, source, out, location)?;
    }
    Ok(())
}
