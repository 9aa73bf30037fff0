use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Status};

use super::*;
use crate::query::{SpanKind, SpanRecord, TraceQuery, TraceStore};

fn find(env: &Env, q: TraceQuery) -> Vec<[u8; 16]> {
    env.spans.find_trace_ids(&q).unwrap()
}

fn q() -> TraceQuery {
    TraceQuery {
        limit: 100,
        ..Default::default()
    }
}

#[test]
fn span_round_trips_losslessly() {
    let mut env = Env::new();
    let mut res = resource("checkout", vec![kv("host.name", s("h1"))]);
    res.dropped_attributes_count = 3;
    let mut req = traces(res, vec![rich_span(1, 1, 10), span(1, 2, "child", 11, 1)]);
    req.resource_spans[0].schema_url = "https://res".into();
    req.resource_spans[0].scope_spans[0].schema_url = "https://scope".into();
    env.index(&[span_input(&req, 10)]);

    let got = env.spans.trace(&tid(1)).unwrap();
    let rs = &req.resource_spans[0];
    let want: Vec<SpanRecord> = rs.scope_spans[0]
        .spans
        .iter()
        .map(|sp| SpanRecord {
            resource: rs.resource.clone().unwrap(),
            scope: rs.scope_spans[0].scope.clone(),
            span: sp.clone(),
        })
        .collect();
    assert_eq!(got, want);
    assert!(env.spans.trace(&tid(2)).unwrap().is_empty());
}

#[test]
fn trace_spans_found_across_partitions_and_after_reopen() {
    let mut env = Env::new();
    env.index(&[span_input(
        &traces(resource("a", vec![]), vec![span(1, 1, "root", 0, 100)]),
        1,
    )]);
    // A late span arrives an hour later (new partition).
    env.clock.advance(HOUR);
    env.index(&[span_input(
        &traces(resource("b", vec![]), vec![span(1, 2, "late", 1, 5)]),
        2,
    )]);
    assert!(env.dir.path().join("spans/2024050110").is_dir());
    assert!(env.dir.path().join("spans/2024050111").is_dir());
    assert_eq!(env.spans.trace(&tid(1)).unwrap().len(), 2);
    assert_eq!(
        env.metric("skein_index_partitions", Some(("signal", "spans"))),
        2.0
    );

    let env = env.reopen();
    let spans = env.spans.trace(&tid(1)).unwrap();
    let names: Vec<&str> = spans.iter().map(|r| r.span.name.as_str()).collect();
    assert_eq!(names, ["root", "late"]);
    assert_eq!(
        find(
            &env,
            TraceQuery {
                operation: Some("late".into()),
                ..q()
            }
        ),
        [tid(1)]
    );
}

#[test]
fn large_trace_read_on_several_threads_comes_back_whole_and_ordered() {
    // Above `PARALLEL_READ_FROM` spans in one partition the stored spans are
    // read in chunks on several threads; another trace is interleaved so a
    // chunk boundary falls between foreign documents too.
    let mut env = Env::new();
    let total: u16 = 5000;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for i in 1..=total {
        // Start times descend so that storage order is not result order.
        ours.push(span(7, i, "work", u64::from(total - i), 1));
        if i % 3 == 0 {
            theirs.push(span(8, i, "other", 1, 1));
        }
    }
    let mut inputs = Vec::new();
    for (n, (a, b)) in ours.chunks(500).zip(theirs.chunks(170)).enumerate() {
        inputs.push(span_input(
            &traces(resource("a", vec![]), a.to_vec()),
            2 * n as u64 + 1,
        ));
        inputs.push(span_input(
            &traces(resource("b", vec![]), b.to_vec()),
            2 * n as u64 + 2,
        ));
    }
    env.index(&inputs);
    let got = env.spans.trace(&tid(7)).unwrap();
    assert_eq!(got.len(), usize::from(total));
    assert!(got.iter().all(|r| r.span.trace_id == tid(7).to_vec()));
    assert!(got
        .windows(2)
        .all(|w| w[0].span.start_time_unix_nano <= w[1].span.start_time_unix_nano));
    let mut ids: Vec<Vec<u8>> = got.iter().map(|r| r.span.span_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), usize::from(total));
}

/// Four traces over two services, one partition each hour.
fn search_fixture() -> Env {
    let mut env = Env::new();
    let mut err = span(3, 31, "POST /pay", 30, 900);
    err.status = Some(Status {
        message: String::new(),
        code: StatusCode::Error as i32,
    });
    err.attributes = vec![kv("http.status_code", Value::IntValue(500))];
    let mut ok = span(2, 21, "GET /", 20, 40);
    ok.attributes = vec![
        kv("http.status_code", Value::IntValue(200)),
        kv("cache.hit", Value::BoolValue(true)),
        kv("ratio", Value::DoubleValue(0.5)),
    ];
    ok.status = Some(Status {
        message: String::new(),
        code: StatusCode::Ok as i32,
    });
    let mut client = span(2, 22, "SELECT", 21, 3);
    client.kind = 3;
    env.index(&[
        span_input(
            &traces(
                resource("web", vec![kv("host.name", s("h1"))]),
                vec![span(1, 11, "GET /", 10, 10)],
            ),
            1,
        ),
        span_input(
            &traces(resource("web", vec![kv("host.name", s("h2"))]), vec![ok]),
            2,
        ),
        span_input(
            &traces(resource("db", vec![kv("host.name", s("h2"))]), vec![client]),
            3,
        ),
    ]);
    env.clock.advance(HOUR);
    env.index(&[
        span_input(
            &traces(
                resource("pay", vec![]),
                vec![err, span(3, 32, "charge", 31, 20)],
            ),
            4,
        ),
        span_input(
            &traces(
                resource("web", vec![]),
                vec![span(4, 41, "GET /", 40, 2_000)],
            ),
            5,
        ),
    ]);
    env
}

#[test]
fn find_by_service_operation_and_tags() {
    let env = search_fixture();
    assert_eq!(find(&env, q()), [tid(4), tid(3), tid(2), tid(1)]);
    assert_eq!(
        find(
            &env,
            TraceQuery {
                service: Some("web".into()),
                ..q()
            }
        ),
        [tid(4), tid(2), tid(1)]
    );
    assert_eq!(
        find(
            &env,
            TraceQuery {
                service: Some("db".into()),
                ..q()
            }
        ),
        [tid(2)]
    );
    assert_eq!(
        find(
            &env,
            TraceQuery {
                operation: Some("SELECT".into()),
                ..q()
            }
        ),
        [tid(2)]
    );
    assert!(find(
        &env,
        TraceQuery {
            service: Some("nope".into()),
            ..q()
        }
    )
    .is_empty());

    let tags = |pairs: &[(&str, &str)]| TraceQuery {
        tags: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..q()
    };
    assert_eq!(find(&env, tags(&[("http.status_code", "500")])), [tid(3)]);
    assert_eq!(find(&env, tags(&[("error", "true")])), [tid(3)]);
    assert_eq!(find(&env, tags(&[("otel.status_code", "ERROR")])), [tid(3)]);
    assert_eq!(find(&env, tags(&[("otel.status_code", "OK")])), [tid(2)]);
    assert_eq!(
        find(&env, tags(&[("cache.hit", "true"), ("ratio", "0.5")])),
        [tid(2)]
    );
    assert_eq!(find(&env, tags(&[("span.kind", "client")])), [tid(2)]);
    // Resource attribute.
    assert_eq!(find(&env, tags(&[("host.name", "h2")])), [tid(2)]);
    assert_eq!(find(&env, tags(&[("service.name", "pay")])), [tid(3)]);
    // Every condition on the same span: web's span in trace 2 is not a client span.
    let mut mixed = tags(&[("span.kind", "client")]);
    mixed.service = Some("web".into());
    assert!(find(&env, mixed).is_empty());
}

#[test]
fn find_by_duration_and_time_range() {
    let env = search_fixture();
    let ms = 1_000_000;
    let by_dur = |min: Option<u64>, max: Option<u64>| TraceQuery {
        min_duration_ns: min.map(|v| v * ms),
        max_duration_ns: max.map(|v| v * ms),
        ..q()
    };
    assert_eq!(find(&env, by_dur(Some(900), None)), [tid(4), tid(3)]);
    assert_eq!(find(&env, by_dur(Some(3), Some(10))), [tid(2), tid(1)]);
    assert_eq!(find(&env, by_dur(None, Some(2))), Vec::<[u8; 16]>::new());
    assert!(find(&env, by_dur(Some(10), Some(3))).is_empty());

    let by_time = |a: u64, b: u64| TraceQuery {
        start_unix_nano: Some(ns(a)),
        end_unix_nano: Some(ns(b)),
        ..q()
    };
    assert_eq!(find(&env, by_time(20, 31)), [tid(3), tid(2)]);
    assert_eq!(find(&env, by_time(0, 15)), [tid(1)]);
    assert!(find(&env, by_time(100, 200)).is_empty());
    let since = TraceQuery {
        start_unix_nano: Some(ns(31)),
        ..q()
    };
    assert_eq!(find(&env, since), [tid(4), tid(3)]);
}

#[test]
fn find_is_newest_first_with_limit_even_behind_a_big_trace() {
    let mut env = Env::new();
    // Trace 9 has 500 spans, all newer than trace 8's single span.
    let big: Vec<Span> = (0..500)
        .map(|i| span(9, i, "hot", 1_000 + u64::from(i), 1))
        .collect();
    env.index(&[
        span_input(
            &traces(resource("svc", vec![]), vec![span(8, 1, "cold", 10, 1)]),
            1,
        ),
        span_input(&traces(resource("svc", vec![]), big), 2),
        span_input(
            &traces(resource("svc", vec![]), vec![span(7, 1, "cold", 5, 1)]),
            3,
        ),
    ]);
    assert_eq!(find(&env, TraceQuery { limit: 1, ..q() }), [tid(9)]);
    assert_eq!(find(&env, TraceQuery { limit: 2, ..q() }), [tid(9), tid(8)]);
    assert_eq!(
        find(&env, TraceQuery { limit: 5, ..q() }),
        [tid(9), tid(8), tid(7)]
    );
    assert!(find(&env, TraceQuery { limit: 0, ..q() }).is_empty());
}

#[test]
fn services_and_operations_survive_reopen() {
    let env = search_fixture();
    let check = |env: &Env| {
        let spans = &env.spans;
        assert_eq!(spans.services().unwrap(), ["db", "pay", "web"]);
        let ops = spans.operations("web", None).unwrap();
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["GET /"]);
        assert_eq!(ops[0].kind, SpanKind::Server);
        assert_eq!(
            spans
                .operations("db", Some(SpanKind::Client))
                .unwrap()
                .len(),
            1
        );
        assert!(spans
            .operations("db", Some(SpanKind::Server))
            .unwrap()
            .is_empty());
        assert!(spans.operations("nope", None).unwrap().is_empty());
    };
    check(&env);
    let env = env.reopen();
    check(&env);
}
