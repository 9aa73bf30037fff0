//! What one demo request does (pure planning, no I/O): a [`TracePlan`] of
//! spans and logs with times relative to the request's start, drawn from a
//! random source so that tests can seed it.
//!
//! Requests: `POST /checkout` (frontend → order → inventory, then order →
//! payment) and `GET /orders/:id` (frontend → order → inventory). Some fail
//! (out of stock, card declined), some are slow (a slow stock query, a slow
//! card gateway), and when a service is down its callers' client spans fail
//! with a connection error and their services answer 503. The emitter turns
//! the plan into OpenTelemetry spans and log records; it owns the clock.

use rand::Rng;

use super::topology::Service;

/// Span kind, as OpenTelemetry has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
    Internal,
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
}

impl From<&str> for Attr {
    fn from(s: &str) -> Self {
        Attr::Str(s.to_string())
    }
}
impl From<String> for Attr {
    fn from(s: String) -> Self {
        Attr::Str(s)
    }
}
impl From<i64> for Attr {
    fn from(n: i64) -> Self {
        Attr::Int(n)
    }
}

/// One span; times in microseconds from the request's start (before any
/// clock skew, which the emitter applies).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSpan {
    pub service: Service,
    /// Index of the parent span in [`TracePlan::spans`] (always lower).
    pub parent: Option<usize>,
    pub name: String,
    pub kind: Kind,
    pub start_us: u64,
    pub end_us: u64,
    /// `Some(message)`: status Error.
    pub error: Option<String>,
    pub attributes: Vec<(&'static str, Attr)>,
}

/// One log record, written inside `span`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLog {
    pub span: usize,
    pub at_us: u64,
    pub level: Level,
    pub body: String,
    pub attributes: Vec<(&'static str, Attr)>,
}

/// One request's spans (parents before children) and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TracePlan {
    pub spans: Vec<PlannedSpan>,
    pub logs: Vec<PlannedLog>,
}

impl TracePlan {
    /// When the last span ends.
    pub fn duration_us(&self) -> u64 {
        self.spans.iter().map(|s| s.end_us).max().unwrap_or(0)
    }
}

/// How a call ended, as the callee answered it.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    status: i64,
    message: String,
}

type Outcome = Result<(), Failure>;

const SKUS: [&str; 6] = [
    "SKU-1042", "SKU-2208", "SKU-3117", "SKU-4051", "SKU-5290", "SKU-6003",
];

/// Plan one request. `down(s)` says whether service `s` is down right now.
pub fn plan(rng: &mut impl Rng, down: &dyn Fn(Service) -> bool) -> TracePlan {
    let mut p = Planner {
        rng,
        down,
        plan: TracePlan::default(),
    };
    if p.rng.random_bool(0.7) {
        p.checkout();
    } else {
        p.order_status();
    }
    p.plan
}

struct Planner<'a, R: Rng> {
    rng: &'a mut R,
    down: &'a dyn Fn(Service) -> bool,
    plan: TracePlan,
}

impl<R: Rng> Planner<'_, R> {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..hi)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn open(
        &mut self,
        service: Service,
        parent: Option<usize>,
        name: impl Into<String>,
        kind: Kind,
        start_us: u64,
    ) -> usize {
        self.plan.spans.push(PlannedSpan {
            service,
            parent,
            name: name.into(),
            kind,
            start_us,
            end_us: start_us,
            error: None,
            attributes: Vec::new(),
        });
        self.plan.spans.len() - 1
    }

    fn attr(&mut self, span: usize, key: &'static str, value: impl Into<Attr>) {
        self.plan.spans[span].attributes.push((key, value.into()));
    }

    fn close(&mut self, span: usize, end_us: u64, outcome: &Outcome) {
        let s = &mut self.plan.spans[span];
        s.end_us = end_us.max(s.start_us + 1);
        if let Err(f) = outcome {
            s.error = Some(f.message.clone());
        }
    }

    fn log(&mut self, span: usize, at_us: u64, level: Level, body: String) {
        let attrs = Vec::new();
        self.log_with(span, at_us, level, body, attrs);
    }

    fn log_with(
        &mut self,
        span: usize,
        at_us: u64,
        level: Level,
        body: String,
        attributes: Vec<(&'static str, Attr)>,
    ) {
        self.plan.logs.push(PlannedLog {
            span,
            at_us,
            level,
            body,
            attributes,
        });
    }

    /// An HTTP server span.
    fn server(
        &mut self,
        service: Service,
        parent: Option<usize>,
        method: &str,
        route: &str,
        at: u64,
    ) -> usize {
        let span = self.open(
            service,
            parent,
            format!("{method} {route}"),
            Kind::Server,
            at,
        );
        self.attr(span, "http.request.method", method);
        self.attr(span, "http.route", route);
        span
    }

    fn status(&mut self, span: usize, outcome: &Outcome) {
        let code = match outcome {
            Ok(()) => 200,
            Err(f) => f.status,
        };
        self.attr(span, "http.response.status_code", code);
    }

    /// A client span in `caller` under `parent` and, unless `callee` is
    /// down, the callee's server span under it, filled in by `handler`
    /// (given the server span and its start, returns its end and outcome).
    /// Returns when the client span ends and how the call went.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        parent: usize,
        caller: Service,
        callee: Service,
        method: &str,
        route: &str,
        at: u64,
        handler: impl FnOnce(&mut Self, usize, u64) -> (u64, Outcome),
    ) -> (u64, Outcome) {
        let client = self.open(
            caller,
            Some(parent),
            format!("{method} {route}"),
            Kind::Client,
            at,
        );
        self.attr(client, "http.request.method", method);
        self.attr(client, "peer.service", callee.name());
        self.attr(client, "server.address", callee.name());
        self.attr(client, "server.port", 8080i64);
        if (self.down)(callee) {
            let (end, message) = if self.chance(0.3) {
                (
                    at + 1_000_000 + self.between(0, 2_000),
                    format!(
                        "{method} http://{}:8080{route}: deadline exceeded after 1s",
                        callee.name()
                    ),
                )
            } else {
                (
                    at + self.between(300, 2_500),
                    format!(
                        "{method} http://{}:8080{route}: connect: connection refused",
                        callee.name()
                    ),
                )
            };
            let outcome = Err(Failure {
                status: 503,
                message,
            });
            self.close(client, end, &outcome);
            return (end, outcome);
        }
        let server_start = at + self.between(150, 900);
        let server = self.server(callee, Some(client), method, route, server_start);
        let (server_end, outcome) = handler(self, server, server_start);
        self.status(server, &outcome);
        self.close(server, server_end, &outcome);
        self.status(client, &outcome);
        let end = server_end + self.between(150, 900);
        self.close(client, end, &outcome);
        (end, outcome)
    }

    /// The inventory database query under `parent`; slow now and then.
    fn stock_query(&mut self, parent: usize, at: u64, sku: &str, statement: &str) -> u64 {
        let slow = self.chance(0.06);
        let took = if slow {
            self.between(600_000, 1_600_000)
        } else {
            self.between(800, 6_000)
        };
        let q = self.open(
            Service::Inventory,
            Some(parent),
            "SELECT stock",
            Kind::Internal,
            at,
        );
        self.attr(q, "db.system.name", "postgresql");
        self.attr(q, "db.query.text", statement);
        self.attr(q, "sku", sku);
        self.close(q, at + took, &Ok(()));
        if slow {
            self.log_with(
                q,
                at + took,
                Level::Warn,
                format!(
                    "slow query: stock lookup for {sku} took {} ms (lock wait on stock_levels)",
                    took / 1000
                ),
                vec![
                    ("sku", sku.into()),
                    ("duration_ms", Attr::Int((took / 1000) as i64)),
                ],
            );
        }
        at + took
    }

    /// `POST /checkout` through all four services.
    fn checkout(&mut self) {
        let user = format!("user-{}", self.between(1000, 9999));
        let sku = SKUS[self.rng.random_range(0..SKUS.len())];
        let qty = self.between(1, 4) as i64;
        let root = self.server(Service::Frontend, None, "POST", "/checkout", 0);
        self.attr(root, "user.id", user.clone());
        let at = self.between(200, 1_500);
        let (end, outcome) = self.call(
            root,
            Service::Frontend,
            Service::Order,
            "POST",
            "/orders",
            at,
            |p, order, start| p.place_order(order, start, sku, qty),
        );
        let end = end + self.between(300, 2_000);
        match &outcome {
            Ok(()) => self.log(
                root,
                end,
                Level::Info,
                format!("checkout completed for {user}: {qty} x {sku}"),
            ),
            Err(f) => self.log_with(
                root,
                end,
                if f.status >= 500 {
                    Level::Error
                } else {
                    Level::Warn
                },
                format!(
                    "checkout failed for {user}: order service answered {}",
                    f.status
                ),
                vec![("http.response.status_code", Attr::Int(f.status))],
            ),
        }
        self.status(root, &outcome);
        self.close(root, end, &outcome);
    }

    /// order's `POST /orders`: reserve stock, then charge.
    fn place_order(&mut self, order: usize, start: u64, sku: &str, qty: i64) -> (u64, Outcome) {
        let order_id = format!("ord-{:06}", self.between(0, 999_999));
        self.attr(order, "order.id", order_id.clone());
        let v = self.open(
            Service::Order,
            Some(order),
            "validate order",
            Kind::Internal,
            start + 50,
        );
        let at = start + 50 + self.between(100, 600);
        self.close(v, at, &Ok(()));
        let (at, reserved) = self.call(
            order,
            Service::Order,
            Service::Inventory,
            "POST",
            "/stock/reserve",
            at + 100,
            |p, inv, start| {
                p.attr(inv, "sku", sku);
                let end = p.stock_query(
                    inv,
                    start + 100,
                    sku,
                    "SELECT qty FROM stock_levels WHERE sku = $1 FOR UPDATE",
                );
                if p.chance(0.05) {
                    let message = format!("insufficient stock for {sku}: wanted {qty}, have 0");
                    p.log_with(
                        inv,
                        end,
                        Level::Warn,
                        message.clone(),
                        vec![("sku", sku.into())],
                    );
                    (
                        end + 200,
                        Err(Failure {
                            status: 409,
                            message,
                        }),
                    )
                } else {
                    (end + p.between(200, 1_500), Ok(()))
                }
            },
        );
        if let Err(f) = reserved {
            let level = if f.status >= 500 {
                Level::Error
            } else {
                Level::Warn
            };
            self.log(
                order,
                at,
                level,
                format!(
                    "order {order_id} rejected: stock reservation failed ({})",
                    f.message
                ),
            );
            return (at + 300, Err(f));
        }
        let amount = self.between(500, 25_000) as i64;
        let (at, charged) = self.call(
            order,
            Service::Order,
            Service::Payment,
            "POST",
            "/charge",
            at + 200,
            |p, pay, start| {
                p.attr(pay, "payment.amount_cents", amount);
                let slow = p.chance(0.05);
                let took = if slow {
                    p.between(1_200_000, 2_800_000)
                } else {
                    p.between(15_000, 90_000)
                };
                let g = p.open(
                    Service::Payment,
                    Some(pay),
                    "authorize card",
                    Kind::Internal,
                    start + 300,
                );
                p.attr(g, "payment.gateway", "acme-pay");
                let end = start + 300 + took;
                if slow {
                    p.log(
                        g,
                        end,
                        Level::Warn,
                        format!(
                            "card gateway acme-pay slow: authorization took {} ms",
                            took / 1000
                        ),
                    );
                }
                if p.chance(0.05) {
                    let message = "card declined: insufficient_funds".to_string();
                    p.close(
                        g,
                        end,
                        &Err(Failure {
                            status: 402,
                            message: message.clone(),
                        }),
                    );
                    p.log(
                        pay,
                        end,
                        Level::Warn,
                        format!(
                            "charge of {amount} cents declined by acme-pay (insufficient_funds)"
                        ),
                    );
                    (
                        end + 400,
                        Err(Failure {
                            status: 402,
                            message,
                        }),
                    )
                } else {
                    p.close(g, end, &Ok(()));
                    (end + p.between(300, 2_000), Ok(()))
                }
            },
        );
        match charged {
            Ok(()) => {
                self.log_with(
                    order,
                    at,
                    Level::Info,
                    format!("order {order_id} placed: {qty} x {sku}, {amount} cents"),
                    vec![("order.id", order_id.into())],
                );
                (at + self.between(200, 1_000), Ok(()))
            }
            Err(f) => {
                let (level, status) = if f.status >= 500 {
                    (Level::Error, 503)
                } else {
                    (Level::Warn, f.status)
                };
                self.log(
                    order,
                    at,
                    level,
                    format!("order {order_id} failed: charge failed ({})", f.message),
                );
                (
                    at + 300,
                    Err(Failure {
                        status,
                        message: format!("charge failed: {}", f.message),
                    }),
                )
            }
        }
    }

    /// `GET /orders/:id`: order looks the items' stock up.
    fn order_status(&mut self) {
        let root = self.server(Service::Frontend, None, "GET", "/orders/:id", 0);
        let at = self.between(200, 1_000);
        let (end, outcome) = self.call(
            root,
            Service::Frontend,
            Service::Order,
            "GET",
            "/orders/:id",
            at,
            |p, order, start| {
                let sku = SKUS[p.rng.random_range(0..SKUS.len())];
                let (end, stock) = p.call(
                    order,
                    Service::Order,
                    Service::Inventory,
                    "GET",
                    "/stock/:sku",
                    start + 200,
                    |p, inv, start| {
                        p.attr(inv, "sku", sku);
                        let end = p.stock_query(
                            inv,
                            start + 80,
                            sku,
                            "SELECT qty FROM stock_levels WHERE sku = $1",
                        );
                        (end + p.between(100, 800), Ok(()))
                    },
                );
                if let Err(f) = &stock {
                    p.log(
                        order,
                        end,
                        Level::Error,
                        format!("stock lookup failed: {}", f.message),
                    );
                }
                (end + p.between(100, 700), stock)
            },
        );
        let end = end + self.between(200, 1_200);
        if let Err(f) = &outcome {
            self.log(
                root,
                end,
                Level::Error,
                format!("order page failed: order service answered {}", f.status),
            );
        }
        self.status(root, &outcome);
        self.close(root, end, &outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn many(down: &dyn Fn(Service) -> bool) -> Vec<TracePlan> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..2000).map(|_| plan(&mut rng, down)).collect()
    }

    /// (caller, callee) of each client span with a server child.
    fn edges(p: &TracePlan) -> BTreeSet<(Service, Service)> {
        p.spans
            .iter()
            .filter(|s| s.kind == Kind::Server)
            .filter_map(|s| s.parent.map(|i| (p.spans[i].service, s.service)))
            .collect()
    }

    #[test]
    fn plans_are_well_formed() {
        for p in many(&|_| false) {
            assert_eq!(p.spans[0].parent, None);
            assert_eq!(p.spans[0].service, Service::Frontend);
            for (i, s) in p.spans.iter().enumerate() {
                assert!(s.end_us > s.start_us, "{s:?}");
                if let Some(parent) = s.parent {
                    assert!(parent < i);
                    let ps = &p.spans[parent];
                    assert!(
                        s.start_us >= ps.start_us && s.end_us <= ps.end_us,
                        "{ps:?} / {s:?}"
                    );
                    // A server span's parent is a client span in another service.
                    if s.kind == Kind::Server {
                        assert_eq!(ps.kind, Kind::Client);
                        assert_ne!(ps.service, s.service);
                    }
                }
            }
            for l in &p.logs {
                assert!(l.span < p.spans.len());
            }
        }
    }

    #[test]
    fn traffic_covers_the_topology_with_some_errors_and_slow_calls() {
        let plans = many(&|_| false);
        let all: BTreeSet<_> = plans.iter().flat_map(edges).collect();
        let want: BTreeSet<_> = crate::demo::topology::CALLS.into_iter().collect();
        assert_eq!(all, want);
        let errors = plans.iter().filter(|p| p.spans[0].error.is_some()).count();
        assert!(
            (40..400).contains(&errors),
            "{errors} failed requests of 2000"
        );
        let slow = plans.iter().filter(|p| p.duration_us() > 500_000).count();
        assert!((40..400).contains(&slow), "{slow} slow requests of 2000");
        let logs_by_level = |l: Level| {
            plans
                .iter()
                .flat_map(|p| &p.logs)
                .filter(|x| x.level == l)
                .count()
        };
        assert!(logs_by_level(Level::Info) > 1000);
        assert!(logs_by_level(Level::Warn) > 50);
    }

    #[test]
    fn a_down_service_fails_its_callers_without_server_spans() {
        let plans = many(&|s| s == Service::Payment);
        assert!(plans
            .iter()
            .all(|p| p.spans.iter().all(|s| s.service != Service::Payment)));
        let refused: Vec<&PlannedSpan> = plans
            .iter()
            .flat_map(|p| &p.spans)
            .filter(|s| s.kind == Kind::Client && s.name == "POST /charge")
            .collect();
        assert!(refused.len() > 500);
        assert!(refused.iter().all(|s| s.error.is_some()));
        let order_errors = plans
            .iter()
            .flat_map(|p| &p.logs)
            .filter(|l| l.level == Level::Error && l.body.contains("charge failed"))
            .count();
        assert_eq!(order_errors, refused.len());
    }
}
