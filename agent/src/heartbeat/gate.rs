//! Health gating of lease renewals (pure state machine, no I/O).
//!
//! A passing check renews. The first failing check sends one heartbeat with
//! `health: critical` and then renewals stop, so the lease runs out and the
//! collector alerts. After failures, `healthy_after` consecutive passing
//! checks are needed before renewals resume (no flapping).

/// What to do after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send a heartbeat with `health: passing`.
    Renew,
    /// Send one heartbeat with `health: critical`, then stop renewing.
    ReportCritical,
    /// Send nothing.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateState {
    Healthy,
    /// Failing; the critical report has been sent.
    Failing,
    /// Passing again, `n` consecutive passes so far.
    Recovering(u32),
}

#[derive(Debug, Clone)]
pub struct Gate {
    healthy_after: u32,
    state: GateState,
}

impl Gate {
    pub fn new(healthy_after: u32) -> Self {
        Gate {
            healthy_after: healthy_after.max(1),
            state: GateState::Healthy,
        }
    }

    pub fn state(&self) -> GateState {
        self.state
    }

    pub fn on_check(&mut self, passed: bool) -> Action {
        match (self.state, passed) {
            (GateState::Healthy, true) => Action::Renew,
            (GateState::Healthy, false) => {
                self.state = GateState::Failing;
                Action::ReportCritical
            }
            (GateState::Failing, false) | (GateState::Recovering(_), false) => {
                self.state = GateState::Failing;
                Action::Skip
            }
            (GateState::Failing, true) => self.pass(1),
            (GateState::Recovering(n), true) => self.pass(n + 1),
        }
    }

    fn pass(&mut self, n: u32) -> Action {
        if n >= self.healthy_after {
            self.state = GateState::Healthy;
            Action::Renew
        } else {
            self.state = GateState::Recovering(n);
            Action::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_reports_once_and_recovery_needs_n_passes() {
        let mut g = Gate::new(2);
        assert_eq!(g.on_check(true), Action::Renew);
        assert_eq!(g.on_check(false), Action::ReportCritical);
        assert_eq!(g.on_check(false), Action::Skip, "critical is reported once");
        assert_eq!(g.on_check(true), Action::Skip, "one pass is not enough");
        assert_eq!(g.on_check(false), Action::Skip, "a flap resets the count");
        assert_eq!(g.on_check(true), Action::Skip);
        assert_eq!(g.on_check(true), Action::Renew);
        assert_eq!(g.state(), GateState::Healthy);
        let mut g = Gate::new(1);
        assert_eq!(g.on_check(false), Action::ReportCritical);
        assert_eq!(g.on_check(true), Action::Renew);
    }
}
