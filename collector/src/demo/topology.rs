//! The demo system's shape (pure data): four services, one instance each,
//! who calls whom, and which service runs with a skewed clock.
//!
//! `frontend → order → inventory` and `order → payment`. Owns names and
//! constants only; no I/O, no OpenTelemetry types.

/// One demo service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Frontend,
    Order,
    Inventory,
    Payment,
}

impl Service {
    /// Every demo service, callers before callees.
    pub const ALL: [Service; 4] = [
        Service::Frontend,
        Service::Order,
        Service::Inventory,
        Service::Payment,
    ];

    /// `service.name`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Frontend => "frontend",
            Service::Order => "order",
            Service::Inventory => "inventory",
            Service::Payment => "payment",
        }
    }

    /// `service.instance.id`, also the instance's id in the registry.
    pub fn instance(self) -> &'static str {
        match self {
            Service::Frontend => "frontend-7d9f4",
            Service::Order => "order-5c2b8",
            Service::Inventory => "inventory-91e3a",
            Service::Payment => "payment-0a6d1",
        }
    }

    /// `service.version`.
    pub fn version(self) -> &'static str {
        match self {
            Service::Frontend => "2.14.0",
            Service::Order => "1.8.3",
            Service::Inventory => "0.9.12",
            Service::Payment => "3.1.0",
        }
    }

    /// How far this service's clock is off, in milliseconds (its span and log
    /// timestamps are shifted by this much). Only `inventory` is off: it runs
    /// on a host whose clock is behind, so its spans start before the calls
    /// that caused them; the trace view's clock-skew adjustment fixes that.
    pub fn clock_skew_ms(self) -> i64 {
        match self {
            Service::Inventory => -2_500,
            _ => 0,
        }
    }
}

/// The calls the demo makes: (caller, callee).
pub const CALLS: [(Service, Service); 3] = [
    (Service::Frontend, Service::Order),
    (Service::Order, Service::Inventory),
    (Service::Order, Service::Payment),
];

/// The service whose instance stops renewing during the failure cycle.
pub const FAILING: Service = Service::Payment;

/// The callers of `service` in the demo topology.
pub fn callers(service: Service) -> Vec<Service> {
    CALLS
        .iter()
        .filter(|(_, callee)| *callee == service)
        .map(|(caller, _)| *caller)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_and_instances_are_unique() {
        let names: BTreeSet<_> = Service::ALL.iter().map(|s| s.name()).collect();
        let instances: BTreeSet<_> = Service::ALL.iter().map(|s| s.instance()).collect();
        assert_eq!((names.len(), instances.len()), (4, 4));
        for s in Service::ALL {
            assert!(s.instance().starts_with(s.name()));
        }
    }

    #[test]
    fn the_failing_service_has_callers_and_only_inventory_is_skewed() {
        assert_eq!(callers(FAILING), vec![Service::Order]);
        assert_eq!(callers(Service::Order), vec![Service::Frontend]);
        assert!(callers(Service::Frontend).is_empty());
        let skewed: Vec<_> = Service::ALL
            .iter()
            .filter(|s| s.clock_skew_ms() != 0)
            .collect();
        assert_eq!(skewed, [&Service::Inventory]);
    }

    #[test]
    fn every_service_takes_part_in_a_call() {
        for s in Service::ALL {
            assert!(CALLS.iter().any(|(a, b)| *a == s || *b == s), "{s:?}");
        }
    }
}
