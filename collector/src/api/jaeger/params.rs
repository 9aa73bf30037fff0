//! Jaeger request parameters → validated queries.
//!
//! Owns the search parameters of `GET /api/traces` (`service`, `operation`,
//! `tags` as a JSON object or logfmt, repeated `tag=key:value`,
//! `minDuration`/`maxDuration` as Go durations, `limit`, `start`/`end` in
//! Unix µs, repeated `traceID`) and trace-id parsing. Every error names the
//! parameter it is about.

use super::super::duration::parse_go_duration;
use super::super::error::Problem;
use super::super::params::Params;
use crate::query::{SpanKind, TraceId, TraceQuery};

/// Traces returned when the client sends no `limit` (or `limit=0`).
pub const DEFAULT_LIMIT: usize = 20;
/// Largest `limit` honoured; larger values are capped.
pub const MAX_LIMIT: usize = 1500;

/// A parsed `GET /api/traces` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    /// `traceID=…` given: fetch exactly these traces (Jaeger's behaviour).
    Ids(Vec<TraceId>),
    Query(TraceQuery),
}

/// Parse a trace id: 1–32 hex characters, left-padded with zeros to 32.
pub fn parse_trace_id(raw: &str) -> Result<TraceId, String> {
    if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "\"{raw}\" is not a trace id (1 to 32 hex characters)"
        ));
    }
    let padded = format!("{raw:0>32}");
    let mut id = [0u8; 16];
    hex::decode_to_slice(padded, &mut id)
        .map_err(|e| format!("\"{raw}\" is not a trace id: {e}"))?;
    Ok(id)
}

/// Parse `spanKind` of `/api/operations` (case-insensitive; empty = any).
pub fn parse_span_kind(raw: &str) -> Result<Option<SpanKind>, Problem> {
    match SpanKind::parse(&raw.to_ascii_lowercase()) {
        Some(SpanKind::Unspecified) if raw.is_empty() => Ok(None),
        Some(kind) => Ok(Some(kind)),
        None => Err(Problem::invalid_param(
            "spanKind",
            format!(
                "\"{raw}\" is not one of server, client, producer, consumer, internal, unspecified"
            ),
        )),
    }
}

/// Parse the parameters of `GET /api/traces`.
pub fn parse_search(params: &Params) -> Result<Search, Problem> {
    let ids = params
        .all("traceID")
        .map(|raw| parse_trace_id(raw).map_err(|e| Problem::invalid_param("traceID", e)))
        .collect::<Result<Vec<_>, _>>()?;
    if !ids.is_empty() {
        return Ok(Search::Ids(ids));
    }

    let mut tags = Vec::new();
    for raw in params.all("tags") {
        tags.extend(parse_tags(raw).map_err(|e| Problem::invalid_param("tags", e))?);
    }
    for raw in params.all("tag") {
        match raw.split_once(':') {
            Some((key, value)) if !key.is_empty() => tags.push((key.to_owned(), value.to_owned())),
            _ => {
                return Err(Problem::invalid_param(
                    "tag",
                    format!("\"{raw}\" is not key:value"),
                ))
            }
        }
    }

    let duration = |name: &str| -> Result<Option<u64>, Problem> {
        params
            .get(name)
            .map(|raw| parse_go_duration(raw).map_err(|e| Problem::invalid_param(name, e)))
            .transpose()
    };
    let min_duration_ns = duration("minDuration")?;
    let max_duration_ns = duration("maxDuration")?;
    if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns) {
        if max < min {
            return Err(Problem::invalid_param(
                "maxDuration",
                "must not be less than minDuration",
            ));
        }
    }

    let limit = match params.u64("limit")? {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
    };

    let micros_to_nanos = |name: &str| -> Result<Option<u64>, Problem> {
        params
            .u64(name)?
            .map(|us| {
                us.checked_mul(1_000)
                    .ok_or_else(|| Problem::invalid_param(name, format!("{us} µs is out of range")))
            })
            .transpose()
    };
    let start_unix_nano = micros_to_nanos("start")?;
    let end_unix_nano = micros_to_nanos("end")?;
    if let (Some(start), Some(end)) = (start_unix_nano, end_unix_nano) {
        if end < start {
            return Err(Problem::invalid_param("end", "must not be before start"));
        }
    }

    Ok(Search::Query(TraceQuery {
        service: params.get("service").map(str::to_owned),
        operation: params.get("operation").map(str::to_owned),
        tags,
        min_duration_ns,
        max_duration_ns,
        start_unix_nano,
        end_unix_nano,
        limit,
    }))
}

/// `tags`: a JSON object (`{"error":"true"}`; numbers and bools accepted as
/// their text) or logfmt (`error=true http.status_code=500 msg="a b"`).
pub fn parse_tags(raw: &str) -> Result<Vec<(String, String)>, String> {
    let trimmed = raw.trim();
    if trimmed.starts_with('{') {
        parse_json_tags(trimmed)
    } else {
        parse_logfmt(trimmed)
    }
}

fn parse_json_tags(raw: &str) -> Result<Vec<(String, String)>, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw).map_err(|e| format!("not a JSON object of strings: {e}"))?;
    map.into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                other => return Err(format!("value of \"{key}\" must be a string, got {other}")),
            };
            if key.is_empty() {
                return Err("empty tag key".into());
            }
            Ok((key, text))
        })
        .collect()
}

/// logfmt: `key=value`, `key="quoted \" value"`, a bare `key` means `true`
/// (as Grafana's logfmt parser reads it).
fn parse_logfmt(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            if c == '"' {
                return Err(format!("unexpected '\"' in key \"{key}\""));
            }
            key.push(c);
        }
        if key.is_empty() {
            return Err("empty key before '='".into());
        }
        if chars.next_if_eq(&'=').is_none() {
            out.push((key, "true".to_owned()));
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in the value of \"{key}\"")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('r') => value.push('\r'),
                        Some(c) => value.push(c),
                        None => {
                            return Err(format!("unterminated quote in the value of \"{key}\""))
                        }
                    },
                    Some(c) => value.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(format!(
                    "expected a space after the quoted value of \"{key}\""
                ));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '"' {
                    return Err(format!("unexpected '\"' in the value of \"{key}\""));
                }
                value.push(c);
            }
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn query(pairs: &[(&str, &str)]) -> Result<TraceQuery, Problem> {
        match parse_search(&Params::from_pairs(pairs))? {
            Search::Query(q) => Ok(q),
            Search::Ids(ids) => panic!("unexpected ids {ids:?}"),
        }
    }

    #[test]
    fn trace_ids() {
        let full = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(hex::encode(parse_trace_id(full).unwrap()), full);
        assert_eq!(
            hex::encode(parse_trace_id("8448EB211C80319C").unwrap()),
            "00000000000000008448eb211c80319c"
        );
        assert_eq!(
            hex::encode(parse_trace_id("1").unwrap()),
            "00000000000000000000000000000001"
        );
        for bad in [
            "",
            "xyz",
            "0af7651916cd43dd8448eb211c80319c0",
            "0x12",
            "12 34",
            "１２",
        ] {
            assert!(parse_trace_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_tags() {
        assert_eq!(
            parse_tags(r#"{"error":"true","http.status_code":"500"}"#).unwrap(),
            tags(&[("error", "true"), ("http.status_code", "500")])
        );
        assert_eq!(
            parse_tags(r#" {"n": 5, "b": false} "#).unwrap(),
            tags(&[("b", "false"), ("n", "5")])
        );
        for bad in [
            r#"{"a":null}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{}}"#,
            r#"{"a":"#,
            r#"{"":"x"}"#,
        ] {
            assert!(parse_tags(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logfmt_tags() {
        assert_eq!(
            parse_tags("error=true http.status_code=500").unwrap(),
            tags(&[("error", "true"), ("http.status_code", "500")])
        );
        assert_eq!(
            parse_tags(r#"  msg="a \"quoted\" value"  empty= flag url=http://x/y?a=b "#).unwrap(),
            tags(&[
                ("msg", "a \"quoted\" value"),
                ("empty", ""),
                ("flag", "true"),
                ("url", "http://x/y?a=b")
            ])
        );
        assert_eq!(parse_tags("").unwrap(), tags(&[]));
        for bad in ["=x", r#"a="open"#, r#"a="x"b"#, r#"a=x"y"#, r#"k"ey=1"#] {
            assert!(parse_tags(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_params() {
        let q = query(&[
            ("service", "api"),
            ("operation", "GET /users"),
            ("tags", r#"{"error":"true"}"#),
            ("tag", "http.method:GET"),
            ("tag", "url:http://x:8080/"),
            ("minDuration", "1.2s"),
            ("maxDuration", "1m30s"),
            ("limit", "50"),
            ("start", "1700000000000000"),
            ("end", "1700000060000000"),
            ("lookback", "1h"),
        ])
        .unwrap();
        assert_eq!(
            q,
            TraceQuery {
                service: Some("api".into()),
                operation: Some("GET /users".into()),
                tags: tags(&[
                    ("error", "true"),
                    ("http.method", "GET"),
                    ("url", "http://x:8080/")
                ]),
                min_duration_ns: Some(1_200_000_000),
                max_duration_ns: Some(90_000_000_000),
                start_unix_nano: Some(1_700_000_000_000_000_000),
                end_unix_nano: Some(1_700_000_060_000_000_000),
                limit: 50,
            }
        );
    }

    #[test]
    fn defaults_and_limit_cap() {
        let q = query(&[("service", ""), ("limit", "")]).unwrap();
        assert_eq!(
            q,
            TraceQuery {
                limit: DEFAULT_LIMIT,
                ..Default::default()
            }
        );
        assert_eq!(query(&[("limit", "0")]).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(query(&[("limit", "1500")]).unwrap().limit, 1500);
        assert_eq!(query(&[("limit", "99999999999")]).unwrap().limit, MAX_LIMIT);
        assert_eq!(
            query(&[("minDuration", "5ms"), ("maxDuration", "5ms")])
                .unwrap()
                .max_duration_ns,
            Some(5_000_000)
        );
    }

    #[test]
    fn bad_search_params_name_the_parameter() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("limit", "ten")], "'limit'"),
            (&[("limit", "-1")], "'limit'"),
            (&[("start", "yesterday")], "'start'"),
            (&[("end", "1.5")], "'end'"),
            (&[("start", "18446744073709551615")], "'start'"),
            (&[("start", "2000"), ("end", "1000")], "'end'"),
            (&[("minDuration", "fast")], "'minDuration'"),
            (&[("maxDuration", "100")], "'maxDuration'"),
            (
                &[("minDuration", "1s"), ("maxDuration", "100ms")],
                "'maxDuration'",
            ),
            (&[("tags", "{not json")], "'tags'"),
            (&[("tag", "no-colon")], "'tag'"),
            (&[("traceID", "zz")], "'traceID'"),
        ];
        for (pairs, name) in cases {
            let err = parse_search(&Params::from_pairs(pairs)).expect_err(name);
            assert_eq!(err.status(), 400);
            assert!(err.message.contains(name), "{pairs:?}: {}", err.message);
        }
    }

    #[test]
    fn trace_id_list() {
        let s = parse_search(&Params::from_pairs(&[
            ("traceID", "1"),
            ("traceID", "ab"),
            ("service", "x"),
        ]))
        .unwrap();
        let mut one = [0u8; 16];
        one[15] = 1;
        let mut ab = [0u8; 16];
        ab[15] = 0xab;
        assert_eq!(s, Search::Ids(vec![one, ab]));
    }

    #[test]
    fn span_kinds() {
        assert_eq!(parse_span_kind("").unwrap(), None);
        assert_eq!(parse_span_kind("SERVER").unwrap(), Some(SpanKind::Server));
        assert_eq!(
            parse_span_kind("unspecified").unwrap(),
            Some(SpanKind::Unspecified)
        );
        assert!(parse_span_kind("sideways")
            .unwrap_err()
            .message
            .contains("'spanKind'"));
    }
}
