//! The `[pricing]` section of the config: prices of the storage the repositories are in, from
//! which `dvault report` computes its costs (`report/cost.rs`). A config type, so the config
//! needs nothing of the report to be read.
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
