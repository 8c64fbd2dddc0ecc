//! The `reply` record: what a client got, typed by its result. A grant always names its
//! handle, lease and deciding server; a denial its reason; a heartbeat's answer the seats
//! held and unknown. A line that lacks what its result needs does not read (the error
//! says what is missing), so no reader has to assume a default.
//!
//! On the line the fields stay flat (`"result":"granted","handle":"h2",…`), as in schema
//! 1; [`ReplyFields`] is that flat form, converted on the way in and out.

use serde::{Deserialize, Serialize};

use super::ResultName;

/// A reply a client got from a server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ReplyFields")]
pub struct ReplyRecord {
    pub t_ms: u64,
    pub client: String,
    pub req: u64,
    /// The server that answered.
    pub server: u8,
    pub answer: Answer,
}

/// What the reply said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A seat (`result` granted).
    Granted(Grant),
    /// A checkin's or a borrow return's answer (`result` ok, with the handle).
    Released { handle: String },
    /// A heartbeat's answer (`result` ok, or unknown_handle when some seat is unknown).
    Heartbeat(HeartbeatAnswer),
    /// A refusal (`result` denied) by its reason (`no_majority`, `all_in_use`, …).
    Denied { reason: String },
    /// A checkin or return of a handle the server does not know (`result`
    /// unknown_handle, with the reason `unknown_handle`).
    UnknownHandle {
        handle: Option<String>,
        reason: String,
    },
    /// A wait in its feature's queue (`result` queued), at `position` (1: next).
    Queued { position: u32 },
    /// A wait out of its queue without a seat (`result` left_queue).
    LeftQueue,
}

/// A granted seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub handle: String,
    pub lease_ms: u64,
    /// The leader that decided the grant (a retry answered after a failover names the
    /// original one).
    pub granted_by: u8,
    /// A borrow's end (wall ms), for a borrow.
    pub borrow_end_ms: Option<u64>,
}

/// A heartbeat's answer: the lease it extends, and the seats the server knows and those
/// it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub lease_ms: u64,
    pub held: Vec<String>,
    pub unknown: Vec<String>,
    /// Of `unknown`, the seats an administrator removed (`removed` in the line, absent
    /// when none).
    pub removed: Vec<String>,
}

impl ReplyRecord {
    /// The line's `result`.
    pub fn result(&self) -> ResultName {
        match &self.answer {
            Answer::Granted(_) => ResultName::Granted,
            Answer::Released { .. } => ResultName::Ok,
            Answer::Heartbeat(beat) if beat.unknown.is_empty() => ResultName::Ok,
            Answer::Heartbeat(_) | Answer::UnknownHandle { .. } => ResultName::UnknownHandle,
            Answer::Denied { .. } => ResultName::Denied,
            Answer::Queued { .. } => ResultName::Queued,
            Answer::LeftQueue => ResultName::LeftQueue,
        }
    }

    /// The grant, if the reply is one.
    pub fn grant(&self) -> Option<&Grant> {
        match &self.answer {
            Answer::Granted(grant) => Some(grant),
            _ => None,
        }
    }
}

/// The reply as it stands on a line: every field flat, those a result does not use
/// absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplyFields<S = String, L = Vec<String>> {
    pub t_ms: u64,
    pub client: S,
    pub req: u64,
    pub server: u8,
    pub result: Option<ResultName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrow_end_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<L>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
}

impl Serialize for ReplyRecord {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut line: ReplyFields<&str, &[String]> = ReplyFields {
            t_ms: self.t_ms,
            client: &self.client,
            req: self.req,
            server: self.server,
            result: Some(self.result()),
            ..Default::default()
        };
        match &self.answer {
            Answer::Granted(grant) => {
                line.handle = Some(&grant.handle);
                line.lease_ms = Some(grant.lease_ms);
                line.granted_by = Some(grant.granted_by);
                line.borrow_end_ms = grant.borrow_end_ms;
            }
            Answer::Released { handle } => line.handle = Some(handle),
            Answer::Heartbeat(beat) => {
                line.lease_ms = Some(beat.lease_ms);
                line.handle = beat.unknown.first().map(String::as_str);
                line.held = Some(&beat.held);
                line.unknown = Some(&beat.unknown);
                line.removed = (!beat.removed.is_empty()).then_some(&beat.removed[..]);
            }
            Answer::Denied { reason } => line.reason = Some(reason),
            Answer::UnknownHandle { handle, reason } => {
                line.handle = handle.as_deref();
                line.reason = Some(reason);
            }
            Answer::Queued { position } => line.position = Some(*position),
            Answer::LeftQueue => {}
        }
        line.serialize(serializer)
    }
}

impl TryFrom<ReplyFields> for ReplyRecord {
    type Error = String;

    fn try_from(line: ReplyFields) -> Result<ReplyRecord, String> {
        let result = line.result.ok_or("a reply without its result")?;
        let needs = |what: &str| format!("a reply with result {} lacks {what}", name(result));
        let answer = match result {
            ResultName::Granted => Answer::Granted(Grant {
                handle: line.handle.ok_or_else(|| needs("handle"))?,
                lease_ms: line.lease_ms.ok_or_else(|| needs("lease_ms"))?,
                granted_by: line.granted_by.ok_or_else(|| needs("granted_by"))?,
                borrow_end_ms: line.borrow_end_ms,
            }),
            ResultName::Denied => Answer::Denied {
                reason: line.reason.ok_or_else(|| needs("reason"))?,
            },
            ResultName::Ok | ResultName::UnknownHandle if line.lease_ms.is_some() => {
                let beat = HeartbeatAnswer {
                    lease_ms: line.lease_ms.unwrap_or_default(),
                    held: line.held.ok_or_else(|| needs("held (a heartbeat's)"))?,
                    unknown: line
                        .unknown
                        .ok_or_else(|| needs("unknown (a heartbeat's)"))?,
                    removed: line.removed.unwrap_or_default(),
                };
                if let Some(stray) = beat.removed.iter().find(|h| !beat.unknown.contains(h)) {
                    return Err(format!(
                        "a heartbeat's reply says {stray} was removed, but not that it is unknown"
                    ));
                }
                let says_unknown = result == ResultName::UnknownHandle;
                if says_unknown == beat.unknown.is_empty() {
                    return Err(format!(
                        "a heartbeat's reply says {} but its unknown seats are {:?}",
                        name(result),
                        beat.unknown
                    ));
                }
                Answer::Heartbeat(beat)
            }
            ResultName::Ok => Answer::Released {
                handle: line
                    .handle
                    .ok_or_else(|| needs("handle or lease_ms (a checkin's or a heartbeat's)"))?,
            },
            ResultName::UnknownHandle => Answer::UnknownHandle {
                handle: line.handle,
                reason: line.reason.ok_or_else(|| needs("reason or lease_ms"))?,
            },
            ResultName::Queued => Answer::Queued {
                position: line.position.ok_or_else(|| needs("position"))?,
            },
            ResultName::LeftQueue => Answer::LeftQueue,
        };
        Ok(ReplyRecord {
            t_ms: line.t_ms,
            client: line.client,
            req: line.req,
            server: line.server,
            answer,
        })
    }
}

/// A result as the line spells it.
fn name(result: ResultName) -> &'static str {
    match result {
        ResultName::Granted => "granted",
        ResultName::Denied => "denied",
        ResultName::Ok => "ok",
        ResultName::UnknownHandle => "unknown_handle",
        ResultName::Queued => "queued",
        ResultName::LeftQueue => "left_queue",
    }
}
