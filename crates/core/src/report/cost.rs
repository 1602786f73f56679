//! What the stored backups cost: the two figures `dvault report` prints from the config's
//! `[pricing]` section ([`Pricing`], kept with the config): storage per month, one full restore.

use serde::Serialize;

use crate::config::Pricing;

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
