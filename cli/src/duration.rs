//! Human durations on the command line (`10m`, `90s`, `2h`, `1h30m`, or bare seconds) and back.
//! Parsing is humantime's; this module adds bare seconds and case-insensitive units.

use std::time::Duration;

/// Why a duration given on the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration; use e.g. 90s, 10m, 2h or 1d")]
    Empty,
    /// Not a number, an unknown unit, or too large.
    #[error("{input:?} is not a duration ({reason}); use e.g. 90s, 10m, 2h, 1d or 1h30m")]
    Invalid {
        /// What was given.
        input: String,
        /// humantime's complaint.
        reason: String,
    },
}

/// Parses `90s`, `10m`, `2h`, `1d`, compounds such as `1h30m` or `1h 30m`, or a bare number of
/// seconds (`600`). Whitespace around the value is ignored; units are case-insensitive (`m`
/// is always minutes).
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = |reason: String| DurationError::Invalid {
        input: s.to_string(),
        reason,
    };
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| invalid("too large".into()))?;
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(&s.to_ascii_lowercase()).map_err(|e| invalid(e.to_string()))
}

/// Formats a number of seconds for people: `45s`, `9m 30s`, `2h 5m`, `3d 4h`; negative values
/// get a leading `-`. Shows at most the two largest units.
pub fn format_seconds(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60, s % 60);
    let (big, small) = match (d, h, m) {
        (0, 0, 0) => ((sec, "s"), (0, "")),
        (0, 0, _) => ((m, "m"), (sec, "s")),
        (0, _, _) => ((h, "h"), (m, "m")),
        _ => ((d, "d"), (h, "h")),
    };
    let body = if small.0 > 0 {
        format!("{}{} {}{}", big.0, big.1, small.0, small.1)
    } else {
        format!("{}{}", big.0, big.1)
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s).unwrap().as_secs()
    }

    #[test]
    fn parses_single_units() {
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("2h"), 7_200);
        assert_eq!(secs("1d"), 86_400);
        assert_eq!(secs("0s"), 0);
    }

    #[test]
    fn parses_bare_seconds_compounds_and_case() {
        assert_eq!(secs("600"), 600);
        assert_eq!(secs("1h30m"), 5_400);
        assert_eq!(secs("1h 30m"), 5_400);
        assert_eq!(secs(" 2H "), 7_200);
        assert_eq!(secs("1M"), 60, "m is minutes whatever its case");
        assert_eq!(secs("1m30s"), 90);
        assert_eq!(secs("5min"), 300);
        assert_eq!(secs("1.5h"), 5_400);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
        for bad in [
            "10x",
            "m",
            "-5m",
            "1.5.5h",
            "99999999999999999999d",
            "99999999999999999999",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_messages_say_what_to_type() {
        let msg = parse_duration("10x").unwrap_err().to_string();
        assert!(msg.contains("\"10x\"") && msg.contains("10m"), "{msg}");
    }

    #[test]
    fn formats_seconds_for_people() {
        assert_eq!(format_seconds(0), "0s");
        assert_eq!(format_seconds(45), "45s");
        assert_eq!(format_seconds(570), "9m 30s");
        assert_eq!(format_seconds(600), "10m");
        assert_eq!(format_seconds(7_500), "2h 5m");
        assert_eq!(format_seconds(7_200), "2h");
        assert_eq!(format_seconds(273_600), "3d 4h");
        assert_eq!(format_seconds(-90), "-1m 30s");
    }
}
