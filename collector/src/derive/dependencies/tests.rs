//! Edge extraction: pairs across batches and in either order, peers of
//! uninstrumented callees, expiry, error counts, the store bound.

use super::pairing::{ConnType, Edge, Pairer, Side};
use crate::derive::wire::kind;

const T: [u8; 16] = [7; 16];

fn id(n: u8) -> [u8; 8] {
    [0, 0, 0, 0, 0, 0, 0, n]
}

fn side(service: u32, k: i32) -> Side {
    Side {
        service,
        kind: k,
        start_ns: 1_000,
        duration_ns: 50,
        error: false,
        peer: None,
        database: false,
        lsn: 1,
    }
}

/// Add span `span` (parent `parent`, 0 = root) at `now` ms.
fn add(p: &mut Pairer, now: u64, span: u8, parent: u8, s: Side) -> Vec<Edge> {
    let mut out = Vec::new();
    let parent_id = if parent == 0 {
        vec![]
    } else {
        id(parent).to_vec()
    };
    p.add(now, &T, &id(span), &parent_id, s, &mut out);
    out
}

#[test]
fn client_then_server_in_another_batch() {
    let mut p = Pairer::new(100, 10_000);
    assert!(add(&mut p, 0, 1, 0, side(0, kind::CLIENT)).is_empty());
    let edges = add(
        &mut p,
        5,
        2,
        1,
        Side {
            duration_ns: 30,
            ..side(1, kind::SERVER)
        },
    );
    assert_eq!(edges.len(), 1);
    let e = edges[0];
    assert_eq!((e.client, e.server, e.conn), (0, 1, ConnType::Direct));
    assert_eq!(
        (e.client_ns, e.server_ns, e.failed),
        (Some(50), Some(30), false)
    );
    // The client span is consumed: nothing expires as a virtual node later.
    let mut out = Vec::new();
    p.expire(60_000, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.stats.unpaired_client, 0);
}

#[test]
fn server_arriving_before_its_client_waits() {
    let mut p = Pairer::new(100, 10_000);
    let err = Side {
        error: true,
        ..side(1, kind::SERVER)
    };
    assert!(add(&mut p, 0, 2, 1, err).is_empty());
    assert_eq!(
        p.pending(),
        2,
        "waiting child + the server span as a parent"
    );
    let edges = add(&mut p, 9_000, 1, 0, side(0, kind::CLIENT));
    assert_eq!(edges.len(), 1);
    assert!(
        edges[0].failed,
        "an error on the server side fails the call"
    );
}

#[test]
fn client_error_counts_as_failed_call() {
    let mut p = Pairer::new(100, 10_000);
    add(
        &mut p,
        0,
        1,
        0,
        Side {
            error: true,
            ..side(0, kind::CLIENT)
        },
    );
    assert!(add(&mut p, 0, 2, 1, side(1, kind::SERVER))[0].failed);
}

#[test]
fn server_to_server_needs_different_services() {
    let mut p = Pairer::new(100, 10_000);
    add(&mut p, 0, 1, 0, side(0, kind::SERVER));
    let edges = add(&mut p, 0, 2, 1, side(1, kind::SERVER));
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0].client_ns, None, "no client span");
    assert_eq!(edges[0].latency_ns(), 50);
    assert!(
        add(&mut p, 0, 3, 1, side(0, kind::SERVER)).is_empty(),
        "same service"
    );
    assert_eq!(
        add(&mut p, 0, 4, 1, side(2, kind::SERVER)).len(),
        1,
        "a second callee"
    );
}

#[test]
fn producer_consumer_is_messaging() {
    let mut p = Pairer::new(100, 10_000);
    add(&mut p, 0, 1, 0, side(0, kind::PRODUCER));
    assert_eq!(
        add(&mut p, 0, 2, 1, side(1, kind::CONSUMER))[0].conn,
        ConnType::Messaging
    );
}

#[test]
fn internal_children_are_not_calls() {
    let mut p = Pairer::new(100, 10_000);
    add(&mut p, 0, 1, 0, side(0, kind::CLIENT));
    assert!(add(&mut p, 0, 2, 1, side(1, kind::INTERNAL)).is_empty());
}

#[test]
fn unmatched_client_with_peer_becomes_virtual_node_after_wait() {
    let mut p = Pairer::new(100, 10_000);
    add(
        &mut p,
        0,
        1,
        0,
        Side {
            peer: Some(9),
            ..side(0, kind::CLIENT)
        },
    );
    add(
        &mut p,
        0,
        2,
        0,
        Side {
            peer: Some(8),
            database: true,
            error: true,
            ..side(0, kind::CLIENT)
        },
    );
    add(&mut p, 0, 3, 0, side(0, kind::CLIENT));
    let mut out = Vec::new();
    p.expire(9_999, &mut out);
    assert!(out.is_empty(), "not before the wait is over");
    p.expire(10_000, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].server, out[0].conn), (9, ConnType::VirtualNode));
    assert_eq!((out[1].server, out[1].conn), (8, ConnType::Database));
    assert!(out[1].failed);
    assert_eq!(out[0].server_ns, None);
    assert_eq!(p.stats.unpaired_client, 1, "no peer attribute");
    assert_eq!(p.pending(), 0);
}

#[test]
fn orphan_server_spans_expire_as_unpaired() {
    let mut p = Pairer::new(100, 10_000);
    add(&mut p, 0, 2, 1, side(1, kind::SERVER));
    let mut out = Vec::new();
    p.expire(10_000, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.stats.unpaired_server, 1);
    assert_eq!(p.pending(), 0);
    // Its client arriving after expiry finds nothing and waits in turn.
    assert!(add(&mut p, 10_001, 1, 0, side(0, kind::CLIENT)).is_empty());
}

#[test]
fn duplicate_client_span_is_counted_once() {
    let mut p = Pairer::new(100, 10_000);
    add(&mut p, 0, 2, 1, side(1, kind::SERVER));
    assert_eq!(add(&mut p, 0, 1, 0, side(0, kind::CLIENT)).len(), 1);
    // The retry of the client span arrives: its child is gone, it waits and
    // expires without a peer.
    assert!(add(&mut p, 0, 1, 0, side(0, kind::CLIENT)).is_empty());
}

#[test]
fn full_store_drops_and_counts() {
    let mut p = Pairer::new(4, 10_000);
    for n in 1..=6 {
        add(&mut p, 0, n, 0, side(0, kind::CLIENT));
    }
    assert_eq!(p.pending(), 4);
    assert_eq!(p.stats.dropped, 2);
    // Above half full, server spans are no longer kept as parents.
    let mut q = Pairer::new(4, 10_000);
    add(&mut q, 0, 1, 0, side(0, kind::CLIENT));
    add(&mut q, 0, 2, 0, side(0, kind::CLIENT));
    add(&mut q, 0, 3, 0, side(0, kind::SERVER));
    assert_eq!(q.pending(), 2);
    assert_eq!(q.stats.dropped, 0);
}
