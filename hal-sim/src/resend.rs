//! Which `request` records of a history send a request again, and why: a retry after a
//! send went unanswered, a redirect after a server answered "not active", or a move on
//! after another refusal. Shared by the text timeline and the HTML page, so both tell the
//! same story from the same records.
//!
//! It reads requests and replies only (the wire), not what the application was told;
//! heartbeats are left out (they are resent on a schedule, not retried one by one), and so
//! are a waiting checkout's asks once it is queued (it asks again on a schedule too).

use std::collections::BTreeMap;

use hal_core::record::{Answer, OpName, Record, RequestRecord};

/// The most requests followed at once; past it the oldest are forgotten (a request that
/// is then sent again reads as a first send). A client has one request pending at a time,
/// so this bounds clients, not requests.
pub const PENDING_MAX: usize = 10_000;

/// A request sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resend {
    pub client: String,
    pub req: u64,
    pub op: OpName,
    /// The server it went to now (`None`: a path entry not yet known as a server).
    pub to: Option<u8>,
    pub why: Why,
}

/// Why a request was sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The previous send got no answer for `after_ms`.
    Unanswered { after_ms: u64, from: Option<u8> },
    /// Server `by` answered "not active".
    Redirected { by: u8 },
    /// Server `by` refused for another `reason` (`no_majority`, ...).
    Refused { by: u8, reason: String },
}

/// The last send of a request, and the refusal it got, if any.
#[derive(Debug)]
struct Sent {
    t_ms: u64,
    server: Option<u8>,
    refused: Option<(u8, String)>,
    /// Answered `queued`: a wait asks again on its schedule from then on.
    queued: bool,
}

/// Follows requests and replies; says of each request record whether it is a resend.
#[derive(Debug, Default)]
pub struct Resends {
    /// (client, req) → its last send.
    sent: BTreeMap<(String, u64), Sent>,
    /// (client, req) in the order first sent, to forget the oldest past [`PENDING_MAX`].
    order: std::collections::VecDeque<(String, u64)>,
}

impl Resends {
    /// Follows one record; a request record that sends a request again gives its resend.
    pub fn observe(&mut self, record: &Record) -> Option<Resend> {
        match record {
            Record::Request(request) if request.op != OpName::Heartbeat => self.request(request),
            Record::Reply(reply) => {
                let sent = self.sent.get_mut(&(reply.client.clone(), reply.req))?;
                match &reply.answer {
                    Answer::Denied { reason } => {
                        sent.refused = Some((reply.server, reason.clone()))
                    }
                    Answer::Queued { .. } => sent.queued = true,
                    _ => {}
                }
                None
            }
            _ => None,
        }
    }

    fn request(&mut self, request: &RequestRecord) -> Option<Resend> {
        let key = (request.client.clone(), request.req);
        let queued = self.sent.get(&key).is_some_and(|s| s.queued);
        let now = Sent {
            t_ms: request.t_ms,
            server: request.server,
            refused: None,
            queued,
        };
        let Some(before) = self.sent.insert(key.clone(), now) else {
            self.order.push_back(key);
            if self.order.len() > PENDING_MAX
                && let Some(oldest) = self.order.pop_front()
            {
                self.sent.remove(&oldest);
            }
            return None;
        };
        if before.queued && before.refused.is_none() {
            return None;
        }
        let why = match before.refused {
            Some((by, reason)) if reason == "not_active" => Why::Redirected { by },
            Some((by, reason)) => Why::Refused { by, reason },
            None => Why::Unanswered {
                after_ms: request.t_ms.saturating_sub(before.t_ms),
                from: before.server,
            },
        };
        Some(Resend {
            client: request.client.clone(),
            req: request.req,
            op: request.op,
            to: request.server,
            why,
        })
    }
}

impl Resend {
    /// The resend in words, after the client's name: `checkout 12 retried to #2 (no
    /// answer from #1 after 1.2 s)`, `checkout 12 redirected by #2 to #1`.
    pub fn describe(&self) -> String {
        let to = match self.to {
            Some(server) => format!("#{server}"),
            None => "a server not yet known".to_string(),
        };
        let op = op_name(self.op);
        let req = self.req;
        match &self.why {
            Why::Unanswered { after_ms, from } => {
                let from = from.map_or_else(|| "?".to_string(), |s| s.to_string());
                let after = if *after_ms < 1000 {
                    format!("{after_ms} ms")
                } else {
                    format!("{:.1} s", *after_ms as f64 / 1000.0)
                };
                format!("{op} {req} retried to {to} (no answer from #{from} after {after})")
            }
            Why::Redirected { by } => format!("{op} {req} redirected by #{by} to {to}"),
            Why::Refused { by, reason } => {
                format!("{op} {req} sent again to {to} (#{by} refused: {reason})")
            }
        }
    }
}

/// The operation as the timeline names it.
pub(crate) fn op_name(op: OpName) -> &'static str {
    match op {
        OpName::Checkout => "checkout",
        OpName::Checkin => "checkin",
        OpName::Heartbeat => "heartbeat",
        OpName::Borrow => "borrow",
        OpName::Return => "return",
        OpName::Remove => "remove",
        OpName::PushLicense => "push_license",
        OpName::PushOptions => "push_options",
        OpName::Wait => "wait",
        OpName::StopWaiting => "stop_waiting",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> Record {
        serde_json::from_str::<hal_core::record::Entry>(line)
            .map(|e| e.record)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn send(t: u64, server: u8) -> Record {
        record(&format!(
            r#"{{"kind":"request","t_ms":{t},"client":"c4","req":12,"op":"checkout","server":{server},"feature":"cad"}}"#
        ))
    }

    #[test]
    fn a_first_send_is_no_resend() {
        assert_eq!(Resends::default().observe(&send(0, 1)), None);
    }

    #[test]
    fn a_send_again_without_an_answer_is_a_retry_after_the_wait() {
        let mut resends = Resends::default();
        resends.observe(&send(1000, 1));
        let resend = resends.observe(&send(2200, 2)).map(|r| r.describe());
        assert_eq!(
            resend.as_deref(),
            Some("checkout 12 retried to #2 (no answer from #1 after 1.2 s)")
        );
    }

    #[test]
    fn a_send_after_not_active_is_a_redirect() {
        let mut resends = Resends::default();
        resends.observe(&send(0, 2));
        resends.observe(&record(
            r#"{"kind":"reply","t_ms":3,"client":"c4","req":12,"server":2,"result":"denied","reason":"not_active"}"#,
        ));
        let resend = resends.observe(&send(4, 1));
        assert_eq!(
            resend.map(|r| r.describe()).as_deref(),
            Some("checkout 12 redirected by #2 to #1")
        );
    }

    #[test]
    fn a_send_after_another_refusal_names_it() {
        let mut resends = Resends::default();
        resends.observe(&send(0, 2));
        resends.observe(&record(
            r#"{"kind":"reply","t_ms":3,"client":"c4","req":12,"server":2,"result":"denied","reason":"no_majority"}"#,
        ));
        let resend = resends.observe(&send(4, 3)).map(|r| r.why);
        assert_eq!(
            resend,
            Some(Why::Refused {
                by: 2,
                reason: "no_majority".to_string()
            })
        );
    }

    #[test]
    fn heartbeats_are_not_followed() {
        let beat = record(
            r#"{"kind":"request","t_ms":0,"client":"c4","req":3,"op":"heartbeat","server":1}"#,
        );
        let mut resends = Resends::default();
        assert_eq!(resends.observe(&beat), None);
        assert_eq!(resends.observe(&beat), None);
        assert!(resends.sent.is_empty());
    }
}
