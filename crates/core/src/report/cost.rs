//! What the stored backups cost: the `[pricing]` section of the config and the two figures
//! `dvault report` prints from it (storage per month, one full restore).
//!
//! Prices are the admin's to give: providers change them and bill differently (minimum storage
//! durations, free egress allowances, request classes). docs/report.md lists example numbers
//! for a few S3 providers to start from.

use serde::{Deserialize, Serialize};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `[pricing]`: prices of the storage the repositories are in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// A name for the price list, shown with the figures (e.g. "Backblaze B2, example").
    #[serde(default)]
    pub name: Option<String>,
    /// Currency of all prices (shown only), e.g. "USD".
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Storage per GiB and month.
    #[serde(default)]
    pub storage_per_gib_month: f64,
    /// Per 1,000 requests (the reading class: GET and LIST).
    #[serde(default)]
    pub per_1000_requests: f64,
    /// Download (egress) per GiB.
    #[serde(default)]
    pub egress_per_gib: f64,
}

fn default_currency() -> String {
    "USD".to_string()
}

impl Pricing {
    /// Rejects negative or non-finite prices, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("storage_per_gib_month", self.storage_per_gib_month),
            ("per_1000_requests", self.per_1000_requests),
            ("egress_per_gib", self.egress_per_gib),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "{key} = {v}: a price must be a number of 0 or more"
                ));
            }
        }
        Ok(())
    }

    /// Storing `bytes` for a month.
    pub fn storage_month(&self, bytes: u64) -> f64 {
        bytes as f64 / GIB * self.storage_per_gib_month
    }

    /// Downloading `bytes` in `requests` requests.
    pub fn download(&self, bytes: u64, requests: u64) -> f64 {
        bytes as f64 / GIB * self.egress_per_gib + requests as f64 / 1000.0 * self.per_1000_requests
    }
}

/// The cost figures of one site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// Currency.
    pub currency: String,
    /// The price list's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<String>,
    /// Storing the repository as it is now, per month.
    pub storage_per_month: f64,
    /// One full restore of the newest snapshot: its download and requests.
    pub full_restore: f64,
    /// Bytes that restore downloads.
    pub restore_bytes: u64,
    /// Requests it makes.
    pub restore_requests: u64,
}

impl Cost {
    /// The figures for a repository of `repo_bytes` whose newest snapshot restores with
    /// `restore_bytes` in `restore_requests` requests.
    pub fn new(p: &Pricing, repo_bytes: u64, restore_bytes: u64, restore_requests: u64) -> Self {
        Cost {
            currency: p.currency.clone(),
            pricing: p.name.clone(),
            storage_per_month: p.storage_month(repo_bytes),
            full_restore: p.download(restore_bytes, restore_requests),
            restore_bytes,
            restore_requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_gib_and_thousands_of_requests() {
        let p = Pricing {
            name: None,
            currency: "EUR".into(),
            storage_per_gib_month: 0.02,
            per_1000_requests: 0.5,
            egress_per_gib: 0.09,
        };
        let c = Cost::new(&p, 10 * 1024 * 1024 * 1024, 2 * 1024 * 1024 * 1024, 2000);
        assert!((c.storage_per_month - 0.2).abs() < 1e-9, "{c:?}");
        assert!((c.full_restore - (0.18 + 1.0)).abs() < 1e-9, "{c:?}");
        let bad = Pricing {
            egress_per_gib: -1.0,
            ..p
        };
        assert!(bad.validate().unwrap_err().contains("egress_per_gib"));
    }
}
