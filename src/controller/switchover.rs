//! IP switch-over, read as the reference client reads it (dcs-api.md §12): the outcome is the
//! task's top-level `task_status` word (`EXCHANGING` under way, `EXCHANGE_SUCCESS` /
//! `ROLLBACK_SUCCESS` done, any `*FAIL*` word failed), whether or not the instances' IPs swap.
//!
//! One accepted call per request, ever. A request is recorded in status (`Sending`) before its
//! call; it is sent again only when it certainly never reached the API. Once its fate is
//! unknown (no readable answer, or a restart found it `Sending`) or it failed, only a new
//! request from the user sends another call: flipping `spec.switchover.rollback`, or raising
//! `spec.switchover.attempt`. Pure; tested as a table.

use super::conditions::Reason;
use crate::crd::{ServingSide, SwitchAction, SwitchState, SwitchoverSpec, SwitchoverStatus};
use crate::dcs::DcsError;

/// The top-level word while a switch runs.
const UNDER_WAY: &str = "EXCHANGING";

/// What the switch-over needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read the task's top-level `task_status` (the baseline of a new request, or an outcome).
    Look,
    /// Record this request in status, then send it.
    Request(SwitchAction),
    /// Send the request recorded in this very pass.
    Send(SwitchAction),
}

/// What the spec asks for.
pub fn wanted(spec: &SwitchoverSpec) -> SwitchAction {
    if spec.rollback { SwitchAction::Rollback } else { SwitchAction::Exchange }
}

/// The wire name of an action.
pub fn operation(action: SwitchAction) -> &'static str {
    match action {
        SwitchAction::Exchange => "exchange-ip",
        SwitchAction::Rollback => "rollback-ip",
    }
}

/// Decides the next switch-over step, once the migration is Ready. `word` is the top-level
/// `task_status` read in this pass (`None`: not read yet); `recorded_now` is true when the
/// request was recorded in this pass (so its call cannot have gone out yet).
pub fn need(
    spec: &SwitchoverSpec,
    record: Option<&SwitchoverStatus>,
    word: Option<&str>,
    recorded_now: bool,
) -> Option<Need> {
    let wanted = wanted(spec);
    let Some(record) = record.filter(|r| r.last_action.is_some()) else {
        // Nothing to roll back before any exchange.
        return (wanted == SwitchAction::Exchange).then(|| look_then(word, Need::Request(wanted)));
    };
    let last = record.last_action?;
    let state = record.state.unwrap_or(SwitchState::Unconfirmed);
    if state == SwitchState::Sending && recorded_now {
        return Some(Need::Send(last));
    }
    let asked_again = last == wanted && spec.attempt != record.attempt;
    let awaited = matches!(state, SwitchState::Sending | SwitchState::Sent);
    if awaited || (state == SwitchState::Unconfirmed && last == wanted && !asked_again) {
        // The outcome of the request out there comes first: read it until it is known.
        return word.is_none().then_some(Need::Look);
    }
    if state == SwitchState::NotSent {
        return Some(look_then(word, Need::Request(last)));
    }
    let serving = record.serving.unwrap_or(ServingSide::Source);
    let achieved = match wanted {
        SwitchAction::Exchange => serving == ServingSide::Target,
        SwitchAction::Rollback => serving == ServingSide::Source,
    };
    let new_request = last != wanted || asked_again;
    (new_request && !achieved).then(|| look_then(word, Need::Request(wanted)))
}

fn look_then(word: Option<&str>, then: Need) -> Need {
    if word.is_some() { then } else { Need::Look }
}

/// A request whose outcome the task has yet to tell.
fn pending(state: SwitchState) -> bool {
    matches!(state, SwitchState::Sending | SwitchState::Sent | SwitchState::Unconfirmed)
}

/// The record of a new request, written before its call. `word` is the top-level `task_status`
/// read just before (its baseline).
pub fn request(
    prior: Option<&SwitchoverStatus>,
    action: SwitchAction,
    attempt: i32,
    word: &str,
    now: &str,
) -> SwitchoverStatus {
    let prior = prior.cloned().unwrap_or_default();
    SwitchoverStatus {
        serving: prior.serving,
        actions: prior.actions + 1,
        last_action: Some(action),
        last_action_at: Some(now.to_owned()),
        attempt,
        state: Some(SwitchState::Sending),
        baseline: Some(word.to_owned()),
        under_way_seen: false,
        task_status: Some(word.to_owned()).filter(|w| !w.is_empty()),
        detail: None,
    }
}

/// The record after the request's call answered.
pub fn sent(record: &SwitchoverStatus, result: &Result<(), DcsError>) -> SwitchoverStatus {
    let mut next = record.clone();
    let (state, detail) = match result {
        Ok(()) => (SwitchState::Sent, None),
        // Never left this process, or refused at the gateway (throttled, credentials).
        Err(e) if e.certainly_not_applied() => (SwitchState::NotSent, Some(e.to_string())),
        // A 4xx refusal (or a request that cannot be built): it did not take effect, and the
        // same request would be refused again; the user asks anew.
        Err(e @ DcsError::InvalidRequest(_)) => (SwitchState::Failed, Some(e.to_string())),
        Err(e @ DcsError::Api { error, .. }) if (400..500).contains(&error.status) => {
            (SwitchState::Failed, Some(e.to_string()))
        }
        Err(e) => (SwitchState::Unconfirmed, Some(e.to_string())),
    };
    next.state = Some(state);
    next.detail = detail;
    next
}

/// The record after reading the task's top-level `task_status` word.
pub fn read(record: &SwitchoverStatus, word: &str) -> SwitchoverStatus {
    let mut next = record.clone();
    next.task_status = Some(word.to_owned()).filter(|w| !w.is_empty());
    let (Some(action), Some(state)) = (record.last_action, record.state) else { return next };
    if !pending(state) {
        return next;
    }
    let upper = word.to_ascii_uppercase();
    if upper == UNDER_WAY {
        next.under_way_seen = true;
        if state == SwitchState::Sending {
            // The call did reach the API.
            next.state = Some(SwitchState::Sent);
        }
        return next;
    }
    let fresh = record.under_way_seen || record.baseline.as_deref() != Some(word);
    let success = match action {
        SwitchAction::Exchange => "EXCHANGE_SUCCESS",
        SwitchAction::Rollback => "ROLLBACK_SUCCESS",
    };
    if fresh && upper == success {
        next.state = Some(SwitchState::Succeeded);
        next.serving = Some(match action {
            SwitchAction::Exchange => ServingSide::Target,
            SwitchAction::Rollback => ServingSide::Source,
        });
        next.detail = None;
    } else if fresh && upper.contains("FAIL") {
        next.state = Some(SwitchState::Failed);
        next.detail = Some(format!("the task reports {word}"));
    } else if state == SwitchState::Sending {
        // Found after a restart with no sign that the call reached the API.
        next.state = Some(SwitchState::Unconfirmed);
        next.detail = Some("the operator stopped while sending it".to_owned());
    }
    next
}

/// The `SwitchedOver` condition: value, reason and message.
pub fn condition(record: Option<&SwitchoverStatus>) -> (bool, Reason, String) {
    let Some(record) = record.filter(|r| r.last_action.is_some()) else {
        return (false, Reason::Pending, "the switch-over waits for the migration to be Ready".to_owned());
    };
    let op = record.last_action.map(operation).unwrap_or_default();
    let word = record.task_status.as_deref().unwrap_or("none");
    let detail = record.detail.as_deref().unwrap_or_default();
    let serving_target = record.serving == Some(ServingSide::Target);
    match record.state.unwrap_or(SwitchState::Unconfirmed) {
        SwitchState::Succeeded if serving_target => {
            (true, Reason::SwitchedOver, format!("the target serves the source's addresses ({word})"))
        }
        SwitchState::Succeeded => {
            (false, Reason::RolledBack, format!("the source serves its addresses again ({word})"))
        }
        SwitchState::Sending | SwitchState::Sent => {
            (false, Reason::Switching, format!("{op} was sent; waiting for the task's outcome (task_status: {word})"))
        }
        SwitchState::NotSent => {
            (false, Reason::Switching, format!("{op} did not reach the API ({detail}); sending it again"))
        }
        SwitchState::Unconfirmed => (
            serving_target,
            Reason::SwitchUnconfirmed,
            format!(
                "cannot tell whether {op} reached the API ({detail}; task_status: {word}); it is never resent by \
                 itself: check the instances, then raise spec.switchover.attempt to send it again"
            ),
        ),
        SwitchState::Failed => (
            serving_target,
            Reason::SwitchFailed,
            format!("{op} failed: {detail}; raise spec.switchover.attempt to try again"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rollback: bool, attempt: i32) -> SwitchoverSpec {
        SwitchoverSpec { exchange_ips: vec![], exchange_domain: false, rollback, attempt }
    }

    fn record(action: SwitchAction, state: SwitchState, serving: Option<ServingSide>) -> SwitchoverStatus {
        SwitchoverStatus {
            serving,
            actions: 1,
            last_action: Some(action),
            state: Some(state),
            baseline: Some("".into()),
            ..Default::default()
        }
    }

    use SwitchAction::{Exchange, Rollback};
    use SwitchState::*;

    #[test]
    fn each_request_is_looked_at_recorded_and_sent_once() {
        let target = Some(ServingSide::Target);
        let source = Some(ServingSide::Source);
        /// spec, record, word read in this pass, recorded in this pass, what is needed.
        type Row = (SwitchoverSpec, Option<SwitchoverStatus>, Option<&'static str>, bool, Option<Need>);
        let table: Vec<Row> = vec![
            (spec(false, 0), None, None, false, Some(Need::Look)),
            (spec(false, 0), None, Some(""), false, Some(Need::Request(Exchange))),
            (spec(true, 0), None, Some(""), false, None),
            (spec(false, 0), Some(record(Exchange, Sending, None)), Some(""), true, Some(Need::Send(Exchange))),
            (spec(false, 0), Some(record(Exchange, Sending, None)), None, false, Some(Need::Look)),
            (spec(false, 0), Some(record(Exchange, Sending, None)), Some("X"), false, None),
            (spec(false, 0), Some(record(Exchange, Sent, None)), None, false, Some(Need::Look)),
            (spec(false, 0), Some(record(Exchange, Sent, None)), Some("EXCHANGING"), false, None),
            (spec(true, 0), Some(record(Exchange, Sent, None)), Some("EXCHANGING"), false, None),
            (spec(false, 0), Some(record(Exchange, Unconfirmed, None)), Some(""), false, None),
            (spec(false, 1), Some(record(Exchange, Unconfirmed, None)), None, false, Some(Need::Look)),
            (spec(false, 0), Some(record(Exchange, NotSent, None)), Some(""), false, Some(Need::Request(Exchange))),
            (spec(false, 0), Some(record(Exchange, Succeeded, target)), None, false, None),
            (spec(false, 1), Some(record(Exchange, Succeeded, target)), Some(""), false, None),
            (spec(true, 0), Some(record(Exchange, Succeeded, target)), Some("X"), false, Some(Need::Request(Rollback))),
            (spec(false, 0), Some(record(Exchange, Failed, None)), Some("X"), false, None),
            (spec(false, 1), Some(record(Exchange, Failed, None)), Some("X"), false, Some(Need::Request(Exchange))),
            (spec(true, 0), Some(record(Exchange, Failed, None)), Some("X"), false, None),
            (
                spec(false, 0),
                Some(record(Rollback, Succeeded, source)),
                Some("X"),
                false,
                Some(Need::Request(Exchange)),
            ),
            (spec(false, 0), Some(record(Rollback, Failed, target)), Some("X"), false, None),
        ];
        for (i, (spec, record, word, now, want)) in table.into_iter().enumerate() {
            assert_eq!(need(&spec, record.as_ref(), word, now), want, "row {i}");
        }
    }

    #[test]
    fn the_outcome_is_the_top_level_word_not_the_ips() {
        let sent = record(Exchange, Sent, None);
        assert_eq!(read(&sent, "EXCHANGING").state, Some(Sent));
        let done = read(&sent, "EXCHANGE_SUCCESS");
        assert_eq!((done.state, done.serving), (Some(Succeeded), Some(ServingSide::Target)));
        assert_eq!(read(&sent, "EXCHANGE_FAILED").state, Some(Failed));
        assert_eq!(read(&sent, "ROLLBACK_SUCCESS").state, Some(Sent), "another action's word is not this outcome");
        assert_eq!(read(&sent, "").state, Some(Sent));
        let rollback = record(Rollback, Sent, Some(ServingSide::Target));
        let back = read(&rollback, "ROLLBACK_SUCCESS");
        assert_eq!((back.state, back.serving), (Some(Succeeded), Some(ServingSide::Source)));
    }

    #[test]
    fn a_word_left_from_an_earlier_request_is_not_this_ones_outcome() {
        let mut retry = record(Exchange, Sent, None);
        retry.baseline = Some("EXCHANGE_FAILED".into());
        assert_eq!(read(&retry, "EXCHANGE_FAILED").state, Some(Sent));
        let seen = read(&retry, "EXCHANGING");
        assert_eq!(read(&seen, "EXCHANGE_FAILED").state, Some(Failed));
    }

    #[test]
    fn a_request_found_sending_after_a_restart_is_taken_from_the_task_or_left_unconfirmed() {
        let sending = record(Exchange, Sending, None);
        assert_eq!(read(&sending, "EXCHANGE_SUCCESS").state, Some(Succeeded));
        assert_eq!(read(&sending, "EXCHANGING").state, Some(Sent));
        assert_eq!(read(&sending, "").state, Some(Unconfirmed));
    }

    #[test]
    fn only_a_call_that_never_reached_the_api_is_sent_again() {
        use crate::dcs::error::ApiError;
        let sending = record(Exchange, Sending, None);
        assert_eq!(sent(&sending, &Ok(())).state, Some(Sent));
        let refused = DcsError::Api {
            operation: crate::dcs::Operation::ExchangeInstanceIp,
            error: ApiError { status: 400, code: "DCS.4957".into(), message: "state".into(), request_id: None },
        };
        let sent_state = |r: &SwitchoverStatus, e: DcsError| sent(r, &Err(e)).state;
        assert_eq!(sent_state(&sending, refused), Some(Failed));
        let network = |sent| DcsError::Network {
            operation: crate::dcs::Operation::ExchangeInstanceIp,
            detail: "reset".into(),
            sent,
        };
        assert_eq!(sent_state(&sending, network(true)), Some(Unconfirmed));
        assert_eq!(sent_state(&sending, network(false)), Some(NotSent));
    }

    #[test]
    fn the_condition_names_the_word_and_how_to_ask_again() {
        let (value, reason, message) = condition(Some(&read(&record(Exchange, Sent, None), "EXCHANGE_FAILED")));
        assert!(!value);
        assert_eq!(reason, Reason::SwitchFailed);
        assert!(message.contains("EXCHANGE_FAILED") && message.contains("spec.switchover.attempt"), "{message}");
        let (value, reason, _) = condition(Some(&record(Exchange, Succeeded, Some(ServingSide::Target))));
        assert!(value);
        assert_eq!(reason, Reason::SwitchedOver);
    }
}
