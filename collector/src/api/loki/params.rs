//! Loki's request parameters: times as Unix seconds (≤ 10 digits), Unix
//! nanoseconds, float seconds or RFC 3339; `step` as float seconds or a
//! duration; `limit` (default 100, at most 5000); `direction`.

use super::super::error::Problem;
use super::super::params::Params;
use super::super::timestamp::parse_rfc3339;
use crate::query::logql::lexer::parse_duration;
use crate::query::Direction;

pub const DEFAULT_LIMIT: usize = 100;
/// Loki's `max_entries_limit_per_query` default.
pub const MAX_LIMIT: usize = 5000;
/// Loki's most points per series.
pub const MAX_POINTS: u64 = 11_000;
/// The window when `start`/`since` is not given.
pub const DEFAULT_LOOKBACK_NS: u64 = 3600 * 1_000_000_000;

/// Parse one Loki time value into Unix ns.
pub fn parse_time(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    if raw.contains('.') {
        if let Ok(secs) = raw.parse::<f64>() {
            if secs.is_finite() && (0.0..1e13).contains(&secs) {
                return Ok((secs * 1e9).round() as u64);
            }
            return Err(format!("{raw} is out of range"));
        }
    }
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let v: u64 = raw.parse().map_err(|_| format!("{raw} is out of range"))?;
        return if raw.len() <= 10 {
            v.checked_mul(1_000_000_000)
                .ok_or_else(|| format!("{raw} is out of range"))
        } else {
            Ok(v)
        };
    }
    parse_rfc3339(raw).map_err(|why| {
        format!("expected Unix seconds or nanoseconds, or RFC 3339, got {raw:?}: {why}")
    })
}

pub fn time_param(p: &Params, name: &str) -> Result<Option<u64>, Problem> {
    p.get(name)
        .map(|raw| parse_time(raw).map_err(|e| Problem::invalid_param(name, e)))
        .transpose()
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `start`/`end` (or `since`), defaulting to the last hour; `end` ≥ `start`.
pub fn window(p: &Params) -> Result<(u64, u64), Problem> {
    let end = time_param(p, "end")?.unwrap_or_else(now_ns);
    let start = match time_param(p, "start")? {
        Some(s) => s,
        None => match p.get("since") {
            Some(raw) => end.saturating_sub(
                parse_duration(raw).map_err(|e| Problem::invalid_param("since", e))?,
            ),
            None => end.saturating_sub(DEFAULT_LOOKBACK_NS),
        },
    };
    if end < start {
        return Err(Problem::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

pub fn limit(p: &Params) -> Result<usize, Problem> {
    match p.u64("limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(l) if l as usize > MAX_LIMIT => Err(Problem::invalid_param(
            "limit",
            format!("max entries limit per query exceeded, limit > max_entries_limit ({l} > {MAX_LIMIT})"),
        )),
        Some(l) => Ok(l as usize),
    }
}

pub fn direction(p: &Params) -> Result<Direction, Problem> {
    match p.get("direction").map(str::to_ascii_lowercase).as_deref() {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(Problem::invalid_param(
            "direction",
            format!("expected backward or forward, got {other:?}"),
        )),
    }
}

/// `step` in ns: float seconds or a duration; default like Loki
/// (`(end-start)/250`, at least 1 s); at most 11 000 points.
pub fn step(p: &Params, start: u64, end: u64) -> Result<u64, Problem> {
    let step = match p.get("step").or_else(|| p.get("interval_step")) {
        Some(raw) => {
            let raw = raw.trim();
            match raw.parse::<f64>() {
                Ok(secs) if secs.is_finite() && secs > 0.0 => (secs * 1e9).round() as u64,
                Ok(_) => {
                    return Err(Problem::invalid_param(
                        "step",
                        "zero or negative query resolution step widths are not accepted. Try a positive integer",
                    ))
                }
                Err(_) => parse_duration(raw).map_err(|e| Problem::invalid_param("step", e))?,
            }
        }
        None => {
            let secs = ((end - start) / 250).div_ceil(1_000_000_000).max(1);
            secs * 1_000_000_000
        }
    };
    if step == 0 {
        return Err(Problem::invalid_param("step", "must be positive"));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(Problem::invalid_param(
            "step",
            "exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of the step parameter",
        ));
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_time_formats() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(
            parse_time("1700000000123456789").unwrap(),
            1_700_000_000_123_456_789
        );
        assert_eq!(
            parse_time("1700000000.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000_000_000
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn step_rules() {
        let p = Params::from_pairs(&[("step", "15")]);
        assert_eq!(step(&p, 0, 3_600_000_000_000).unwrap(), 15_000_000_000);
        let p = Params::from_pairs(&[("step", "1m")]);
        assert_eq!(step(&p, 0, 3_600_000_000_000).unwrap(), 60_000_000_000);
        let p = Params::from_pairs(&[("step", "0.001")]);
        assert!(step(&p, 0, 3_600_000_000_000).is_err(), "too many points");
        let p = Params::from_pairs(&[]);
        assert_eq!(step(&p, 0, 3_600_000_000_000).unwrap(), 15_000_000_000);
    }
}
