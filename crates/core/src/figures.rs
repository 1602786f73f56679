//! How dvault writes figures for people: byte counts and durations, in one form everywhere
//! (run's log, `backup`, `check`, error messages). What each figure means is in
//! docs/figures.md; JSON and metrics carry the plain numbers (bytes, seconds).

use std::time::Duration;

/// A byte count in binary units with the exact number for small ones: `512 B`, `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// A duration in one compact form: `850ms`, `12.3s`, `4m 5s`, `2h 3m`, `4d 4h 33m` (the two or
/// three largest units; humantime and `--retry-lock` read it back).
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (mins, "m"), (secs, "s")]
        .into_iter()
        .skip_while(|(v, _)| *v == 0)
        .take(if days > 0 { 3 } else { 2 })
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_one_compact_form() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 5s");
        assert_eq!(duration(Duration::from_secs(2 * 3600 + 180 + 7)), "2h 3m");
        assert_eq!(
            duration(Duration::from_secs(4 * 86_400 + 4 * 3600 + 33 * 60 + 8)),
            "4d 4h 33m"
        );
        assert_eq!(duration(Duration::from_secs(7 * 86_400)), "7d");
        // What is written can be read back by the config's duration parser.
        assert!(crate::config::parse_duration(&duration(Duration::from_secs(245))).is_ok());
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536 * 1024), "1.5 MiB");
    }
}
