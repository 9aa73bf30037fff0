//! Go duration strings (`time.ParseDuration` syntax), as Jaeger clients send
//! them in `minDuration`/`maxDuration`: `10ns`, `500us`, `500µs`, `100ms`,
//! `1.2s`, `1m30s`, `2h`, and a bare `0`.
//!
//! Owns only the parser. Arithmetic is exact (no floats), negative durations
//! are refused (a search bound below zero means nothing), and values above
//! Go's limit (`i64::MAX` ns, ~292 years) are an overflow error.

/// Largest duration Go can represent, in nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parse a Go duration string into nanoseconds.
pub fn parse_go_duration(input: &str) -> Result<u64, String> {
    let quoted = || format!("\"{input}\"");
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(format!("invalid duration {}", quoted()));
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        // Fraction part.
        let mut frac_digits = "";
        let has_dot = s.starts_with('.');
        if has_dot {
            let after = &s[1..];
            let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            frac_digits = &after[..frac_len];
            s = &after[frac_len..];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(format!("invalid duration {}", quoted()));
        }
        // Unit: everything up to the next digit or dot.
        let unit_len = s
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        if unit.is_empty() {
            return Err(format!("missing unit in duration {}", quoted()));
        }
        let unit_nanos = unit_nanos(unit)
            .ok_or_else(|| format!("unknown unit \"{unit}\" in duration {}", quoted()))?;

        let overflow = || format!("duration {} is too large", quoted());
        let int_value: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse::<u128>().map_err(|_| overflow())?
        };
        let mut component = int_value.checked_mul(unit_nanos).ok_or_else(overflow)?;
        if !frac_digits.is_empty() {
            // Digits past the 18th cannot change a result in nanoseconds of
            // units up to an hour by more than rounding; drop them like Go does.
            let kept = &frac_digits[..frac_digits.len().min(18)];
            let numerator: u128 = kept.parse().map_err(|_| overflow())?;
            let scale = 10u128.pow(kept.len() as u32);
            component = component
                .checked_add(numerator * unit_nanos / scale)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(component).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
    }
    if negative && total != 0 {
        return Err(format!("negative duration {} is not allowed", quoted()));
    }
    u64::try_from(total).map_err(|_| format!("duration {} is too large", quoted()))
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // ASCII `us`, MICRO SIGN (U+00B5) and GREEK SMALL LETTER MU (U+03BC), as in Go.
        "us" | "\u{00b5}s" | "\u{03bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn go_duration_table() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("10ns", 10),
            ("500us", 500_000),
            ("500\u{00b5}s", 500_000),
            ("500\u{03bc}s", 500_000),
            ("100ms", 100_000_000),
            ("1.2s", 1_200_000_000),
            ("1.5h", 5_400 * S),
            (".5s", 500_000_000),
            ("5.s", 5 * S),
            ("1m30s", 90 * S),
            ("2h", 7_200 * S),
            ("1h2m3s4ms5us6ns", 3_723 * S + 4_000_000 + 5_000 + 6),
            ("0.000000001s", 1),
            ("0.0000000019s", 1),
            ("1.000000000000000000001s", S),
            ("+3s", 3 * S),
            ("0s", 0),
            ("9223372036854775807ns", i64::MAX as u64),
            ("2562047h", 2_562_047 * 3_600 * S),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_go_duration(input), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn go_duration_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "invalid duration"),
            ("-", "invalid duration"),
            (".", "invalid duration"),
            (".s", "invalid duration"),
            ("1", "missing unit"),
            ("1.5", "missing unit"),
            ("10", "missing unit"),
            ("1s2", "missing unit"),
            ("1x", "unknown unit \"x\""),
            ("1 s", "unknown unit \" s\""),
            ("1S", "unknown unit \"S\""),
            ("1sec", "unknown unit \"sec\""),
            ("s", "invalid duration"),
            ("-1s", "negative duration"),
            ("9223372036854775808ns", "too large"),
            ("2562048h", "too large"),
            ("99999999999999999999999999999999999999999h", "too large"),
            (" 1s", "invalid duration"),
        ];
        for &(input, want) in cases {
            let err = parse_go_duration(input).expect_err(input);
            assert!(err.contains(want), "input {input:?}: {err}");
        }
    }
}
