//! Running a log pipeline over one entry: line filters, the `json`,
//! `logfmt` and `regexp` parsers, label filters, `drop` and `keep`.
//!
//! Errors follow Loki: a line a parser cannot read keeps flowing with
//! `__error__` set (`JSONParserErr`, `LogfmtParserErr`), a numeric label
//! filter on a non-number sets `__error__=LabelFilterErr` and keeps the line.

use super::ast::{LabelPred, LineOp, Stage};
use super::labels::{sanitize, LabelKind, LabelSet};

pub const ERROR_LABEL: &str = "__error__";

/// Apply `stages`; `false` when the entry is filtered out.
pub fn run(stages: &[Stage], line: &str, labels: &mut LabelSet) -> bool {
    for stage in stages {
        match stage {
            Stage::Line {
                op,
                values,
                regexes,
            } => {
                let keep = match op {
                    LineOp::Contains => values.iter().any(|v| line.contains(v.as_str())),
                    LineOp::NotContains => !values.iter().any(|v| line.contains(v.as_str())),
                    LineOp::Match => regexes.iter().any(|r| r.is_match(line)),
                    LineOp::NotMatch => !regexes.iter().any(|r| r.is_match(line)),
                };
                if !keep {
                    return false;
                }
            }
            Stage::Json => json(line, labels),
            Stage::Logfmt => logfmt(line, labels),
            Stage::Regexp(re) => {
                if let Some(caps) = re.captures(line) {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            labels.insert_parsed(sanitize(name), m.as_str().to_string());
                        }
                    }
                }
            }
            Stage::Labels(pred) => {
                if !eval_pred(pred, labels) {
                    return false;
                }
            }
            Stage::Drop(names) => {
                for n in names {
                    labels.remove(n);
                }
            }
            Stage::Keep(names) => labels.retain(|k| names.iter().any(|n| n == k)),
        }
    }
    true
}

fn eval_pred(pred: &LabelPred, labels: &mut LabelSet) -> bool {
    match pred {
        LabelPred::And(a, b) => eval_pred(a, labels) && eval_pred(b, labels),
        LabelPred::Or(a, b) => eval_pred(a, labels) || eval_pred(b, labels),
        LabelPred::Str(m) => m.matches(labels.get(&m.name)),
        LabelPred::Num {
            name,
            op,
            value,
            duration,
        } => {
            let Some(raw) = labels.get(name) else {
                return false;
            };
            let parsed = if *duration {
                super::lexer::parse_duration(raw.trim())
                    .ok()
                    .map(|ns| ns as f64 / 1e9)
            } else {
                raw.trim().parse::<f64>().ok()
            };
            match parsed {
                Some(v) => op.apply(v, *value),
                None => {
                    labels.set(ERROR_LABEL, "LabelFilterErr", LabelKind::Parsed);
                    true
                }
            }
        }
    }
}

/// Flatten a JSON object into labels: nested keys joined with `_`, arrays skipped.
fn json(line: &str, labels: &mut LabelSet) {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(map)) => {
            let mut prefix = String::new();
            flatten(&map, &mut prefix, labels);
        }
        _ => labels.set(ERROR_LABEL, "JSONParserErr", LabelKind::Parsed),
    }
}

fn flatten(
    map: &serde_json::Map<String, serde_json::Value>,
    prefix: &mut String,
    labels: &mut LabelSet,
) {
    use serde_json::Value as J;
    for (k, v) in map {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('_');
        }
        prefix.push_str(&sanitize(k));
        match v {
            J::Object(inner) => flatten(inner, prefix, labels),
            J::Array(_) => {}
            J::String(s) => labels.insert_parsed(prefix.clone(), s.clone()),
            J::Null => labels.insert_parsed(prefix.clone(), String::new()),
            other => labels.insert_parsed(prefix.clone(), other.to_string()),
        }
        prefix.truncate(len);
    }
}

/// `key=value key="quoted value" flag` pairs.
fn logfmt(line: &str, labels: &mut LabelSet) {
    let mut chars = line.char_indices().peekable();
    let b = line.as_bytes();
    let mut ok = true;
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        // key
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            if c == '"' {
                ok = false;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let key = &line[start..end];
        let mut value = String::new();
        if let Some(&(_, '=')) = chars.peek() {
            chars.next();
            if let Some(&(_, '"')) = chars.peek() {
                chars.next();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                value.push(match e {
                                    'n' => '\n',
                                    't' => '\t',
                                    other => other,
                                });
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                ok &= closed;
            } else {
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push_str(&line[i..i + c.len_utf8()]);
                    chars.next();
                }
            }
        }
        if key.is_empty() || b.is_empty() {
            ok = false;
            continue;
        }
        labels.insert_parsed(sanitize(key), value);
    }
    if !ok {
        labels.set(ERROR_LABEL, "LogfmtParserErr", LabelKind::Parsed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::super::Expr;
    use super::*;

    fn stages(q: &str) -> Vec<Stage> {
        match parse(q) {
            Ok(Expr::Log(l)) => l.stages,
            other => panic!("{other:?}"),
        }
    }

    fn base() -> LabelSet {
        let mut l = LabelSet::default();
        l.insert("service_name".into(), "api".into(), LabelKind::Stream);
        l
    }

    #[test]
    fn line_filters() {
        let s = stages(r#"{a="b"} |= "GET" != "health" |~ "status=5\\d\\d""#);
        let mut l = base();
        assert!(run(&s, "GET /x status=503", &mut l));
        assert!(!run(&s, "GET /health status=503", &mut l));
        assert!(!run(&s, "GET /x status=200", &mut l));
        let or = stages(r#"{a="b"} |= "x" or "y""#);
        assert!(run(&or, "y", &mut l));
    }

    #[test]
    fn json_flattens_and_filters() {
        let s = stages(r#"{a="b"} | json | status >= 500 and req_method="GET""#);
        let mut l = base();
        assert!(run(
            &s,
            r#"{"status":503,"req":{"method":"GET"},"list":[1]}"#,
            &mut l
        ));
        assert_eq!(l.get("status"), Some("503"));
        assert_eq!(l.get("req_method"), Some("GET"));
        let mut l = base();
        assert!(!run(&s, r#"{"status":200,"req":{"method":"GET"}}"#, &mut l));
        let mut l = base();
        assert!(!run(
            &stages(r#"{a="b"} | json | __error__="""#),
            "not json",
            &mut l
        ));
        let mut l = base();
        assert!(run(&stages(r#"{a="b"} | json"#), "not json", &mut l));
        assert_eq!(l.get(ERROR_LABEL), Some("JSONParserErr"));
    }

    #[test]
    fn logfmt_and_collisions() {
        let mut l = base();
        let s = stages(r#"{a="b"} | logfmt | duration > 1s"#);
        assert!(run(
            &s,
            r#"level=info msg="hello world" service_name=x duration=1.5s flag"#,
            &mut l
        ));
        assert_eq!(l.get("msg"), Some("hello world"));
        assert_eq!(l.get("service_name"), Some("api"));
        assert_eq!(l.get("service_name_extracted"), Some("x"));
        assert!(!run(&s, "duration=10ms", &mut base()));
        let mut l = base();
        assert!(run(&s, "duration=abc", &mut l));
        assert_eq!(l.get(ERROR_LABEL), Some("LabelFilterErr"));
    }

    #[test]
    fn regexp_drop_keep() {
        let mut l = base();
        let s = stages(r#"{a="b"} | regexp "took (?P<ms>\\d+)ms" | keep ms"#);
        assert!(run(&s, "request took 42ms", &mut l));
        assert_eq!(l.all(), vec![("ms".to_string(), "42".to_string())]);
    }
}
