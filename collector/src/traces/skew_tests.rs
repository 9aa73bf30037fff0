use super::*;
use crate::query::SpanRecord;
use crate::traces::testing::*;
use crate::traces::{assemble, TraceSettings};

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// (start, end) in ms relative to T0 of span `n` after adjustment.
fn times(tree: &TraceTree, n: u8) -> (i64, i64) {
    let node = &tree.nodes[tree.get(&id(n)).expect("node")];
    let ms = |t: u64| (t as i64 - T0 as i64) / MS;
    (ms(node.start_unix_nano), ms(node.end_unix_nano))
}

fn run(spans: Vec<SpanRecord>) -> (TraceTree, Vec<Adjustment>) {
    let t = assemble(spans, &TraceSettings::default()).expect("trace");
    (t.tree, t.adjustments)
}

#[test]
fn warning_text() {
    assert_eq!(warning(-1_234_000), "clock skew adjusted by -1.234ms");
    assert_eq!(warning(2_000_000_000), "clock skew adjusted by 2000.000ms");
}

/// Table: (name, spans, expected (span, start, end) after adjustment, expected adjusted span ids).
#[test]
fn skew_table() {
    type Case = (&'static str, Vec<SpanRecord>, Vec<(u8, i64, i64)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (
            "fits: nothing moves",
            vec![
                kind(sp(1, None, "a", 0, 100), CLIENT),
                kind(sp(2, Some(1), "b", 10, 90), SERVER),
            ],
            vec![(2, 10, 90)],
            vec![],
        ),
        (
            "RPC server 2 s behind: centred in its client, its subtree moves with it",
            vec![
                kind(sp(1, None, "a", 0, 100), SERVER),
                kind(sp(2, Some(1), "a", 10, 90), CLIENT),
                kind(sp(3, Some(2), "b", -1985, -1925), SERVER),
                sp(4, Some(3), "b", -1980, -1930),
                kind(sp(5, Some(4), "b", -1970, -1940), CLIENT),
                // c's clock is right: inside b's adjusted client span, not moved.
                kind(sp(6, Some(5), "c", 40, 60), SERVER),
            ],
            vec![
                (1, 0, 100),
                (2, 10, 90),
                (3, 20, 80),
                (4, 25, 75),
                (5, 35, 65),
                (6, 40, 60),
            ],
            vec![3, 4, 5],
        ),
        (
            "RPC server ahead: moved back, latency split evenly",
            vec![
                kind(sp(1, None, "a", 0, 100), CLIENT),
                kind(sp(2, Some(1), "b", 500, 540), SERVER),
            ],
            vec![(2, 30, 70)],
            vec![2],
        ),
        (
            "same service instance is never adjusted",
            vec![sp(1, None, "a", 0, 10), sp(2, Some(1), "a", -5, 20)],
            vec![(2, -5, 20)],
            vec![],
        ),
        (
            "same service, same instance id, different host attribute: same instance",
            vec![
                res(
                    res(sp(1, None, "a", 0, 10), "service.instance.id", "i1"),
                    "host.name",
                    "h1",
                ),
                res(
                    res(sp(2, Some(1), "a", -5, 5), "service.instance.id", "i1"),
                    "host.name",
                    "h2",
                ),
            ],
            vec![(2, -5, 5)],
            vec![],
        ),
        (
            "same service, different instance ids: adjusted",
            vec![
                res(sp(1, None, "a", 0, 10), "service.instance.id", "i1"),
                res(sp(2, Some(1), "a", -5, 5), "service.instance.id", "i2"),
            ],
            vec![(2, 0, 10)],
            vec![2],
        ),
        (
            "same service, different hosts without instance id: adjusted",
            vec![
                res(sp(1, None, "a", 0, 10), "host.name", "h1"),
                res(sp(2, Some(1), "a", 8, 12), "host.name", "h2"),
            ],
            vec![(2, 6, 10)],
            vec![2],
        ),
        (
            "internal child ending late: smallest shift",
            vec![sp(1, None, "a", 0, 10), sp(2, Some(1), "b", 5, 15)],
            vec![(2, 0, 10)],
            vec![2],
        ),
        (
            "consumer after its producer ended is not skew",
            vec![
                kind(sp(1, None, "a", 0, 10), PRODUCER),
                kind(sp(2, Some(1), "b", 20, 30), CONSUMER),
            ],
            vec![(2, 20, 30)],
            vec![],
        ),
        (
            "consumer before its producer is moved to its start",
            vec![
                kind(sp(1, None, "a", 0, 10), PRODUCER),
                kind(sp(2, Some(1), "b", -7, 30), CONSUMER),
            ],
            vec![(2, 0, 37)],
            vec![2],
        ),
        (
            "longer than the parent and early: start aligned",
            vec![
                kind(sp(1, None, "a", 0, 10), CLIENT),
                kind(sp(2, Some(1), "b", -3, 20), SERVER),
            ],
            vec![(2, 0, 23)],
            vec![2],
        ),
        (
            "longer than the parent, starting inside: left alone",
            vec![
                kind(sp(1, None, "a", 0, 10), CLIENT),
                kind(sp(2, Some(1), "b", 3, 20), SERVER),
            ],
            vec![(2, 3, 20)],
            vec![],
        ),
        (
            "orphans have no parent clock: not moved",
            vec![sp(1, None, "a", 0, 10), sp(3, Some(2), "b", -50, -40)],
            vec![(3, -50, -40), (2, -50, -40)],
            vec![],
        ),
    ];
    for (name, spans, want, adjusted) in cases {
        let (tree, adjustments) = run(spans);
        for (n, s, e) in want {
            assert_eq!(times(&tree, n), (s, e), "{name}: span {n}");
        }
        let got: Vec<SpanId> = adjustments.iter().map(|a| a.span_id).collect();
        let want: Vec<SpanId> = adjusted.iter().map(|&n| id(n)).collect();
        assert_eq!(got, want, "{name}: adjusted spans ({adjustments:?})");
        for a in &adjustments {
            let node = &tree.nodes[a.node];
            assert_eq!(node.shift_ns, a.shift_ns, "{name}");
            assert!(
                node.warnings.contains(&warning(a.shift_ns)),
                "{name}: {:?}",
                node.warnings
            );
            assert!(!a.reason.is_empty());
        }
    }
}

#[test]
fn reasons_say_what_happened() {
    let (_, adjustments) = run(vec![
        kind(sp(1, None, "front", 0, 100), CLIENT),
        kind(sp(2, Some(1), "back", -1990, -1910), SERVER),
        sp(3, Some(2), "back", -1980, -1970),
    ]);
    assert_eq!(adjustments.len(), 2);
    assert_eq!(adjustments[0].shift_ns, 2000 * MS);
    assert!(
        adjustments[0].reason.contains("'front'"),
        "{}",
        adjustments[0].reason
    );
    assert!(adjustments[0].reason.contains("latency split evenly"));
    assert_eq!(adjustments[1].shift_ns, 2000 * MS);
    assert!(adjustments[1].reason.contains("same service instance"));
}

#[test]
fn adjustment_can_be_switched_off() {
    let spans = vec![
        kind(sp(1, None, "front", 0, 100), CLIENT),
        kind(sp(2, Some(1), "back", -1990, -1910), SERVER),
    ];
    let t = assemble(
        spans,
        &TraceSettings {
            clock_skew_adjust: false,
        },
    )
    .expect("trace");
    assert!(t.adjustments.is_empty());
    assert_eq!(times(&t.tree, 2), (-1990, -1910));
    assert!(t.tree.nodes.iter().all(|n| n.warnings.is_empty()));
}
