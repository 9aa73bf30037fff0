//! Time parameters of the native API: RFC 3339 timestamps
//! (`2026-11-23T10:00:00Z`, `2026-11-23T10:00:00.123456789+02:00`) or Unix
//! nanoseconds as an integer, both turned into Unix nanoseconds.
//!
//! Owns a small, dependency-free RFC 3339 parser (with numeric offsets, which
//! `humantime` refuses) and nothing else.

/// Parse an RFC 3339 timestamp or a non-negative integer of Unix nanoseconds.
pub fn parse_time_ns(input: &str) -> Result<u64, String> {
    if !input.is_empty() && input.bytes().all(|b| b.is_ascii_digit()) {
        return input
            .parse::<u64>()
            .map_err(|_| format!("{input} is out of range for Unix nanoseconds"));
    }
    parse_rfc3339(input).map_err(|why| {
        format!("expected RFC 3339 (e.g. 2026-01-02T15:04:05Z) or Unix nanoseconds, got \"{input}\": {why}")
    })
}

/// Parse `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)` into Unix ns.
pub fn parse_rfc3339(input: &str) -> Result<u64, String> {
    let b = input.as_bytes();
    if b.len() < 20 {
        return Err("too short".into());
    }
    let num = |range: std::ops::Range<usize>, what: &str| -> Result<i64, String> {
        let digits = &b[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(format!("bad {what}"));
        }
        Ok(digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let punct = |i: usize, allowed: &[u8], what: &str| -> Result<(), String> {
        if allowed.contains(&b[i]) {
            Ok(())
        } else {
            Err(format!("expected {what} at position {}", i + 1))
        }
    };
    let year = num(0..4, "year")?;
    punct(4, b"-", "'-'")?;
    let month = num(5..7, "month")?;
    punct(7, b"-", "'-'")?;
    let day = num(8..10, "day")?;
    punct(10, b"Tt ", "'T'")?;
    let hour = num(11..13, "hour")?;
    punct(13, b":", "':'")?;
    let minute = num(14..16, "minute")?;
    punct(16, b":", "':'")?;
    let second = num(17..19, "second")?;

    if !(1..=12).contains(&month) {
        return Err("month out of range".into());
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range".into());
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range".into());
    }

    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err("empty fraction of a second".into());
        }
        // Keep nanosecond precision; further digits are truncated.
        let digits = &b[start..i.min(start + 9)];
        let value = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        nanos = value * 10i64.pow(9 - digits.len() as u32);
    }

    let offset_seconds = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3, "offset hour")?;
            punct(i + 3, b":", "':' in the offset")?;
            let om = num(i + 4..i + 6, "offset minute")?;
            if oh > 23 || om > 59 {
                return Err("offset out of range".into());
            }
            let s = oh * 3600 + om * 60;
            if sign == b'+' {
                s
            } else {
                -s
            }
        }
        _ => return Err("expected 'Z' or a ±HH:MM offset at the end".into()),
    };

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    if seconds < 0 {
        return Err("before 1970-01-01T00:00:00Z".into());
    }
    (seconds as u64)
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(nanos as u64))
        .ok_or_else(|| "out of range for Unix nanoseconds".into())
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_table() {
        let cases: &[(&str, u64)] = &[
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:01Z", 1_000_000_000),
            ("2026-11-23T10:00:00Z", 1_795_428_000_000_000_000),
            ("2026-11-23t10:00:00z", 1_795_428_000_000_000_000),
            ("2026-11-23 10:00:00Z", 1_795_428_000_000_000_000),
            ("2026-11-23T12:00:00+02:00", 1_795_428_000_000_000_000),
            ("2026-11-23T05:30:00-04:30", 1_795_428_000_000_000_000),
            ("2026-11-23T10:00:00.5Z", 1_795_428_000_500_000_000),
            ("2026-11-23T10:00:00.123456789Z", 1_795_428_000_123_456_789),
            (
                "2026-11-23T10:00:00.1234567891234Z",
                1_795_428_000_123_456_789,
            ),
            ("2000-02-29T00:00:00Z", 951_782_400_000_000_000),
            ("2024-12-31T23:59:59Z", 1_735_689_599_000_000_000),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_time_ns(input), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn unix_nanoseconds() {
        assert_eq!(parse_time_ns("0"), Ok(0));
        assert_eq!(
            parse_time_ns("1795428000000000000"),
            Ok(1_795_428_000_000_000_000)
        );
        assert!(parse_time_ns("99999999999999999999")
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn bad_timestamps() {
        for input in [
            "",
            "-5",
            "1.5",
            "yesterday",
            "2026-11-23",
            "2026-11-23T10:00:00",
            "2026-11-23T10:00Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:60:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00+0200",
            "2026-11-23T10:00:00+25:00",
            "2026-11-23T10:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "２０２６-11-23T10:00:00Z",
        ] {
            assert!(
                parse_time_ns(input).is_err(),
                "{input:?} should be rejected"
            );
        }
    }
}
