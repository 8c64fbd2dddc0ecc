//! Refused requests: checkouts and borrows that got no seat, each counted once.
//!
//! A client retries one request (its client id and `req`) on several servers: a standby
//! answers `not_active`, a server without a majority `no_majority`, and the active one
//! grants or refuses; every answer is a `served` record. So the records are grouped by
//! request, and a request counts once, under one reason: not at all if any server
//! granted it; else under the last final refusal it got (`all_in_use`,
//! `borrow_not_allowed`, `license_expired`, ...); else (no server could serve it) under
//! the last "try elsewhere" answer (`no_majority` or `not_active`), "last" and the date
//! both on the reference clock. It is dated by that answer. Requests whose feature the server no longer knew (its memory of pending
//! requests is bounded) are left out.

use std::collections::BTreeMap;

use hal_core::record::{OpName, Record, ResultName, Served};

use super::Window;
use super::aligned::Aligned;

/// An answer and its time on the reference clock.
type Answer<'a> = (&'a Served, u64);

/// What became of one request, so far.
#[derive(Debug, Default)]
struct Fate<'a> {
    granted: bool,
    /// The last final refusal, and the last "try elsewhere" one.
    final_refusal: Option<Answer<'a>>,
    elsewhere: Option<Answer<'a>>,
}

/// Whether a refusal only says another server might serve the request.
fn try_elsewhere(reason: &str) -> bool {
    matches!(reason, "no_majority" | "not_active")
}

fn later<'a>(kept: Option<Answer<'a>>, new: Answer<'a>) -> Option<Answer<'a>> {
    match kept {
        Some(old) if old.1 > new.1 => Some(old),
        _ => Some(new),
    }
}

impl<'a> Fate<'a> {
    fn add(&mut self, answer: Answer<'a>) {
        let served = answer.0;
        match (&served.result, &served.reason) {
            (ResultName::Granted, _) => self.granted = true,
            (ResultName::Denied, Some(reason)) if try_elsewhere(reason) => {
                self.elsewhere = later(self.elsewhere, answer);
            }
            (ResultName::Denied, _) => self.final_refusal = later(self.final_refusal, answer),
            _ => {}
        }
    }

    /// The answer the request counts under, if it was refused.
    fn refusal(&self) -> Option<Answer<'a>> {
        if self.granted {
            return None;
        }
        self.final_refusal.or(self.elsewhere)
    }
}

/// Refused requests in the window: feature, then reason, then how many.
pub(super) fn count(
    aligned: &Aligned<'_>,
    window: &Window,
    wanted: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut requests: BTreeMap<(&str, u64), Fate<'_>> = BTreeMap::new();
    for (record, t_ms) in aligned.timed() {
        let Record::Served(served) = record else {
            continue;
        };
        let asks_a_seat = matches!(served.op, OpName::Checkout | OpName::Borrow);
        if asks_a_seat && served.feature.as_deref().is_some_and(wanted) {
            requests
                .entry((&served.client, served.req))
                .or_default()
                .add((served, t_ms));
        }
    }
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (refusal, t_ms) in requests.values().filter_map(Fate::refusal) {
        if !window.contains(t_ms) {
            continue;
        }
        let (Some(feature), Some(reason)) = (&refusal.feature, &refusal.reason) else {
            continue;
        };
        *counts
            .entry(feature.clone())
            .or_default()
            .entry(reason.clone())
            .or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::testing::J;
    use super::super::{Options, report};

    fn denials(journals: &[crate::journal::read::ServerJournal]) -> (u64, BTreeMap<String, u64>) {
        let report = report(journals, &Options::default()).unwrap();
        let cad = &report.features[0];
        (cad.denied_requests, cad.denials.clone())
    }

    #[test]
    fn a_request_retried_on_two_servers_counts_once_under_its_final_reason() {
        // alice's req 1: #2 (standby) sends her on, #1 refuses it: all seats in use.
        // bob's req 4: refused by #1, then by #2 after the failover: the same request.
        let one = J::new(1)
            .start(0)
            .served(1_010, "alice", 1, Some("all_in_use"))
            .served(2_000, "bob", 4, Some("all_in_use"));
        let two = J::new(2)
            .start(0)
            .served(1_000, "alice", 1, Some("not_active"))
            .served(2_500, "bob", 4, Some("all_in_use"));
        let (requests, by_reason) = denials(&[one.done(), two.done()]);
        assert_eq!(requests, 2);
        assert_eq!(by_reason, BTreeMap::from([("all_in_use".to_string(), 2)]));
    }

    #[test]
    fn a_request_granted_by_any_server_is_not_a_denial() {
        let one = J::new(1).start(0).served(1_010, "alice", 1, None);
        let two = J::new(2)
            .start(0)
            .served(1_000, "alice", 1, Some("not_active"));
        assert_eq!(denials(&[one.done(), two.done()]).0, 0);
    }

    #[test]
    fn a_request_no_server_could_serve_counts_under_the_last_answer() {
        // In a failover gap: #2 has no majority yet, #3 is a standby.
        let two = J::new(2)
            .start(0)
            .served(1_000, "carol", 7, Some("not_active"))
            .served(1_200, "carol", 7, Some("no_majority"));
        let three = J::new(3)
            .start(0)
            .served(1_100, "carol", 7, Some("not_active"));
        let (requests, by_reason) = denials(&[two.done(), three.done()]);
        assert_eq!(requests, 1);
        assert_eq!(by_reason, BTreeMap::from([("no_majority".to_string(), 1)]));
    }

    #[test]
    fn the_same_req_of_two_clients_is_two_requests() {
        let one = J::new(1)
            .start(0)
            .served(1_000, "alice", 1, Some("all_in_use"))
            .served(1_000, "bob", 1, Some("all_in_use"));
        assert_eq!(denials(&[one.done()]).0, 2);
    }

    #[test]
    fn a_refusal_outside_the_window_is_not_counted() {
        let one = J::new(1)
            .start(0)
            .served(1_000, "alice", 1, Some("all_in_use"))
            .served(5_000, "bob", 2, Some("all_in_use"))
            .stop(9_000);
        let options = Options {
            from_ms: Some(2_000),
            ..Options::default()
        };
        let report = report(&[one.done()], &options).unwrap();
        assert_eq!(report.features[0].denied_requests, 1);
    }
}
