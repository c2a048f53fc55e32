//! Human durations on the command line (`10m`, `90s`, `2h`, `1h30m`) and back.

use std::fmt;
use std::time::Duration;

/// Why a duration given on the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing was given.
    Empty,
    /// A number without a unit where a unit was expected, or an unknown unit.
    BadUnit(String),
    /// Something that is not a number where a number was expected.
    BadNumber(String),
    /// The value does not fit in 64-bit seconds.
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => write!(f, "empty duration; use e.g. 90s, 10m, 2h or 1d"),
            DurationError::BadUnit(u) => write!(
                f,
                "unknown unit {u:?}; use s (seconds), m (minutes), h (hours) or d (days), e.g. 10m"
            ),
            DurationError::BadNumber(n) => {
                write!(f, "{n:?} is not a number; use e.g. 90s, 10m, 2h or 1d")
            }
            DurationError::Overflow => write!(f, "duration is too large"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses `90s`, `10m`, `2h`, `1d`, compounds such as `1h30m`, or a bare number of seconds
/// (`600`). Whitespace around the value is ignored; units are case-insensitive.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| DurationError::Overflow)?;
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(DurationError::BadNumber(rest.to_string()));
        }
        let (num, after) = rest.split_at(digits);
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        let factor: u64 = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hr" | "hrs" => 3_600,
            "d" | "day" | "days" => 86_400,
            "" if !after.is_empty() => return Err(DurationError::BadNumber(after.to_string())),
            other => return Err(DurationError::BadUnit(other.to_string())),
        };
        let n: u64 = num.parse().map_err(|_| DurationError::Overflow)?;
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or(DurationError::Overflow)?;
        rest = after;
    }
    Ok(Duration::from_secs(total))
}

/// Formats a number of seconds for people: `45s`, `9m 30s`, `2h 5m`, `3d 4h`; negative values
/// get a leading `-`. Shows at most the two largest units.
pub fn format_seconds(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60, s % 60);
    let body = if d > 0 {
        if h > 0 {
            format!("{d}d {h}h")
        } else {
            format!("{d}d")
        }
    } else if h > 0 {
        if m > 0 {
            format!("{h}h {m}m")
        } else {
            format!("{h}h")
        }
    } else if m > 0 {
        if sec > 0 {
            format!("{m}m {sec}s")
        } else {
            format!("{m}m")
        }
    } else {
        format!("{sec}s")
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
        assert_eq!(secs(" 2H "), 7_200);
        assert_eq!(secs("1m30s"), 90);
        assert_eq!(secs("5min"), 300);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("10x"),
            Err(DurationError::BadUnit("x".into()))
        );
        assert_eq!(
            parse_duration("m"),
            Err(DurationError::BadNumber("m".into()))
        );
        assert_eq!(
            parse_duration("-5m"),
            Err(DurationError::BadNumber("-5m".into()))
        );
        assert_eq!(
            parse_duration("1.5h"),
            Err(DurationError::BadNumber(".5h".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn error_messages_say_what_to_type() {
        let msg = parse_duration("10x").unwrap_err().to_string();
        assert!(msg.contains("10m"), "{msg}");
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
