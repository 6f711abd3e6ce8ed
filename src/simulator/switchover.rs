//! The IP switch-over of an online task as the real API reports it (`dcs-api.md` §12): the
//! top-level `task_status` reads `EXCHANGING` for one phase while an exchange or a rollback runs,
//! then `EXCHANGE_SUCCESS` / `ROLLBACK_SUCCESS` (or `EXCHANGE_FAILED` / `ROLLBACK_FAILED` when a
//! `switchFailRate` fault doomed it) until the next switch begins. Whether the instances report
//! each other's IP after an exchange is a simulator setting (`--swap-ips`): nothing public says
//! what the real API does.

use jiff::Timestamp;
use serde::Serialize;

/// Exchange or rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchKind {
    Exchange,
    Rollback,
}

/// A switch under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub kind: SwitchKind,
    /// When it ends; `task_status` reads `EXCHANGING` until then.
    pub until: Timestamp,
    /// It ends in `EXCHANGE_FAILED` / `ROLLBACK_FAILED` (and changes nothing).
    pub fails: bool,
}

impl Switch {
    /// The word `task_status` keeps after this switch ended.
    fn outcome(self) -> &'static str {
        match (self.kind, self.fails) {
            (SwitchKind::Exchange, false) => "EXCHANGE_SUCCESS",
            (SwitchKind::Exchange, true) => "EXCHANGE_FAILED",
            (SwitchKind::Rollback, false) => "ROLLBACK_SUCCESS",
            (SwitchKind::Rollback, true) => "ROLLBACK_FAILED",
        }
    }
}

/// What the IP switch-over API did to a task (reported under `switchovers` in `/_sim/state`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Switchover {
    /// True after a successful exchange, false again after a successful rollback.
    pub exchanged: bool,
    /// Number of accepted exchange-ip calls.
    pub exchanges: u32,
    /// Number of accepted rollback-ip calls.
    pub rollbacks: u32,
    /// The `exchanged_ip` of the last exchange.
    pub exchanged_ips: Vec<String>,
    /// The `is_exchange_domain` of the last exchange.
    pub exchange_domain: bool,
    /// The word of the last switch that ended (`EXCHANGE_SUCCESS`, …).
    pub outcome: Option<&'static str>,
    /// Whether the instances report each other's IP after an exchange.
    pub swaps_ips: bool,
    #[serde(skip)]
    pub running: Option<Switch>,
}

/// The log line a switch writes when it ends: level, code and message.
pub type SwitchLog = (&'static str, &'static str, &'static str);

impl Switchover {
    /// Starts a switch that ends at `until`.
    pub fn begin(&mut self, kind: SwitchKind, until: Timestamp, fails: bool) {
        match kind {
            SwitchKind::Exchange => self.exchanges += 1,
            SwitchKind::Rollback => self.rollbacks += 1,
        }
        self.running = Some(Switch { kind, until, fails });
    }

    /// True while a switch runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Ends the running switch if it is due by `now`: when and with which log line.
    pub fn finish_due(&mut self, now: Timestamp) -> Option<(Timestamp, SwitchLog)> {
        let switch = self.running.filter(|s| s.until <= now)?;
        self.running = None;
        self.outcome = Some(switch.outcome());
        let log = match (switch.kind, switch.fails) {
            (_, true) => ("ERROR", "MIGRATION_IP_SWITCH_FAILED", "The IP address switch-over failed."),
            (SwitchKind::Exchange, false) => {
                self.exchanged = true;
                ("INFO", "MIGRATION_IP_SWITCH_DONE", "The IP address switch-over has finished.")
            }
            (SwitchKind::Rollback, false) => {
                self.exchanged = false;
                ("INFO", "MIGRATION_IP_ROLLBACK_DONE", "The IP address rollback has finished.")
            }
        };
        Some((switch.until, log))
    }

    /// The top-level `task_status`: `EXCHANGING` while a switch runs, else the last outcome.
    pub fn task_status(&self) -> Option<&'static str> {
        if self.is_running() { Some("EXCHANGING") } else { self.outcome }
    }

    /// The instances' own `task_status`: `EXCHANGING` while a switch runs, else `RUNNING`.
    pub fn instance_status(&self) -> &'static str {
        if self.is_running() { "EXCHANGING" } else { "RUNNING" }
    }

    /// True when the instances report each other's IP.
    pub fn ips_swapped(&self) -> bool {
        self.swaps_ips && self.exchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap().checked_add(Duration::from_secs(s)).unwrap()
    }

    #[test]
    fn task_status_reads_exchanging_then_the_outcome_until_the_next_switch() {
        let mut s = Switchover { swaps_ips: true, ..Switchover::default() };
        assert_eq!(s.task_status(), None);
        s.begin(SwitchKind::Exchange, at(2), false);
        assert_eq!(s.finish_due(at(1)), None);
        assert_eq!((s.task_status(), s.instance_status()), (Some("EXCHANGING"), "EXCHANGING"));
        assert_eq!(s.finish_due(at(5)).map(|(t, _)| t), Some(at(2)));
        assert_eq!((s.task_status(), s.instance_status()), (Some("EXCHANGE_SUCCESS"), "RUNNING"));
        assert!(s.ips_swapped());
        s.begin(SwitchKind::Rollback, at(7), false);
        assert_eq!(s.task_status(), Some("EXCHANGING"));
        s.finish_due(at(7));
        assert_eq!(s.task_status(), Some("ROLLBACK_SUCCESS"));
        assert!(!s.ips_swapped());
        assert_eq!((s.exchanges, s.rollbacks), (1, 1));
    }

    #[test]
    fn a_doomed_switch_ends_failed_and_changes_nothing() {
        let mut s = Switchover::default();
        s.begin(SwitchKind::Exchange, at(1), true);
        let (_, (level, _, _)) = s.finish_due(at(1)).unwrap();
        assert_eq!((level, s.task_status(), s.exchanged), ("ERROR", Some("EXCHANGE_FAILED"), false));
        s.exchanged = true;
        s.begin(SwitchKind::Rollback, at(2), true);
        s.finish_due(at(2));
        assert_eq!((s.task_status(), s.exchanged), (Some("ROLLBACK_FAILED"), true));
    }

    #[test]
    fn ips_swap_only_when_the_simulator_is_told_to() {
        let mut s = Switchover { swaps_ips: false, ..Switchover::default() };
        s.begin(SwitchKind::Exchange, at(1), false);
        s.finish_due(at(1));
        assert!(s.exchanged && !s.ips_swapped());
    }
}
