//! The engine under both client faces: one task owns the [`Session`] (hal-core's client
//! state machine and its connections), takes the application's commands from a channel,
//! answers each when the servers do, and broadcasts what happens to held seats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hal_core::client::ClientEvent;
use hal_core::protocol::{Denial, Handle, RequestSeq};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Error, Event, Granted, RequestId};
use crate::clock::Clock;
use crate::session::Session;
use crate::transport::Transport;

/// A grant as the engine hands it to a seat guard.
#[derive(Debug)]
pub(super) struct SeatGrant {
    pub granted: Granted,
    /// Set by the engine when the seat is lost.
    pub lost: Arc<AtomicBool>,
}

/// What the application asks of the engine.
#[derive(Debug)]
pub(super) enum Command {
    /// A checkout; with `wait`, one that waits up to that long in the feature's queue
    /// when every seat is in use.
    Checkout {
        feature: String,
        wait: Option<Duration>,
        reply: oneshot::Sender<Result<SeatGrant, Error>>,
    },
    /// A checkin; `reply` is `None` when a dropped guard asks and nobody waits.
    Checkin {
        handle: Handle,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    },
}

/// A request waiting for its answer.
#[derive(Debug)]
enum Waiter {
    Grant {
        feature: String,
        reply: oneshot::Sender<Result<SeatGrant, Error>>,
    },
    Release {
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    },
}

/// A seat checked out and not given back.
#[derive(Debug)]
struct Held {
    feature: String,
    lost: Arc<AtomicBool>,
}

pub(super) struct Engine<T: Transport, C: Clock> {
    session: Session<T, C>,
    events: broadcast::Sender<Event>,
    waiting: BTreeMap<RequestSeq, Waiter>,
    held: BTreeMap<Handle, Held>,
    /// How long the checkins of the last guards may take once every handle is gone.
    finish_within: Duration,
}

impl<T: Transport, C: Clock> Engine<T, C> {
    pub(super) fn new(
        session: Session<T, C>,
        events: broadcast::Sender<Event>,
        finish_within: Duration,
    ) -> Self {
        Engine {
            session,
            events,
            waiting: BTreeMap::new(),
            held: BTreeMap::new(),
            finish_within,
        }
    }

    /// Runs until every command sender is gone, then finishes the checkins in flight
    /// (for up to `finish_within`).
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                event = self.session.next_event() => self.event(event),
            }
        }
        let limit = self.finish_within;
        let finishing = async {
            while !self.waiting.is_empty() {
                let event = self.session.next_event().await;
                self.event(event);
            }
        };
        let _ = tokio::time::timeout(limit, finishing).await;
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Checkout {
                feature,
                wait,
                reply,
            } => {
                let seq = match wait {
                    Some(wait) => self.session.checkout_wait(&feature, wait),
                    None => self.session.checkout(&feature),
                };
                self.waiting.insert(seq, Waiter::Grant { feature, reply });
            }
            Command::Checkin { handle, reply } => {
                if self.held.remove(&handle).is_none() {
                    // Lost, or given back already: nothing to send.
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(Error::Denied(Denial::UnknownHandle)));
                    }
                    return;
                }
                let seq = self.session.checkin(handle);
                self.waiting.insert(seq, Waiter::Release { reply });
            }
        }
    }

    fn event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Granted {
                seq,
                handle,
                server,
                granted_by,
                ..
            } => {
                let Some(Waiter::Grant { feature, reply }) = self.waiting.remove(&seq) else {
                    return;
                };
                let lost = Arc::new(AtomicBool::new(false));
                let granted = Granted {
                    handle,
                    feature: feature.clone(),
                    server,
                    granted_by,
                };
                self.held.insert(
                    handle,
                    Held {
                        feature,
                        lost: lost.clone(),
                    },
                );
                let grant = SeatGrant { granted, lost };
                if reply.send(Ok(grant)).is_err() {
                    // The application stopped waiting (its future was dropped): nobody
                    // holds the seat, so give it back.
                    self.command(Command::Checkin {
                        handle,
                        reply: None,
                    });
                }
            }
            ClientEvent::Denied { seq, reason, .. } => {
                let error = denial_error(&self.session, reason);
                self.answer_error(seq, error);
            }
            ClientEvent::OutcomeUnknown {
                seq, last_denial, ..
            } => {
                let error = no_answer_error(&self.session, seq, last_denial);
                self.answer_error(seq, error);
            }
            ClientEvent::Released { seq, .. } => {
                if let Some(Waiter::Release { reply: Some(reply) }) = self.waiting.remove(&seq) {
                    let _ = reply.send(Ok(()));
                }
            }
            ClientEvent::Resolved { seq, released } => {
                self.publish(Event::Settled {
                    request: RequestId(seq.0),
                    released,
                });
            }
            ClientEvent::Lost { handle } => {
                if let Some(held) = self.held.remove(&handle) {
                    held.lost.store(true, Ordering::Release);
                    self.publish(Event::Lost {
                        handle,
                        feature: held.feature,
                    });
                }
            }
            ClientEvent::Removed { handle } => {
                if let Some(held) = self.held.remove(&handle) {
                    held.lost.store(true, Ordering::Release);
                    self.publish(Event::Removed {
                        handle,
                        feature: held.feature,
                    });
                }
            }
            ClientEvent::BorrowEnded { handle } => self.publish(Event::BorrowEnded { handle }),
            ClientEvent::FailedOver { from, to } => self.publish(Event::FailedOver { from, to }),
            ClientEvent::Queued {
                seq,
                position,
                used,
                count,
            } => {
                if let Some(Waiter::Grant { feature, .. }) = self.waiting.get(&seq) {
                    self.publish(Event::Queued {
                        feature: feature.clone(),
                        position,
                        used,
                        count,
                    });
                }
            }
            // An event a newer hal-core reports and this library does not know yet.
            _ => {}
        }
    }

    fn answer_error(&mut self, seq: RequestSeq, error: Error) {
        match self.waiting.remove(&seq) {
            Some(Waiter::Grant { reply, .. }) => {
                let _ = reply.send(Err(error));
            }
            Some(Waiter::Release { reply: Some(reply) }) => {
                let _ = reply.send(Err(error));
            }
            Some(Waiter::Release { reply: None }) | None => {}
        }
    }

    fn publish(&self, event: Event) {
        // No subscriber is not an error: nobody listens.
        let _ = self.events.send(event);
    }
}

/// The error for a refusal of a request of `session`: "not active" or "no majority"
/// from every server when none was ever reached is an unreachable triad, not a denial.
pub(super) fn denial_error<T: Transport, C: Clock>(
    session: &Session<T, C>,
    reason: Denial,
) -> Error {
    if reason.try_elsewhere() && session.replies_heard() == 0 {
        let why = session.last_failure().unwrap_or("no answer").to_string();
        return Error::Unreachable(why);
    }
    Error::Denied(reason)
}

/// The error for a request of `session` that no server answered in time.
pub(super) fn no_answer_error<T: Transport, C: Clock>(
    session: &Session<T, C>,
    seq: RequestSeq,
    last_denial: Option<Denial>,
) -> Error {
    let mut why = session.last_failure().unwrap_or("no answer").to_string();
    if let Some(denial) = last_denial {
        why = format!("{why}; the last server to answer said {denial}");
    }
    if session.replies_heard() == 0 {
        // No server was ever reached: the request cannot have been acted on.
        return Error::Unreachable(why);
    }
    Error::NoAnswer {
        why,
        request: RequestId(seq.0),
    }
}
