//! History records as the lines of a readable timeline (`hal-sim replay`): simulated
//! time, faults, role changes, what the clients' applications saw, and each request sent
//! again on the wire: a retry after no answer, a redirect after "not active"
//! ([`crate::resend`]). Heartbeats are left out.

use hal_core::record::{
    ClientEventRecord, Entry, Expect, Fault, Impostor, LinkState, Meta, OpName, Party, Record,
    RoleName, SnapshotHow,
};

use crate::resend::Resends;

/// Turns records into timeline lines: one per application-level event, and one per
/// request sent again on the wire (`c4    checkout 12 redirected by #2 to #1`).
#[derive(Debug, Default)]
pub struct Timeline {
    resends: Resends,
}

impl Timeline {
    /// The line for the history line `line`, if the timeline shows it. A line that is
    /// not a record shows as such, with why.
    pub fn line(&mut self, line: &str) -> Option<String> {
        match serde_json::from_str::<Entry>(line) {
            Ok(entry) => self.record(&entry.record),
            Err(error) => Some(format!("        ?  not a history record ({error}): {line}")),
        }
    }

    /// The line for `record`, if the timeline shows it.
    pub fn record(&mut self, record: &Record) -> Option<String> {
        if let Some(resend) = self.resends.observe(record) {
            let at = at(record.t_ms().unwrap_or(0));
            return Some(format!("{at}  {:<5} {}", resend.client, resend.describe()));
        }
        describe(record)
    }
}

/// `at` for time `t_ms`: seconds and milliseconds, right-aligned.
fn at(t_ms: u64) -> String {
    format!("{:>4}.{:03}s", t_ms / 1000, t_ms % 1000)
}

/// Servers as `#1 #2`; a client machine by its name.
fn parties(side: &[Party]) -> String {
    side.iter()
        .map(|party| match party {
            Party::Server(id) => format!("#{id}"),
            Party::Client(name) => format!("client {name}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "request 7", and how many sends it took when more than one: "request 7, 3 sends"
/// (each redirect, retry or resend is one more).
fn request(req: u64, attempts: u32) -> String {
    if attempts > 1 {
        format!("request {req}, {attempts} sends")
    } else {
        format!("request {req}")
    }
}

/// One record as a timeline line, or `None` for records the timeline leaves out.
fn describe(record: &Record) -> Option<String> {
    let at = at(record.t_ms().unwrap_or(0));
    let text = match record {
        Record::Meta(meta) => meta_line(meta),
        Record::Fault(fault) => fault_line(&at, fault),
        Record::Role(role) => {
            let name = match role.role {
                RoleName::Active => "active",
                RoleName::Standby => "standby",
                RoleName::Down => "down",
            };
            format!("{at}  ROLE   #{} {name} (term {})", role.server, role.term)
        }
        Record::Client(client) => client_line(&at, &client.client, &client.event)?,
        Record::Request(request) if request.op == OpName::Checkin => format!(
            "{at}  {:<5} checks in {}",
            request.client,
            request.handle.as_deref().unwrap_or("")
        ),
        Record::Impostor(impostor) => impostor_line(&at, impostor),
        Record::Expect(expect) => expect_line(&at, expect),
        // Only snapshots installed: those taken are routine, one every few dozen entries.
        Record::Checkpoint(checkpoint) if checkpoint.snapshot == SnapshotHow::Installed => {
            format!(
                "{at}  SNAP   #{} installed a snapshot at index {} (state {})",
                checkpoint.server, checkpoint.index, checkpoint.digest
            )
        }
        Record::End(_) => format!("{at}  end of the run"),
        _ => return None,
    };
    Some(text)
}

fn meta_line(meta: &Meta) -> String {
    // The features as the record writes them (`{"cad":{"count":5,"hal":true}}`).
    let features = serde_json::to_string(&meta.features).unwrap_or_default();
    let seed = meta
        .seed
        .map_or_else(|| "null".to_string(), |seed| seed.to_string());
    let text = format!(
        "seed {seed}: features {features}, lease {} ms, election timeout {} ms",
        meta.lease_ms, meta.election_timeout_ms
    );
    match &meta.scenario {
        Some(name) => format!("{name}\n{text}"),
        None => text,
    }
}

fn fault_line(at: &str, fault: &Fault) -> String {
    let mut text = format!("{at}  FAULT  {}", fault_text(fault));
    if let Some(cause) = &fault.cause {
        text.push_str(&format!(" ({cause})"));
    }
    text
}

/// A fault in words, its cause left out: `link #1 | #3 slow latency=300 ms`.
pub(crate) fn fault_text(fault: &Fault) -> String {
    let (a, b) = (parties(&fault.a), parties(&fault.b));
    let name = fault.fault.name();
    let mut text = if b.is_empty() {
        format!("{name} {a}")
    } else {
        format!("{name} {a} | {b}")
    };
    if let Some(state) = fault.state {
        text.push_str(match state {
            LinkState::Normal => " normal",
            LinkState::Slow => " slow",
            LinkState::Flapping => " flapping",
        });
    }
    if let Some(latency) = fault.latency_ms {
        text.push_str(&format!(" latency={latency} ms"));
    }
    if let Some(offset) = fault.offset_ms {
        text.push_str(&format!(" offset={offset} ms"));
    }
    if let Some(drift) = fault.drift_ppm {
        text.push_str(&format!(" drift={drift} ppm"));
    }
    text
}

/// What a client's application was told, or `None` where its request line says it.
fn client_line(at: &str, client: &str, event: &ClientEventRecord) -> Option<String> {
    let text = match event {
        ClientEventRecord::Granted {
            req,
            handle,
            server,
            attempts,
            ..
        } => format!(
            "{at}  {client:<5} granted {handle} by #{server} ({})",
            request(*req, *attempts)
        ),
        ClientEventRecord::Denied {
            req,
            reason,
            attempts,
        } => format!(
            "{at}  {client:<5} denied: {reason} ({})",
            request(*req, *attempts)
        ),
        ClientEventRecord::Unknown {
            req,
            attempts,
            reason: Some(reason),
        } => format!(
            "{at}  {client:<5} outcome unknown: no answer in time, the last a refusal ({reason}) ({})",
            request(*req, *attempts)
        ),
        ClientEventRecord::Unknown {
            req,
            attempts,
            reason: None,
        } => format!(
            "{at}  {client:<5} outcome unknown: no answer in time ({})",
            request(*req, *attempts)
        ),
        ClientEventRecord::Resolved {
            req,
            handle: Some(handle),
        } => format!("{at}  {client:<5} settled request {req}: released {handle}"),
        ClientEventRecord::Resolved { req, handle: None } => {
            format!("{at}  {client:<5} settled request {req}: nothing to release")
        }
        // A checkin or return: its request line says so already, unless it took more
        // than one send.
        ClientEventRecord::Released { attempts, .. } if *attempts <= 1 => return None,
        ClientEventRecord::Released {
            req,
            handle,
            attempts,
        } => format!(
            "{at}  {client:<5} released {handle} ({})",
            request(*req, *attempts)
        ),
        ClientEventRecord::Lost { handle } => other(at, client, "lost", handle.as_deref()),
        ClientEventRecord::Removed { handle } => other(at, client, "removed", handle.as_deref()),
        ClientEventRecord::BorrowEnd { handle } => {
            other(at, client, "borrow_end", handle.as_deref())
        }
        ClientEventRecord::Stopped { handle } => other(at, client, "stopped", handle.as_deref()),
        ClientEventRecord::Crashed { handle } => other(at, client, "crashed", handle.as_deref()),
        ClientEventRecord::Frozen { handle } => other(at, client, "frozen", handle.as_deref()),
        ClientEventRecord::Thawed { handle } => other(at, client, "thawed", handle.as_deref()),
        ClientEventRecord::Skipped { line, held } => format!(
            "{at}  {client:<5} skips line {line}: it holds {}",
            if *held { "such a seat" } else { "no such seat" }
        ),
    };
    Some(text)
}

/// An event about a seat, by its name in the history: `c4    lost h17`.
fn other(at: &str, client: &str, event: &str, handle: Option<&str>) -> String {
    let handle = handle.unwrap_or("");
    format!("{at}  {client:<5} {event} {handle}")
}

fn impostor_line(at: &str, impostor: &Impostor) -> String {
    let result = match impostor.result.as_str() {
        "welcomed" => "WELCOMED",
        other => other,
    };
    let mut text = format!(
        "{at}  IMPOSTOR claims #{} to #{}: {result}",
        impostor.claimed, impostor.server
    );
    if let Some(reason) = &impostor.reason {
        text.push_str(&format!(" ({reason})"));
    }
    if let Some(term) = impostor.term {
        text.push_str(&format!(
            "; sent a forged snapshot (no seats) and append at term {term}"
        ));
    }
    text
}

fn expect_line(at: &str, expect: &Expect) -> String {
    let verdict = if expect.met { "[met]    " } else { "[NOT MET]" };
    format!(
        "{at}  {verdict} line {}: {} — {}",
        expect.line, expect.expected, expect.saw
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_fault_shows_its_state_and_latency() {
        let mut fault = Fault::new(
            12_300,
            hal_core::record::FaultKind::Link,
            vec![Party::Server(1)],
            vec![Party::Server(3)],
        );
        fault.state = Some(LinkState::Slow);
        fault.latency_ms = Some(300);
        let line = Timeline::default().record(&Record::Fault(fault));
        assert_eq!(
            line.as_deref(),
            Some("  12.300s  FAULT  link #1 | #3 slow latency=300 ms")
        );
    }

    #[test]
    fn a_checkin_retried_on_the_wire_shows_as_a_retry() {
        let checkin = r#"{"kind":"request","t_ms":5,"client":"c4","req":2,"op":"checkin","server":1,"handle":"h17"}"#;
        let mut timeline = Timeline::default();
        assert_eq!(
            timeline.line(checkin).as_deref(),
            Some("   0.005s  c4    checks in h17")
        );
        let again = checkin.replace(r#""t_ms":5"#, r#""t_ms":1205"#);
        assert_eq!(
            timeline.line(&again).as_deref(),
            Some("   1.205s  c4    checkin 2 retried to #1 (no answer from #1 after 1.2 s)")
        );
    }

    #[test]
    fn a_checkout_redirected_shows_who_refused_and_where_it_went() {
        let mut timeline = Timeline::default();
        let lines = [
            r#"{"kind":"request","t_ms":0,"client":"c4","req":12,"op":"checkout","server":2,"feature":"cad"}"#,
            r#"{"kind":"reply","t_ms":3,"client":"c4","req":12,"server":2,"result":"denied","reason":"not_active"}"#,
            r#"{"kind":"request","t_ms":4,"client":"c4","req":12,"op":"checkout","server":1,"feature":"cad"}"#,
        ];
        let shown: Vec<String> = lines.iter().filter_map(|l| timeline.line(l)).collect();
        assert_eq!(
            shown,
            ["   0.004s  c4    checkout 12 redirected by #2 to #1"]
        );
    }

    #[test]
    fn a_line_that_is_not_a_record_shows_as_such() {
        let line = Timeline::default().line(r#"{"kind":"rumour","t_ms":5}"#);
        let line = line.unwrap_or_default();
        assert!(line.contains("not a history record"), "{line}");
        assert!(line.contains("rumour"), "{line}");
    }
}
