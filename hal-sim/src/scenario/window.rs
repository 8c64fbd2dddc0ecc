//! Judging a check over a window of time (`from` .. `until` in a `[[checks]]` entry) from
//! the run's history: how many servers reported themselves active at once, how often the
//! active server changed, and how a client's requests sent in the window were answered.
//! It reads only records (roles as the servers reported them, requests as the clients'
//! libraries sent them, answers as their applications were told), so it judges the same
//! whatever ran the scenario. It does not ask the servers anything: instant checks do.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hal_core::record::{ClientEventRecord, Entry, OpName, Record, RoleName};

use super::{Check, ClientGroup};

/// Requests named in a message, at most.
const NAMED_MAX: usize = 3;

/// One assertion of a window, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub met: bool,
    pub expected: String,
    pub saw: String,
}

/// Judges every assertion of `check`'s window over `history` (the run's lines so far,
/// read once the window's requests have had their time). `groups` are the scenario's
/// clients, to tell a group's members.
pub fn judge(check: &Check, history: &[String], groups: &[ClientGroup]) -> Vec<Judgement> {
    let Some(window) = &check.window else {
        return Vec::new();
    };
    let records: Vec<Record> = history
        .iter()
        .filter_map(|line| serde_json::from_str::<Entry>(line).ok())
        .map(|entry| entry.record)
        .collect();
    let span = Span {
        from: ms(window.from),
        until: ms(check.at),
    };
    let mut judged = Vec::new();
    if let Some(most) = window.active_max {
        judged.push(active_at_once(&records, span, most));
    }
    if let Some(most) = window.active_changes_max {
        judged.push(active_changes(&records, span, most));
    }
    if let Some(client) = &window.client {
        let requests = requests(&records, span, &members(client, groups));
        if let Some(allowed) = &window.denied_only {
            judged.push(denied_only(client, &requests, span, allowed));
        }
        if let Some(within) = window.answered_within {
            judged.push(answered_within(client, &requests, span, ms(within)));
        }
    }
    judged
}

/// The window, in ms of simulated time, both ends included.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: u64,
    until: u64,
}

impl Span {
    fn contains(self, t: u64) -> bool {
        (self.from..=self.until).contains(&t)
    }

    fn text(self) -> String {
        format!("from {} to {}", secs(self.from), secs(self.until))
    }
}

/// The servers' role records, in order: (time, server, role).
fn roles(records: &[Record]) -> impl Iterator<Item = (u64, u8, RoleName)> + '_ {
    records.iter().filter_map(|r| match r {
        Record::Role(role) => Some((role.t_ms, role.server, role.role)),
        _ => None,
    })
}

fn active_at_once(records: &[Record], span: Span, most: u32) -> Judgement {
    let mut active: BTreeSet<u8> = BTreeSet::new();
    // The most servers active at once in the window, when first, and which.
    let mut worst: Option<(usize, u64, BTreeSet<u8>)> = None;
    let mut roles = roles(records).peekable();
    let mut measure = |t: u64, active: &BTreeSet<u8>| {
        if span.contains(t) && worst.as_ref().is_none_or(|(n, _, _)| active.len() > *n) {
            worst = Some((active.len(), t, active.clone()));
        }
    };
    let mut measured_from = false;
    while let Some((t, server, role)) = roles.next() {
        if t > span.until {
            break;
        }
        if t >= span.from && !measured_from {
            // The state the window starts in.
            measure(span.from, &active);
            measured_from = true;
        }
        if role == RoleName::Active {
            active.insert(server);
        } else {
            active.remove(&server);
        }
        // Records of one instant are one change: a hand-over is not two active servers.
        if roles.peek().is_none_or(|(next, _, _)| *next != t) {
            measure(t.max(span.from), &active);
        }
    }
    if !measured_from {
        measure(span.from, &active);
    }
    let (count, t, which) = worst.unwrap_or_default();
    let expected = format!("{}, at most {most} server(s) active at once", span.text());
    let saw = match count {
        0 => "no server active".to_string(),
        _ => format!(
            "{count} active at once ({}) at {}",
            servers(&which),
            secs(t)
        ),
    };
    Judgement {
        met: u32::try_from(count).unwrap_or(u32::MAX) <= most,
        expected,
        saw,
    }
}

fn active_changes(records: &[Record], span: Span, most: u32) -> Judgement {
    let mut last: Option<u8> = None;
    let mut changes: Vec<(u64, u8, u8)> = Vec::new();
    for (t, server, role) in roles(records) {
        if t > span.until {
            break;
        }
        if role != RoleName::Active || last == Some(server) {
            continue;
        }
        if let Some(before) = last
            && span.contains(t)
        {
            changes.push((t, before, server));
        }
        last = Some(server);
    }
    let listed: Vec<String> = changes
        .iter()
        .map(|(t, a, b)| format!("#{a} to #{b} at {}", secs(*t)))
        .collect();
    let saw = match changes.len() {
        0 => "no change of the active server".to_string(),
        n => format!("{n} change(s): {}", listed.join(", ")),
    };
    Judgement {
        met: u32::try_from(changes.len()).unwrap_or(u32::MAX) <= most,
        expected: format!(
            "{}, the active server changes at most {most} time(s)",
            span.text()
        ),
        saw,
    }
}

/// The clients named `client`: the group's members, or the one client.
fn members(client: &str, groups: &[ClientGroup]) -> BTreeSet<String> {
    match groups.iter().find(|g| g.name == client) {
        Some(group) => group.members().into_iter().collect(),
        None => BTreeSet::from([client.to_string()]),
    }
}

/// How a request was answered, as the application was told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Granted,
    Done,
    Denied(String),
    Unknown,
}

/// A request a client sent in the window: who (its label: `alice`, or `alice.1` after a
/// restart), which, when first sent, and its answer with its time.
#[derive(Debug, Clone)]
struct Request {
    client: String,
    req: u64,
    sent_ms: u64,
    answer: Option<(u64, Answer)>,
}

impl Request {
    fn name(&self) -> String {
        format!("{} request {}", self.client, self.req)
    }
}

/// The requests (not heartbeats) that `members` first sent in the window, in the order
/// sent, with their answers.
fn requests(records: &[Record], span: Span, members: &BTreeSet<String>) -> Vec<Request> {
    let ours = |label: &str| members.contains(label.split('.').next().unwrap_or(label));
    let mut sent: BTreeMap<(String, u64), usize> = BTreeMap::new();
    let mut found: Vec<Request> = Vec::new();
    for record in records {
        match record {
            Record::Request(r) if r.op != OpName::Heartbeat && ours(&r.client) => {
                let key = (r.client.clone(), r.req);
                if sent.contains_key(&key) || !span.contains(r.t_ms) {
                    // A resend, or sent outside the window (a later resend of a request
                    // first sent before it is not the window's).
                    sent.entry(key).or_insert(usize::MAX);
                    continue;
                }
                sent.insert(key, found.len());
                found.push(Request {
                    client: r.client.clone(),
                    req: r.req,
                    sent_ms: r.t_ms,
                    answer: None,
                });
            }
            Record::Client(c) if ours(&c.client) => {
                let (req, answer) = match &c.event {
                    ClientEventRecord::Granted { req, .. } => (*req, Answer::Granted),
                    ClientEventRecord::Released { req, .. } => (*req, Answer::Done),
                    ClientEventRecord::Denied { req, reason, .. } => {
                        (*req, Answer::Denied(reason.clone()))
                    }
                    ClientEventRecord::Unknown { req, .. } => (*req, Answer::Unknown),
                    _ => continue,
                };
                let at = sent.get(&(c.client.clone(), req)).copied();
                if let Some(request) = at.and_then(|i| found.get_mut(i))
                    && request.answer.is_none()
                {
                    request.answer = Some((c.t_ms, answer));
                }
            }
            _ => {}
        }
    }
    found
}

fn denied_only(client: &str, requests: &[Request], span: Span, allowed: &[String]) -> Judgement {
    let expected = format!(
        "{}, {client}'s requests denied only for {}",
        span.text(),
        allowed.join(", ")
    );
    let wrong: Vec<String> = requests
        .iter()
        .filter_map(|r| match &r.answer {
            Some((t, Answer::Denied(reason))) if !allowed.contains(reason) => {
                Some(format!("{} denied {reason} at {}", r.name(), secs(*t)))
            }
            Some((t, Answer::Unknown)) if !allowed.iter().any(|a| a == "unknown") => {
                Some(format!("{} of unknown outcome at {}", r.name(), secs(*t)))
            }
            _ => None,
        })
        .collect();
    let denied = requests
        .iter()
        .filter(|r| matches!(r.answer, Some((_, Answer::Denied(_) | Answer::Unknown))))
        .count();
    let (met, saw) = match (requests.len(), wrong.len()) {
        (0, _) => (false, format!("no request of {client} sent in the window")),
        (sent, 0) => (
            true,
            format!("{sent} requests, {denied} denied, all as allowed"),
        ),
        (sent, n) => (
            false,
            format!("{sent} requests, {n} answered otherwise: {}", first(&wrong)),
        ),
    };
    Judgement { met, expected, saw }
}

fn answered_within(client: &str, requests: &[Request], span: Span, within_ms: u64) -> Judgement {
    let expected = format!(
        "{}, each of {client}'s requests answered within {}",
        span.text(),
        humantime::format_duration(Duration::from_millis(within_ms))
    );
    let late: Vec<String> = requests
        .iter()
        .filter_map(|r| match &r.answer {
            Some((t, _)) if t - r.sent_ms <= within_ms => None,
            Some((t, _)) => Some(format!(
                "{} sent at {} answered after {}",
                r.name(),
                secs(r.sent_ms),
                secs(t - r.sent_ms)
            )),
            None => Some(format!(
                "{} sent at {} not answered",
                r.name(),
                secs(r.sent_ms)
            )),
        })
        .collect();
    let slowest = requests
        .iter()
        .filter_map(|r| r.answer.as_ref().map(|(t, _)| t - r.sent_ms))
        .max()
        .unwrap_or(0);
    let (met, saw) = match (requests.len(), late.len()) {
        (0, _) => (false, format!("no request of {client} sent in the window")),
        (sent, 0) => (
            true,
            format!(
                "{sent} requests, the slowest answered after {}",
                secs(slowest)
            ),
        ),
        (sent, n) => (
            false,
            format!("{sent} requests, {n} not in time: {}", first(&late)),
        ),
    };
    Judgement { met, expected, saw }
}

/// The first few of `items`, and how many more.
fn first(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(NAMED_MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED_MAX {
        text.push_str(&format!("; and {} more", items.len() - NAMED_MAX));
    }
    text
}

fn servers(which: &BTreeSet<u8>) -> String {
    which
        .iter()
        .map(|s| format!("#{s}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Window;

    fn role(t: u64, server: u8, role: &str) -> String {
        format!(r#"{{"t_ms":{t},"kind":"role","server":{server},"role":"{role}","term":1}}"#)
    }

    fn window_check(from: u64, until: u64, window: Window) -> Check {
        Check {
            at: Duration::from_millis(until),
            window: Some(Window {
                from: Duration::from_millis(from),
                ..window
            }),
            ..Check::default()
        }
    }

    #[test]
    fn two_servers_active_at_once_is_seen_and_a_hand_over_is_not() {
        let history = vec![
            role(100, 1, "active"),
            // A hand-over in one instant: one active at a time.
            role(2_000, 1, "standby"),
            role(2_000, 2, "active"),
            // #1 believes itself active while #2 still does.
            role(5_000, 1, "active"),
            role(5_400, 2, "standby"),
        ];
        let most_one = Window {
            active_max: Some(1),
            ..Window::default()
        };
        let judged = judge(&window_check(0, 4_000, most_one.clone()), &history, &[]);
        assert!(judged[0].met, "{judged:?}");
        let judged = judge(&window_check(0, 6_000, most_one.clone()), &history, &[]);
        assert!(!judged[0].met, "{judged:?}");
        assert_eq!(judged[0].saw, "2 active at once (#1 and #2) at 5.000 s");
        // A window that starts inside the overlap sees it from its start.
        let judged = judge(&window_check(5_200, 6_000, most_one), &history, &[]);
        assert_eq!(judged[0].saw, "2 active at once (#1 and #2) at 5.200 s");
    }

    #[test]
    fn changes_of_the_active_server_are_counted_in_the_window_only() {
        let history = vec![
            role(100, 1, "active"),
            role(2_000, 1, "down"),
            role(3_000, 2, "active"),
            role(9_000, 2, "standby"),
            role(9_000, 1, "active"),
            // The same server again is no change.
            role(12_000, 1, "standby"),
            role(13_000, 1, "active"),
        ];
        let changes = |from, until, most| {
            let window = Window {
                active_changes_max: Some(most),
                ..Window::default()
            };
            judge(&window_check(from, until, window), &history, &[]).remove(0)
        };
        let all = changes(0, 20_000, 1);
        assert!(!all.met);
        assert_eq!(
            all.saw,
            "2 change(s): #1 to #2 at 3.000 s, #2 to #1 at 9.000 s"
        );
        assert!(changes(0, 20_000, 2).met);
        assert!(changes(4_000, 20_000, 1).met);
        assert_eq!(
            changes(10_000, 20_000, 0).saw,
            "no change of the active server"
        );
    }

    fn request(t: u64, client: &str, req: u64, op: &str) -> String {
        format!(
            r#"{{"t_ms":{t},"kind":"request","client":"{client}","req":{req},"op":"{op}","server":1,"feature":"cad"}}"#
        )
    }

    fn denied(t: u64, client: &str, req: u64, reason: &str) -> String {
        format!(
            r#"{{"t_ms":{t},"kind":"client","client":"{client}","event":"denied","req":{req},"reason":"{reason}","attempts":1}}"#
        )
    }

    fn granted(t: u64, client: &str, req: u64) -> String {
        format!(
            r#"{{"t_ms":{t},"kind":"client","client":"{client}","event":"granted","req":{req},"feature":"cad","handle":"h1","server":1,"attempts":1}}"#
        )
    }

    #[test]
    fn a_groups_requests_are_judged_by_their_answers() {
        let groups = [ClientGroup {
            name: "eng".into(),
            count: Some(2),
            path: Vec::new(),
            line: 1,
        }];
        let history = vec![
            // Before the window: not judged.
            request(500, "eng1", 1, "checkout"),
            denied(600, "eng1", 1, "no_majority"),
            request(1_000, "eng1", 2, "checkout"),
            request(1_000, "eng2", 1, "checkout"),
            request(1_100, "eng2", 1, "heartbeat"),
            // A resend of eng1's request 2 is the same request.
            request(2_000, "eng1", 2, "checkout"),
            granted(2_500, "eng1", 2),
            denied(4_000, "eng2", 1, "all_in_use"),
            // Someone else's.
            request(1_500, "alice", 1, "checkout"),
            denied(1_600, "alice", 1, "no_majority"),
            // After a restart, eng2 is eng2.1.
            request(5_000, "eng2.1", 1, "checkout"),
        ];
        let window = Window {
            client: Some("eng".into()),
            denied_only: Some(vec!["all_in_use".into()]),
            answered_within: Some(Duration::from_secs(2)),
            ..Window::default()
        };
        let judged = judge(&window_check(800, 6_000, window), &history, &groups);
        let [denials, timely] = &judged[..] else {
            panic!("{judged:?}");
        };
        assert!(denials.met, "{denials:?}");
        assert_eq!(denials.saw, "3 requests, 1 denied, all as allowed");
        assert!(!timely.met);
        assert_eq!(
            timely.saw,
            "3 requests, 2 not in time: eng2 request 1 sent at 1.000 s answered after 3.000 s; eng2.1 request 1 sent at 5.000 s not answered"
        );
        let strict = Window {
            client: Some("eng".into()),
            denied_only: Some(vec!["no_majority".into()]),
            ..Window::default()
        };
        let judged = judge(&window_check(0, 6_000, strict), &history, &groups);
        assert!(!judged[0].met);
        assert_eq!(
            judged[0].saw,
            "4 requests, 1 answered otherwise: eng2 request 1 denied all_in_use at 4.000 s"
        );
        let idle = Window {
            client: Some("eng".into()),
            answered_within: Some(Duration::from_secs(2)),
            ..Window::default()
        };
        let judged = judge(&window_check(7_000, 9_000, idle), &history, &groups);
        assert!(!judged[0].met, "nothing sent is not a pass");
    }
}
