//! Parser tests: accepted queries → trees, rejected ones → positions.

use super::*;
use crate::query::{SpanKind, TraceQuery};

fn attr(key: &str, value: &str) -> Expr {
    Expr::Pred(Pred::Text {
        field: TextField::Attr(key.into()),
        matches: TextMatch::Exact(value.into()),
        negated: false,
    })
}

fn text(field: TextField, value: &str) -> Expr {
    Expr::Pred(Pred::Text {
        field,
        matches: TextMatch::Exact(value.into()),
        negated: false,
    })
}

fn one(q: &str) -> Expr {
    match parse(q) {
        Ok(Some(e)) => e,
        other => panic!("{q}: {other:?}"),
    }
}

#[test]
fn the_issue_example() {
    let e = one(
        r#"service=checkout AND (http.status_code>=500 OR error=true) AND NOT operation="GET /health" AND duration>250ms"#,
    );
    assert_eq!(
        e,
        Expr::And(vec![
            text(TextField::Service, "checkout"),
            Expr::Or(vec![
                Expr::Pred(Pred::Number {
                    key: "http.status_code".into(),
                    op: CmpOp::Ge,
                    value: 500.0
                }),
                attr("error", "true"),
            ]),
            Expr::Not(Box::new(text(TextField::Operation, "GET /health"))),
            Expr::Pred(Pred::Duration {
                op: CmpOp::Gt,
                ns: 250_000_000
            }),
        ])
    );
}

#[test]
fn precedence_not_and_or() {
    // a OR b AND NOT c  ==  a OR (b AND (NOT c))
    let e = one("a=1 or b=2 and not c=3");
    assert_eq!(
        e,
        Expr::Or(vec![
            attr("a", "1"),
            Expr::And(vec![attr("b", "2"), Expr::Not(Box::new(attr("c", "3")))]),
        ])
    );
    assert_eq!(one("((a=1))"), attr("a", "1"));
    assert_eq!(
        one("NOT NOT a=1"),
        Expr::Not(Box::new(Expr::Not(Box::new(attr("a", "1")))))
    );
}

#[test]
fn empty_query_is_none() {
    assert_eq!(parse(""), Ok(None));
    assert_eq!(parse("  \t "), Ok(None));
}

#[test]
fn operators_and_values() {
    let cases: &[(&str, Pred)] = &[
        (
            "http.route = \"/api/*\"",
            Pred::Text {
                field: TextField::Attr("http.route".into()),
                matches: TextMatch::Pattern("/api/.*".into()),
                negated: false,
            },
        ),
        (
            "http.route = \"/a\\*b\"",
            Pred::Text {
                field: TextField::Attr("http.route".into()),
                matches: TextMatch::Exact("/a*b".into()),
                negated: false,
            },
        ),
        (
            "service != pay*",
            Pred::Text {
                field: TextField::Service,
                matches: TextMatch::Pattern("pay.*".into()),
                negated: true,
            },
        ),
        (
            "operation =~ \"GET .+\"",
            Pred::Text {
                field: TextField::Operation,
                matches: TextMatch::Pattern("GET .+".into()),
                negated: false,
            },
        ),
        (
            "db.system !~ \"post.*\"",
            Pred::Text {
                field: TextField::Attr("db.system".into()),
                matches: TextMatch::Pattern("post.*".into()),
                negated: true,
            },
        ),
        (
            "x.y<1.5",
            Pred::Number {
                key: "x.y".into(),
                op: CmpOp::Lt,
                value: 1.5,
            },
        ),
        (
            "retries <= -2",
            Pred::Number {
                key: "retries".into(),
                op: CmpOp::Le,
                value: -2.0,
            },
        ),
        (
            "duration <= 1m30s",
            Pred::Duration {
                op: CmpOp::Le,
                ns: 90_000_000_000,
            },
        ),
        (
            "duration != 0",
            Pred::Duration {
                op: CmpOp::Ne,
                ns: 0,
            },
        ),
        (
            "duration >= 1.5us",
            Pred::Duration {
                op: CmpOp::Ge,
                ns: 1_500,
            },
        ),
        (
            "kind = SERVER",
            Pred::Kind {
                kind: SpanKind::Server,
                negated: false,
            },
        ),
        (
            "span.kind != client",
            Pred::Kind {
                kind: SpanKind::Client,
                negated: true,
            },
        ),
        (
            "status = error",
            Pred::Status {
                status: SpanStatus::Error,
                negated: false,
            },
        ),
        (
            "trace_id = ABC",
            Pred::Text {
                field: TextField::TraceId,
                matches: TextMatch::Exact(format!("{:0>32}", "abc")),
                negated: false,
            },
        ),
        (
            "\"duration\" = long",
            Pred::Text {
                field: TextField::Attr("duration".into()),
                matches: TextMatch::Exact("long".into()),
                negated: false,
            },
        ),
        (
            "service.name == \"a b\"",
            Pred::Text {
                field: TextField::Service,
                matches: TextMatch::Exact("a b".into()),
                negated: false,
            },
        ),
        (
            "msg = \"say \\\"hi\\\"\\n\"",
            Pred::Text {
                field: TextField::Attr("msg".into()),
                matches: TextMatch::Exact("say \"hi\"\n".into()),
                negated: false,
            },
        ),
    ];
    for (q, want) in cases {
        assert_eq!(one(q), Expr::Pred(want.clone()), "{q}");
    }
}

#[test]
fn errors_carry_positions() {
    // (query, character position, part of the message)
    let cases: &[(&str, usize, &str)] = &[
        ("service=", 8, "expected a value"),
        ("service", 7, "expected an operator"),
        ("=x", 0, "expected a condition"),
        ("a=1 AND", 7, "expected a condition"),
        ("a=1 b=2", 4, "expected AND, OR"),
        ("(a=1", 4, "expected ')' to close the '(' at position 0"),
        ("a=1)", 3, "unbalanced ')'"),
        ("a=\"open", 2, "unterminated string"),
        ("a=\"x\\qy\"", 4, "unknown escape"),
        ("duration > fast", 11, "not a duration"),
        ("duration > 100", 11, "not a duration"),
        ("duration =~ \"1.*\"", 9, "not supported for duration"),
        ("http.status_code >= five", 20, "not a number"),
        ("x > nan", 4, "not a number"),
        ("service < b", 8, "not supported for service"),
        ("kind = sideways", 7, "not a span kind"),
        ("kind =~ \"s.*\"", 5, "not supported for kind"),
        ("status = broken", 9, "not a status"),
        ("op* = x", 0, "wildcard"),
        ("a =~ \"(unclosed\"", 5, "invalid regex"),
        ("a =~ \"^x$\"", 5, "anchors"),
        ("trace_id = xyz", 11, "not a trace id"),
        ("a = AND", 4, "keyword"),
        ("a ~ b", 2, "unexpected '~'"),
        ("é=1 AND (", 9, "expected a condition"),
    ];
    for (q, pos, msg) in cases {
        let err = parse(q).expect_err(q);
        assert_eq!(err.pos, *pos, "{q}: {err}");
        assert!(err.message.contains(msg), "{q}: {err}");
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let q = format!("{}a=1{}", "(".repeat(10_000), ")".repeat(10_000));
    let err = parse(&q).unwrap_err();
    assert!(err.message.contains("nested too deeply"), "{err}");
    let q = format!("{}a=1", "NOT ".repeat(10_000));
    assert!(parse(&q).is_err());
}

#[test]
fn durations() {
    for (s, ns) in [
        ("0", 0),
        ("10ns", 10),
        ("250ms", 250_000_000),
        ("1.5s", 1_500_000_000),
        ("2h", 7_200_000_000_000),
        ("100µs", 100_000),
        (".5ms", 500_000),
    ] {
        assert_eq!(parse_duration(s), Ok(ns), "{s}");
    }
    for bad in ["", "5", "ms", "1x", "1.s.", "99999999999999999999h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn display_parses_back() {
    for q in [
        r#"service=checkout AND (http.status_code>=500 OR error=true) AND NOT operation="GET /health" AND duration>250ms"#,
        r#"a = "x*y\*z" OR b !~ "q.+" OR kind != unspecified OR status = ok"#,
        r#"trace_id = 1 AND "we ird" != "a\"b" AND n < -3.25"#,
    ] {
        let e = one(q);
        let again = one(&e.to_string());
        assert_eq!(again, e, "{q} → {e}");
    }
}

#[test]
fn jaeger_query_translation() {
    let q = TraceQuery {
        service: Some("api".into()),
        operation: Some("GET /".into()),
        tags: vec![
            ("error".into(), "true".into()),
            ("service.name".into(), "api".into()),
        ],
        min_duration_ns: Some(5),
        max_duration_ns: None,
        ..Default::default()
    };
    assert_eq!(
        Expr::from_trace_query(&q),
        Some(Expr::And(vec![
            text(TextField::Service, "api"),
            text(TextField::Operation, "GET /"),
            attr("error", "true"),
            text(TextField::Service, "api"),
            Expr::Pred(Pred::Duration {
                op: CmpOp::Ge,
                ns: 5
            }),
        ]))
    );
    assert_eq!(Expr::from_trace_query(&TraceQuery::default()), None);
}

mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = super::parse(&s);
        }

        #[test]
        fn never_panics_near_grammar(s in "[ ()a-z.=!<>~*\"\\\\0-9]{0,40}|(NOT |AND |OR |service|duration|kind|status){0,8}") {
            if let Err(e) = super::parse(&s) {
                prop_assert!(e.pos <= s.chars().count());
            }
        }
    }
}
