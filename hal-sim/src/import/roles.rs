//! Who was active when: in the field, from the `role` records and the servers' ends (a
//! killed active server writes no "standby"); in a simulated run, from its history. The
//! sequence of active servers is what an imported scenario must replay; the stable
//! stretches between changes become `[[checks]]` of the active server.

use hal_core::record::{Entry, Record, RoleName};

use super::field::Field;
use super::window::Window;

/// A stretch of true time with one active server (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from_ms: u64,
    /// Exclusive; `u64::MAX`: to the end of the journals.
    pub to_ms: u64,
    pub active: Option<u8>,
    pub term: u64,
}

/// The field's periods, from the first record on.
pub fn periods(field: &Field) -> Vec<Period> {
    // (time, server, Some(term) = became active; None = stopped being active)
    let mut changes: Vec<(u64, u8, Option<u64>)> = Vec::new();
    for event in &field.events {
        if let Record::Role(role) = &event.record {
            let term = (role.role == RoleName::Active).then_some(role.term);
            changes.push((event.t_ms, role.server, term));
        }
    }
    for life in field.lives.values().flatten() {
        if let Some(end) = life.end_ms() {
            changes.push((end, life.server, None));
        }
    }
    changes.sort_by_key(|(t, _, _)| *t);
    let start = field.events.first().map_or(0, |e| e.t_ms);
    let mut periods = vec![Period {
        from_ms: start,
        to_ms: u64::MAX,
        active: None,
        term: 0,
    }];
    for (t, server, became) in changes {
        let Some(current) = periods.last().copied() else {
            break;
        };
        let next = match became {
            // A stale claim (a lower term, read late) changes nothing.
            Some(term) if current.active.is_some() && term < current.term => continue,
            Some(term) => (Some(server), term),
            // Only the active server's step-down or end ends its period.
            None if current.active == Some(server) => (None, current.term),
            None => continue,
        };
        if next == (current.active, current.term) {
            continue;
        }
        if let Some(last) = periods.last_mut() {
            last.to_ms = t;
        }
        periods.push(Period {
            from_ms: t,
            to_ms: u64::MAX,
            active: next.0,
            term: next.1,
        });
    }
    periods.retain(|p| p.from_ms < p.to_ms);
    periods
}

/// The active server at true time `t_ms`.
pub fn active_at(periods: &[Period], t_ms: u64) -> Option<u8> {
    periods
        .iter()
        .find(|p| p.from_ms <= t_ms && t_ms < p.to_ms)
        .and_then(|p| p.active)
}

/// The servers that were active in the window, in order, each change once: the one
/// active at its start, then each that became active.
pub fn field_sequence(periods: &[Period], window: &Window) -> Vec<u8> {
    let mut sequence = Vec::new();
    for period in periods {
        if period.to_ms <= window.from_ms || period.from_ms > window.to_ms {
            continue;
        }
        if let Some(active) = period.active {
            push_changed(&mut sequence, active);
        }
    }
    sequence
}

/// The servers that were active in a simulated run, in order, each change once.
pub fn history_sequence(lines: &[String]) -> Vec<u8> {
    let mut sequence = Vec::new();
    for line in lines {
        if let Ok(Entry {
            record: Record::Role(role),
            ..
        }) = serde_json::from_str::<Entry>(line)
            && role.role == RoleName::Active
        {
            push_changed(&mut sequence, role.server);
        }
    }
    sequence
}

fn push_changed(sequence: &mut Vec<u8>, server: u8) {
    if sequence.last() != Some(&server) {
        sequence.push(server);
    }
}

/// "#1, #2, #1" (or "none").
pub fn show(sequence: &[u8]) -> String {
    if sequence.is_empty() {
        return "none".into();
    }
    sequence
        .iter()
        .map(|s| format!("#{s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_sequence_counts_each_change_once() {
        let lines: Vec<String> = [
            r#"{"kind":"meta","schema":2,"features":{},"lease_ms":1,"election_timeout_ms":1,"failover_delay_ms":1,"failback_hold_ms":1,"max_clock_skew_ms":1}"#,
            r#"{"kind":"role","t_ms":1000,"server":1,"role":"active","term":2}"#,
            r#"{"kind":"role","t_ms":5000,"server":1,"role":"down","term":0}"#,
            r#"{"kind":"role","t_ms":6500,"server":2,"role":"active","term":3}"#,
            r#"{"kind":"role","t_ms":6600,"server":2,"role":"active","term":4}"#,
            r#"{"kind":"role","t_ms":9000,"server":2,"role":"standby","term":5}"#,
            r#"{"kind":"role","t_ms":9001,"server":1,"role":"active","term":5}"#,
            "not json",
        ]
        .map(String::from)
        .into();
        assert_eq!(history_sequence(&lines), [1, 2, 1]);
        assert_eq!(show(&[1, 2, 1]), "#1, #2, #1");
        assert_eq!(show(&[]), "none");
    }
}
