//! A gzip layer inside an expansion: the gzip module decompresses and proves on its own thread,
//! writing the content into a pipe that this thread expands as the next layer down.

use std::io::{self, Read, Write};
use std::time::Duration;

use super::{is_broken_pipe, Expander, PIPE_BUFFER};
use crate::error::{Error, Result};
use crate::gzip::proof::Proofs;
use crate::gzip::{GzipReport, Unproven};
use crate::names;
use crate::options::ExpandOptions;
use crate::place::{Place, Step};
use crate::recipe::{GzipRecipe, Node};
use crate::report::{LayerProfile, LayerReport};
use crate::stream::{drain, CountRead};

impl Expander<'_> {
    pub(super) fn expand_gzip(
        &mut self,
        input: &mut (dyn Read + Send),
        place: Place,
    ) -> Result<Node> {
        let mark = self.emitted.len();
        let layers_mark = self.layers.len();
        self.layers.push(LayerReport::new(&place.location, "gzip"));
        // Reserved now so that the profile lists layers outermost first, like the report.
        let profile_index = self.profile.layers.len();
        self.profile.layers.push(LayerProfile {
            location: place.location.clone(),
            ..LayerProfile::default()
        });
        let mut steps = place.steps.clone();
        steps.push(Step::Gunzip);
        let inner_place = Place {
            location: format!("{}>gunzip", place.location),
            leaf: names::gunzipped(&place.leaf),
            dir: if place.dir == place.leaf {
                names::gunzipped(&place.dir)
            } else {
                place.dir.clone()
            },
            steps,
            depth: place.depth + 1,
            limit: None,
        };
        let (reader, writer) = io::pipe().map_err(|e| Error::Io {
            context: format!("{}: creating a pipe", place.location),
            source: e,
        })?;
        let opts = self.opts;
        let proofs = self.proofs;
        let location = place.location.clone();
        let mut counted_in = CountRead {
            inner: input,
            count: 0,
        };
        let (gz, inner, plain_size) = std::thread::scope(|s| {
            let counted_in = &mut counted_in;
            let gz = s.spawn(move || {
                let mut writer = writer;
                gzip_calls::expand(counted_in, &mut writer, opts, &location, proofs)
            });
            // Buffered: the tar layer reads 512-byte header blocks, one syscall each otherwise.
            let mut plain = CountRead {
                inner: io::BufReader::with_capacity(PIPE_BUFFER, reader),
                count: 0,
            };
            let inner = self.expand(&mut plain, inner_place);
            if inner.is_ok() {
                // The content must be read to its end, or the gzip thread would block.
                let _ = drain(&mut plain);
            }
            let plain_size = plain.count;
            drop(plain);
            let gz = gz.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (gz, inner, plain_size)
        });
        let compressed_size = counted_in.count;
        // One after another, the proofs are done: the recipe is complete now. Otherwise it is
        // completed at the end of the expansion (`Expander::settle`).
        let gz = match gz {
            Ok(unproven) if proofs.limit() == 0 => {
                let timing = unproven.timing();
                unproven
                    .prove()
                    .map(|(recipe, report)| (timing, Proof::Done(recipe, report)))
            }
            Ok(unproven) => Ok((unproven.timing(), Proof::Later(unproven))),
            Err(e) => Err(e),
        };
        if gz.is_err() {
            // Its time is not known; the layer is stored, or the error ends the expansion.
            self.profile.layers.truncate(profile_index);
        }
        match gz {
            Ok((t, proof)) => {
                let secs = |d: Duration| d.as_secs_f64();
                self.profile.layers[profile_index] = LayerProfile {
                    location: place.location.clone(),
                    read_s: secs(t.read),
                    decompress_s: secs(t.decompress),
                    downstream_s: secs(t.downstream),
                    ..LayerProfile::default()
                };
                let mut rest = None;
                let checked = inner.and_then(|inner| {
                    // Whatever the gzip layer did not take would be missing from the rebuild.
                    let extra = drain(&mut *counted_in.inner).map_err(|e| Error::Io {
                        context: format!("{}: reading", place.location),
                        source: e,
                    })?;
                    rest = Some(extra);
                    if extra != 0 {
                        return Err(Error::Format {
                            location: place.location.clone(),
                            problem: format!(
                                "{extra} bytes after offset {compressed_size} are not part of the gzip layer"
                            ),
                        });
                    }
                    Ok(inner)
                });
                let (inner, proof) = match (checked, proof) {
                    (Ok(inner), proof) => (inner, proof),
                    (Err(e), Proof::Done(..)) => return Err(e),
                    // One after another, a member no method reproduces would have been known
                    // before this error, and the layer stored: find out now.
                    (Err(e), Proof::Later(unproven)) => match unproven.prove() {
                        Err(Error::NotReproducible { reason, .. }) => {
                            self.profile.layers.truncate(profile_index);
                            let rest = match rest {
                                Some(n) => n,
                                None => drain(counted_in.inner).map_err(|e| Error::Io {
                                    context: format!("{}: reading", place.location),
                                    source: e,
                                })?,
                            };
                            let size = compressed_size + rest;
                            return self.keep_stored(&place, mark, layers_mark, size, reason);
                        }
                        _ => return Err(e),
                    },
                };
                let layer = &mut self.layers[layers_mark];
                layer.compressed_size = compressed_size;
                layer.plain_size = plain_size;
                let recipe = match proof {
                    Proof::Done(recipe, report) => {
                        self.proven(layers_mark, profile_index, &recipe, &report);
                        recipe
                    }
                    Proof::Later(unproven) => {
                        let recipe = unproven.placeholder();
                        self.deferred.push(Deferred {
                            unproven,
                            layer: layers_mark,
                            profile: profile_index,
                        });
                        recipe
                    }
                };
                Ok(Node::Gzip {
                    gzip: recipe,
                    inner: Box::new(inner),
                })
            }
            Err(Error::NotReproducible { reason, .. }) => {
                let rest = drain(counted_in.inner).map_err(|e| Error::Io {
                    context: format!("{}: reading", place.location),
                    source: e,
                })?;
                self.keep_stored(&place, mark, layers_mark, compressed_size + rest, reason)
            }
            Err(gz_err) => match inner {
                // The content's reader stopped first; the gzip thread only saw the closed pipe.
                Err(inner_err) if is_broken_pipe(&gz_err) => Err(inner_err),
                _ => Err(gz_err),
            },
        }
    }

    /// Keeps a gzip layer no method reproduces as its original bytes (`size` of them), read
    /// again from the input; the entries and reports made for its content are dropped.
    fn keep_stored(
        &mut self,
        place: &Place,
        mark: usize,
        layers_mark: usize,
        size: u64,
        reason: String,
    ) -> Result<Node> {
        tracing::info!("{}: kept as stored bytes: {reason}", place.location);
        self.discard_since(mark)?;
        self.forget_layers(layers_mark);
        let mut layer = LayerReport::new(&place.location, "stored");
        layer.compressed_size = size;
        layer.plain_size = size;
        layer.note = Some(reason.clone());
        let node = self.emit_reread(place, true, reason)?;
        self.layers.push(layer);
        Ok(node)
    }

    /// Fills in the report and profile of a gzip layer whose proofs are done.
    pub(super) fn proven(
        &mut self,
        layer: usize,
        profile: usize,
        recipe: &GzipRecipe,
        report: &GzipReport,
    ) {
        let l = &mut self.layers[layer];
        l.method = Some(describe_methods(recipe));
        l.details = serde_json::to_value(report).ok();
        l.set_recipe_bytes(serde_json::to_vec(recipe).map_or(0, |v| v.len() as u64));
        if let Some(p) = self.profile.layers.get_mut(profile) {
            let t = report.timing;
            p.probe_s = t.probe.as_secs_f64();
            p.proof_s = t.proof.as_secs_f64();
            p.proof_idle_s = t.proof_idle.as_secs_f64();
        }
    }
}

/// A gzip layer's proofs: done, or still running.
enum Proof {
    Done(GzipRecipe, GzipReport),
    Later(Unproven),
}

/// A gzip layer whose recipe waits for its proofs (see `Expander::settle`).
pub(super) struct Deferred {
    pub unproven: Unproven,
    /// Its report in `Expander::layers`.
    pub layer: usize,
    /// Its entry in the profile's layers.
    pub profile: usize,
}

/// A short description of the methods of a gzip layer's members ("gzip -5").
fn describe_methods(recipe: &GzipRecipe) -> String {
    let mut parts: Vec<String> = Vec::new();
    for m in &recipe.members {
        let d = m.method.to_string();
        if parts.last() != Some(&d) {
            parts.push(d);
        }
    }
    if recipe.members.len() > 1 {
        format!("{} ({} members)", parts.join(", "), recipe.members.len())
    } else {
        parts.join(", ")
    }
}

/// The calls into the gzip layer, in one place.
pub(super) mod gzip_calls {
    use super::*;

    pub(super) fn expand(
        input: &mut (dyn Read + Send),
        plain: &mut (dyn Write + Send),
        opts: &ExpandOptions,
        location: &str,
        proofs: &Proofs,
    ) -> Result<Unproven> {
        crate::gzip::decompress(input, plain, &opts.gzip, location, proofs)
    }

    pub(in crate::layer) fn rebuild(
        recipe: &GzipRecipe,
        plain: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
        location: &str,
        opts: &crate::options::RebuildOptions,
    ) -> Result<()> {
        crate::gzip::rebuild_with(recipe, plain, out, location, opts)
    }
}
