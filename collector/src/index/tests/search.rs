//! The search language against a real index: a table of queries over a
//! known data set (expected traces, newest first), parse errors with their
//! positions, summaries, and paging that neither skips nor repeats traces
//! while new spans (also late spans of listed traces) arrive.

use std::collections::HashSet;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};

use super::*;
use crate::query::lang::parse;
use crate::query::{TraceSearch, TraceStore};

/// One span of the data set: trace n starts at t0 + n s (all its spans too),
/// so "newest first" is descending n.
struct Row {
    trace: u8,
    span: u16,
    parent: Option<u16>,
    service: &'static str,
    name: &'static str,
    kind: i32,
    status: i32,
    dur_ms: u64,
    attrs: Vec<KeyValue>,
    res: Vec<KeyValue>,
}

fn row(trace: u8, span: u16, service: &'static str, name: &'static str, kind: i32) -> Row {
    Row {
        trace,
        span,
        parent: None,
        service,
        name,
        kind,
        status: 0,
        dur_ms: 10,
        attrs: vec![],
        res: vec![],
    }
}

impl Row {
    fn child_of(mut self, parent: u16) -> Self {
        self.parent = Some(parent);
        self
    }
    fn dur(mut self, ms: u64) -> Self {
        self.dur_ms = ms;
        self
    }
    fn status(mut self, code: StatusCode) -> Self {
        self.status = code as i32;
        self
    }
    fn attr(mut self, k: &str, v: Value) -> Self {
        self.attrs.push(kv(k, v));
        self
    }
    fn res(mut self, k: &str, v: Value) -> Self {
        self.res.push(kv(k, v));
        self
    }
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;
const INTERNAL: i32 = 1;

fn int(i: i64) -> Value {
    Value::IntValue(i)
}

fn data() -> Vec<Row> {
    vec![
        row(1, 1, "checkout", "POST /checkout", SERVER)
            .dur(300)
            .status(StatusCode::Error)
            .attr("http.status_code", int(500)),
        row(1, 2, "payments", "charge", CLIENT)
            .child_of(1)
            .dur(100)
            .attr("peer.service", s("payments")),
        row(2, 1, "checkout", "GET /health", SERVER)
            .dur(1)
            .attr("http.status_code", int(200)),
        row(3, 1, "checkout", "POST /checkout", SERVER)
            .dur(400)
            .attr("http.status_code", int(200)),
        row(3, 2, "cart", "GET /cart", INTERNAL)
            .child_of(1)
            .attr("cart.items", int(3)),
        row(4, 1, "payments", "charge", SERVER)
            .dur(50)
            .status(StatusCode::Error)
            .attr("http.status_code", int(503))
            .res("deployment.environment", s("prod")),
        row(5, 1, "frontend", "GET /api/users", SERVER)
            .dur(20)
            .attr("http.route", s("/api/users"))
            .attr("http.status_code", int(404))
            .res("region", s("eu-west-1")),
        row(6, 1, "frontend", "GET /api/orders", SERVER)
            .dur(260)
            .attr("http.route", s("/api/orders"))
            .attr("http.status_code", int(200))
            .attr("ratio", Value::DoubleValue(0.75))
            .res("region", s("us-east-1")),
        row(7, 1, "db-service", "SELECT", CLIENT)
            .dur(5)
            .attr("db.system", s("postgresql")),
        row(8, 1, "db-service", "INSERT", CLIENT)
            .dur(15)
            .status(StatusCode::Ok)
            .attr("db.system", s("mysql")),
        row(9, 1, "worker", "process", CONSUMER)
            .dur(2000)
            .attr("messaging.system", s("kafka"))
            .attr("retries", int(-1)),
        row(10, 1, "worker", "publish", PRODUCER).dur(30),
        row(10, 2, "worker", "tick", 0).child_of(1).dur(2),
    ]
}

fn to_span(r: &Row) -> Span {
    let mut sp = span(r.trace, r.span, r.name, u64::from(r.trace), r.dur_ms);
    sp.parent_span_id = r.parent.map(sid).unwrap_or_default();
    sp.kind = r.kind;
    sp.attributes = r.attrs.clone();
    if r.status != 0 {
        sp.status = Some(Status {
            message: String::new(),
            code: r.status,
        });
    }
    sp
}

fn load(env: &mut Env, rows: &[Row], first_lsn: Lsn) {
    let inputs: Vec<IndexInput> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let req = traces(resource(r.service, r.res.clone()), vec![to_span(r)]);
            span_input(&req, first_lsn + i as Lsn)
        })
        .collect();
    env.index(&inputs);
}

fn search(
    env: &Env,
    q: &str,
    limit: usize,
    cursor: Option<crate::query::SearchCursor>,
) -> crate::query::TracePage {
    let filter = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    env.spans
        .search_traces(&TraceSearch {
            filter,
            limit,
            cursor,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// Trace numbers (last id byte) of a search, in answer order.
fn numbers(env: &Env, q: &str) -> Vec<u8> {
    search(env, q, 100, None)
        .traces
        .iter()
        .map(|t| t.trace_id[15])
        .collect()
}

#[test]
fn query_table_against_a_known_data_set() {
    let mut env = Env::new();
    load(&mut env, &data(), 1);
    let all: Vec<u8> = (1..=10).rev().collect();
    let hex4 = hex::encode(tid(4));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("", all.clone()),
        ("service=checkout", vec![3, 2, 1]),
        ("service=check*", vec![3, 2, 1]),
        ("service = \"*out\"", vec![3, 2, 1]),
        ("service=~\"(checkout|payments)\"", vec![4, 3, 2, 1]),
        ("service!=checkout", vec![10, 9, 8, 7, 6, 5, 4, 3, 1]),
        ("NOT service=checkout", vec![10, 9, 8, 7, 6, 5, 4, 3, 1]),
        ("operation=\"GET /health\"", vec![2]),
        ("service=checkout AND NOT operation=\"GET /health\"", vec![3, 1]),
        (
            "service=checkout AND (http.status_code>=500 OR error=true) AND NOT operation=\"GET /health\" AND duration>250ms",
            vec![1],
        ),
        ("http.status_code>=500", vec![4, 1]),
        ("http.status_code<300", vec![6, 3, 2]),
        ("http.status_code>=400 AND http.status_code<500", vec![5]),
        ("http.status_code=500", vec![1]),
        ("http.status_code!=200", vec![5, 4, 1]),
        ("NOT http.status_code=200", vec![10, 9, 8, 7, 5, 4, 3, 1]),
        ("error=true", vec![4, 1]),
        ("status=error", vec![4, 1]),
        ("status=ok", vec![8]),
        ("status!=unset", vec![8, 4, 1]),
        ("kind=client", vec![8, 7, 1]),
        ("kind=consumer OR kind=producer", vec![10, 9]),
        ("kind=unspecified", vec![10]),
        ("span.kind=server AND service=frontend", vec![6, 5]),
        ("duration>=2s", vec![9]),
        ("duration<5ms", vec![10, 2]),
        ("duration>=250ms AND duration<=300ms", vec![6, 1]),
        ("http.route=\"/api/*\"", vec![6, 5]),
        ("http.route=~\"/api/(users|admins)\"", vec![5]),
        ("http.route!~\"/api/u.*\"", vec![6]),
        ("region=eu*", vec![5]),
        ("deployment.environment=prod AND service=payments", vec![4]),
        ("db.system=~\"post.*\" OR db.system=mysql", vec![8, 7]),
        ("ratio>0.5", vec![6]),
        ("ratio>0.75", vec![]),
        ("retries<0", vec![9]),
        ("cart.items>=3 AND service=cart", vec![3]),
        ("trace_id=\"*05\"", vec![5]),
        (
            "(service=worker AND duration>1s) OR (service=frontend AND http.status_code=404)",
            vec![9, 5],
        ),
        (
            "NOT (service=checkout OR service=frontend)",
            vec![10, 9, 8, 7, 4, 3, 1],
        ),
        ("\"peer.service\"=payments", vec![1]),
        ("messaging.system=kafka AND NOT retries>=0", vec![9]),
        ("http.method=GET", vec![]),
        ("service.name=worker", vec![10, 9]),
        ("service=checkout AND service=payments", vec![]),
        ("http.status_code=*", vec![6, 5, 4, 3, 2, 1]),
    ];
    assert!(cases.len() >= 30);
    for (q, want) in &cases {
        assert_eq!(&numbers(&env, q), want, "query: {q}");
    }
    assert_eq!(numbers(&env, &format!("trace_id={hex4}")), vec![4]);
    assert_eq!(
        numbers(&env, &format!("trace_id={}", hex4.to_uppercase())),
        vec![4]
    );

    // Parse errors: position (character offset) and message.
    let errors: &[(&str, usize, &str)] = &[
        ("service=", 8, "expected a value"),
        ("service=checkout AND (error=true", 32, "expected ')'"),
        ("duration > soon", 11, "not a duration"),
        ("http.status_code >= high", 20, "not a number"),
        ("kind = upward", 7, "not a span kind"),
        ("a=1 OR OR b=2", 7, "expected a condition"),
    ];
    for (q, pos, msg) in errors {
        let e = parse(q).expect_err(q);
        assert_eq!((e.pos, e.message.contains(msg)), (*pos, true), "{q}: {e}");
    }
}

#[test]
fn summaries_describe_whole_traces() {
    let mut env = Env::new();
    load(&mut env, &data(), 1);
    let page = search(&env, "service=payments AND kind=client", 10, None);
    assert_eq!(page.traces.len(), 1);
    let t = &page.traces[0];
    assert_eq!(t.trace_id, tid(1));
    assert_eq!(t.root_service, "checkout");
    assert_eq!(t.root_operation, "POST /checkout");
    assert_eq!(t.start_unix_nano, ns(1));
    assert_eq!(t.duration_ns, 300_000_000);
    assert_eq!(t.span_count, 2);
    assert_eq!(t.error_count, 1);
    assert_eq!(t.services, ["checkout", "payments"]);
    assert_eq!(t.matched_unix_nano, ns(1));
    assert_eq!(page.next_cursor, None);

    // The Jaeger search runs on the same engine.
    let ids = env
        .spans
        .find_trace_ids(&crate::query::TraceQuery {
            tags: vec![("http.status_code".into(), "503".into())],
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids, vec![tid(4)]);
}

/// Paging with a small limit returns every trace exactly once, in order,
/// even when spans arrive between pages: new traces, and late spans of
/// traces not yet listed that would move them above the cursor.
#[test]
fn paging_is_stable_while_data_arrives() {
    let mut env = Env::new();
    // 60 traces, ids 1..=60, trace n at t0 + n s, each with one matching span.
    let mut lsn = 1;
    let first: Vec<IndexInput> = (1..=60u8)
        .map(|n| {
            let mut sp = span(n, 1, "op", u64::from(n), 5);
            sp.attributes = vec![kv("page", s("yes"))];
            lsn += 1;
            span_input(&traces(resource("svc", vec![]), vec![sp]), lsn)
        })
        .collect();
    env.index(&first);
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = search(&env, "page=yes", 7, cursor);
        seen.extend(page.traces.iter().map(|t| t.trace_id[15]));
        pages += 1;
        // Between pages: a new trace (newest) and a late matching span for
        // trace 5 (not listed yet) that starts after every other trace.
        lsn += 1;
        let mut fresh = span(100 + pages, 1, "op", 200, 5);
        fresh.attributes = vec![kv("page", s("yes"))];
        let mut late = span(5, 2, "late", 300 + u64::from(pages), 5);
        late.attributes = vec![kv("page", s("yes"))];
        env.index(&[span_input(
            &traces(resource("svc", vec![]), vec![fresh, late]),
            lsn,
        )]);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    let want: Vec<u8> = (1..=60).rev().collect();
    assert_eq!(seen, want);
    let unique: HashSet<u8> = seen.iter().copied().collect();
    assert_eq!(unique.len(), 60);
    // A fresh first page sees the new data.
    let now = numbers(&env, "page=yes");
    assert_eq!(now[0], 5, "trace 5 now has the newest matching span");
}

#[test]
fn ties_on_the_key_are_paged_by_trace_id() {
    let mut env = Env::new();
    // 25 traces whose matching spans all start at the same instant.
    let inputs: Vec<IndexInput> = (1..=25u8)
        .map(|n| {
            span_input(
                &traces(resource("svc", vec![]), vec![span(n, 1, "same", 7, 1)]),
                u64::from(n),
            )
        })
        .collect();
    env.index(&inputs);
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = search(&env, "operation=same", 4, cursor);
        seen.extend(page.traces.iter().map(|t| t.trace_id[15]));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<u8> = (1..=25).rev().collect();
    assert_eq!(seen, want);
}

#[test]
fn window_bounds_the_matching_span() {
    let mut env = Env::new();
    load(&mut env, &data(), 1);
    let page = env
        .spans
        .search_traces(&TraceSearch {
            filter: None,
            start_unix_nano: Some(ns(3)),
            end_unix_nano: Some(ns(5)),
            limit: 10,
            cursor: None,
        })
        .unwrap();
    let got: Vec<u8> = page.traces.iter().map(|t| t.trace_id[15]).collect();
    assert_eq!(got, vec![5, 4, 3]);
}
