//! The retention rule, one type for the config's `[sites.NAME.retention]` table, `dvault
//! forget`'s `--keep-*` flags and the store's `forget`: [`Retention`], and its one duration type,
//! [`KeepWithin`] (restic's `keep_within` notation).
//!
//! A low module on purpose: the config deserializes straight into these types and the command
//! line parses into them, so neither needs the repository code that applies them (that is
//! `store/restic/retention.rs`). Each value is parsed once, where it is read: a bad
//! `keep_within` is a config error naming the key and the file, or a usage error naming the
//! flag, before anything runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Which snapshots to keep, with restic's meaning, and whether this host removes the rest.
/// Deserialized as it stands from the config's `[sites.NAME.retention]` table (the keys are
/// the field names); `dvault forget` builds it from its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Keep the N newest snapshots.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Keep the last snapshot of each of the last N days that have snapshots.
    #[serde(default)]
    pub keep_daily: Option<u32>,
    /// Same per ISO week.
    #[serde(default)]
    pub keep_weekly: Option<u32>,
    /// Same per month.
    #[serde(default)]
    pub keep_monthly: Option<u32>,
    /// Same per year.
    #[serde(default)]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot younger than this, counted back from the group's newest snapshot.
    #[serde(default)]
    pub keep_within: Option<KeepWithin>,
    /// Whether `dvault run` on this host forgets snapshots (false on a host with append-only
    /// credentials; then retention runs on the repository's host). `dvault forget` always does
    /// (`--dry-run` aside).
    #[serde(default)]
    pub forget: bool,
    /// Whether the data no remaining snapshot uses is deleted after forgetting (prune).
    #[serde(default)]
    pub prune: bool,
    /// Only the snapshots stored for this config site (`BackupMeta::site`); `None`: every
    /// dvault snapshot, each site's group on its own. Not a key of the file: a config site's
    /// rule gets its name through [`Retention::for_site`].
    #[serde(skip)]
    pub only_site: Option<String>,
}

impl Retention {
    /// True when no rule keeps anything (forget would remove everything: refused). A count of
    /// 0 or a zero duration keeps nothing, so it counts as no rule.
    pub fn is_empty(&self) -> bool {
        let none = |n: Option<u32>| n.unwrap_or(0) == 0;
        none(self.keep_last)
            && none(self.keep_daily)
            && none(self.keep_weekly)
            && none(self.keep_monthly)
            && none(self.keep_yearly)
            && self.keep_within.as_ref().is_none_or(KeepWithin::is_zero)
    }

    /// This rule limited to the snapshots of config site `site`.
    pub fn for_site(&self, site: &str) -> Retention {
        Retention {
            only_site: Some(site.to_string()),
            ..self.clone()
        }
    }
}

/// A `keep_within` span in restic's notation (`2y5m7d3h`, units y, m, w, d, h): the config's
/// `retention.keep_within` and `forget --keep-within`. Shows as it was written.
#[derive(Debug, Clone)]
pub struct KeepWithin {
    text: String,
    span: jiff::Span,
}

impl KeepWithin {
    /// The span, to count back from a snapshot time.
    pub fn span(&self) -> jiff::Span {
        self.span
    }

    /// True for a span of nothing (`0d`), which keeps no snapshot.
    pub fn is_zero(&self) -> bool {
        self.span.is_zero()
    }
}

impl FromStr for KeepWithin {
    type Err = String;

    /// The one parser of the notation. The error names the value, not a flag or key (the
    /// caller's parser adds which).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?}: expected a duration such as \"30d\", \"2w\" or \"1y6m\" (units y, m, w, d, h)"
            )
        };
        let mut span = jiff::Span::new();
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let v: i64 = num.parse().map_err(|_| bad())?;
            num.clear();
            span = match c {
                'y' => span.try_years(v),
                'm' => span.try_months(v),
                'w' => span.try_weeks(v),
                'd' => span.try_days(v),
                'h' => span.try_hours(v),
                _ => return Err(bad()),
            }
            .map_err(|_| bad())?;
        }
        if !num.is_empty() || s.is_empty() {
            return Err(bad());
        }
        Ok(KeepWithin {
            text: s.to_string(),
            span,
        })
    }
}

impl fmt::Display for KeepWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// Equal as written: `jiff::Span` compares only field by field, and `1w` is not `7d` to restic
// either when it shows the rule.
impl PartialEq for KeepWithin {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for KeepWithin {}

impl<'de> Deserialize<'de> for KeepWithin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_within_parses_restic_durations() {
        let w: KeepWithin = "1y6m".parse().unwrap();
        assert_eq!(w.to_string(), "1y6m");
        assert_eq!(
            w.span().fieldwise(),
            jiff::Span::new().years(1).months(6).fieldwise()
        );
        assert!("7d".parse::<KeepWithin>().is_ok());
        assert!("2w3h".parse::<KeepWithin>().is_ok());
        for bad in ["7", "7x", "", "d", "2 weeks"] {
            let e = bad.parse::<KeepWithin>().unwrap_err();
            assert!(
                e.starts_with(&format!("{bad:?}: expected a duration")),
                "{e}"
            );
        }
    }

    #[test]
    fn rules_that_keep_nothing_are_empty() {
        let within = |s: &str| Retention {
            keep_within: Some(s.parse().unwrap()),
            ..Retention::default()
        };
        assert!(Retention::default().is_empty());
        assert!(Retention {
            keep_daily: Some(0),
            keep_weekly: Some(0),
            ..Retention::default()
        }
        .is_empty());
        assert!(within("0d").is_empty());
        assert!(within("0y0m").is_empty());
        assert!(!within("1h").is_empty());
        assert!(!Retention {
            keep_last: Some(1),
            ..Retention::default()
        }
        .is_empty());
        assert_eq!(
            within("2d").for_site("forum").only_site.as_deref(),
            Some("forum")
        );
    }
}
