//! The parsers of the config's values: durations (humantime's `30s`, `7d`) and
//! `read_data_subset` percentages; `keep_within` has a type of its own,
//! [`crate::retention::KeepWithin`], shared with `forget`. Each value is parsed once, when the
//! file is loaded, into a typed value.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub(super) fn de_duration_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Parses `30s`, `10m`, `2h`, `7d`, `1h 30m` (humantime's syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e} (expected e.g. \"30s\", \"10m\", \"2h\", \"7d\")")
    })
}

/// Parses a `read_data_subset` value, a percentage of the pack files such as `10%` (`100%`
/// reads everything). restic's `n/m` and size forms are not offered: the repository layer reads
/// a random percentage.
pub fn parse_subset(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let p = t
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("{t:?}: expected a percentage such as \"10%\""))?;
    if !(p > 0.0 && p <= 100.0) {
        return Err(format!("{t:?}: percentage must be in (0, 100]"));
    }
    Ok(p)
}

/// `read_data_subset = "10%"` as the percentage (see [`parse_subset`]).
pub(super) fn de_subset<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let text = String::deserialize(d)?;
    parse_subset(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}
