//! Printing `dvault run --dry-run`: the plan `dvault_core::run_plan` works out, as text or one
//! JSON document. Exit code 0 when every site could be looked at, 3 when some could not, 1 when
//! none could (as `run` itself).

use std::io::Write as _;

use dvault_core::config::Config;
use dvault_core::run::exit;

/// Prints the plan of the selected sites and returns the exit code.
pub fn print(config: &Config, site: Option<&str>, json: bool) -> i32 {
    let plans = match dvault_core::run_plan::plan(config, site) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::ERROR;
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        let _ = serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "dry_run": true, "sites": plans }),
        );
        let _ = writeln!(out);
    } else {
        for p in &plans {
            let _ = writeln!(out, "site {} (source {}):", p.site, p.source);
            if let Some(e) = &p.error {
                let _ = writeln!(out, "  error: {e}");
                continue;
            }
            match &p.file {
                Some(f) => {
                    let _ = writeln!(
                        out,
                        "  backup: {f} ({} bytes): {}",
                        p.size.unwrap_or(0),
                        p.action
                    );
                }
                None => {
                    let _ = writeln!(out, "  backup: {}", p.action);
                }
            }
            for f in &p.backfill {
                let _ = writeln!(out, "  older backup: {f}: would store it first");
            }
            for f in &p.backfill_over_limit {
                let _ = writeln!(
                    out,
                    "  older backup: {f}: left (over source.backfill_limit)"
                );
            }
            if let Some(to) = &p.copy_to {
                let _ = writeln!(out, "  copy to: {to}");
            }
            if let Some(decisions) = &p.retention {
                let removed: Vec<_> = decisions.iter().filter(|d| !d.keep).collect();
                let _ = writeln!(
                    out,
                    "  retention: would keep {}, remove {}",
                    decisions.len() - removed.len(),
                    removed.len()
                );
                for d in removed {
                    let _ = writeln!(
                        out,
                        "    remove {}  {}  {}",
                        d.snapshot.short_id,
                        d.snapshot.time.get(..19).unwrap_or(&d.snapshot.time),
                        d.snapshot.meta.file_name
                    );
                }
            }
            for n in &p.notes {
                let _ = writeln!(out, "  note: {n}");
            }
        }
        let _ = writeln!(out, "dry run: nothing was stored, removed or recorded");
    }
    let failed = plans.iter().filter(|p| p.error.is_some()).count();
    match failed {
        0 => exit::OK,
        n if n == plans.len() => exit::ERROR,
        _ => exit::PARTIAL,
    }
}
