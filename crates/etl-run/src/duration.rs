//! Durations on the command line (`--timeout 20m`, `--retry-delay 0.5`)
//! and in what etl-run prints (`1m 5s`).

use std::time::Duration;

/// Parses `90` or `0.5` (seconds), `500ms`, `30s`, `5m`, `2h`, `1d`, `1w`,
/// or a sum of them (`1h30m`, `1m 30s`). For clap `value_parser`.
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("not a duration: {s:?} (e.g. 30s, 20m, 1h30m, 2d; a bare number is seconds)");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = 0.0_f64;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = rest[num_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hours" => 3600.0,
            "d" | "days" => 86_400.0,
            "w" | "weeks" => 604_800.0,
            _ => return Err(bad()),
        };
        total += n * unit;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// A short human form: `850ms`, `12.3s`, `4m 05s`, `2h 10m`, `3d 4h`.
#[allow(clippy::cast_precision_loss)] // milliseconds below a minute
pub fn human_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        3_600_000..=86_399_999 => format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
        _ => format!("{}d {}h", ms / 86_400_000, ms / 3_600_000 % 24),
    }
}

/// [`human_ms`] of a duration.
pub fn human(d: Duration) -> String {
    human_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("0.1").unwrap(), Duration::from_millis(100));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("20m").unwrap(), Duration::from_secs(1200));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "x", "5 parsecs", "-3", "1h x", "m", "1e400"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_forms() {
        assert_eq!(human_ms(850), "850ms");
        assert_eq!(human_ms(12_345), "12.3s");
        assert_eq!(human_ms(245_000), "4m 05s");
        assert_eq!(human_ms(7_800_000), "2h 10m");
        assert_eq!(human_ms(273_600_000), "3d 4h");
    }
}
