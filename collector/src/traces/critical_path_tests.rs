use super::*;
use crate::query::SpanRecord;
use crate::traces::testing::*;
use crate::traces::{assemble, TraceSettings};

fn path(spans: Vec<SpanRecord>) -> Vec<(SpanId, i64)> {
    let t = assemble(spans, &TraceSettings::default()).expect("trace");
    critical_path(&t.tree)
        .into_iter()
        .map(|e| (e.span_id, e.self_ns as i64 / MS))
        .collect()
}

fn want(list: &[(u8, i64)]) -> Vec<(SpanId, i64)> {
    list.iter().map(|&(n, ms)| (id(n), ms)).collect()
}

/// R [0,100] with parallel children A [5,40] and B [5,60] and a sequential C
/// [60,90]; B calls B1 [10,20] then B2 [20,55] back to back; C1 [65,95]
/// overflows C and is clipped to it.
#[test]
fn parallel_and_sequential_children() {
    let spans = vec![
        sp(1, None, "a", 0, 100),
        sp(2, Some(1), "a", 5, 40),
        sp(21, Some(2), "a", 10, 30),
        sp(3, Some(1), "b", 5, 60),
        sp(31, Some(3), "b", 10, 20),
        sp(32, Some(3), "b", 20, 55),
        sp(4, Some(1), "c", 60, 90),
        sp(41, Some(4), "c", 65, 95),
    ];
    // Same-service spans so clock-skew correction leaves C1 alone.
    let got = path(spans);
    assert_eq!(
        got,
        want(&[(1, 15), (3, 10), (31, 10), (32, 35), (4, 5), (41, 25)])
    );
    let total: i64 = got.iter().map(|(_, ms)| ms).sum();
    assert_eq!(total, 100, "the path covers the whole trace");
}

#[test]
fn table() {
    type Case = (&'static str, Vec<SpanRecord>, Vec<(u8, i64)>);
    let cases: Vec<Case> = vec![
        ("single span", vec![sp(1, None, "a", 0, 10)], vec![(1, 10)]),
        (
            "child covering its parent exactly: parent listed with 0",
            vec![sp(1, None, "a", 0, 10), sp(2, Some(1), "a", 0, 10)],
            vec![(1, 0), (2, 10)],
        ),
        (
            "several roots: the gap between them belongs to nobody",
            vec![sp(1, None, "a", 0, 50), sp(2, None, "b", 60, 100)],
            vec![(1, 50), (2, 40)],
        ),
        (
            "a child wholly outside its parent is ignored",
            vec![
                sp(1, None, "a", 0, 100),
                sp(2, Some(1), "a", 120, 130),
                sp(3, Some(1), "a", 10, 20),
            ],
            vec![(1, 90), (3, 10)],
        ),
        (
            "the last-finishing of parallel children wins",
            vec![
                sp(1, None, "a", 0, 100),
                sp(2, Some(1), "a", 10, 80),
                sp(3, Some(1), "a", 10, 70),
            ],
            vec![(1, 30), (2, 70)],
        ),
        (
            "orphans run under their placeholder",
            vec![sp(1, None, "a", 0, 10), sp(3, Some(2), "b", 20, 30)],
            vec![(1, 10), (2, 0), (3, 10)],
        ),
        (
            "zero-length child does not loop",
            vec![sp(1, None, "a", 0, 10), sp(2, Some(1), "a", 5, 5)],
            vec![(1, 10), (2, 0)],
        ),
    ];
    for (name, spans, expected) in cases {
        assert_eq!(path(spans), want(&expected), "{name}");
    }
}
