//! One `hal_core::client::Client` fed an arbitrary sequence of inputs: the application's
//! requests, server replies (to its own requests and heartbeats, or to anything, every
//! field over its range), unreachable servers and timeouts at non-decreasing times. After
//! every input the transmits and events are drained and checked. Nothing may panic.

#![no_main]

use arbitrary::Arbitrary;
use hal_core::client::{Client, ClientConfig, Endpoint, PATH_MAX};
use hal_core::protocol::{
    ClientId, HEARTBEAT_HANDLES_MAX, Handle, Op, ReplyResult, RequestSeq, ServerReply,
};
use hal_core::time::WallTime;
use hal_core::timing::Timing;
use hal_fuzz::{Context, DenialArg, HandleArg, Name, Sid, Wide, now_at};
use libfuzzer_sys::fuzz_target;

const INPUTS_MAX: usize = 256;
/// The most wire numbers of sent requests kept for replies.
const SEQS_KEPT_MAX: usize = 16;
const CLIENT: ClientId = ClientId(0xc11e);

#[derive(Debug, Arbitrary)]
struct Setup {
    /// The license path has 1 + this % 3 entries.
    path_len: u8,
    inputs: Vec<Input>,
}

#[derive(Debug, Arbitrary)]
enum Input {
    Checkout(Name),
    /// A checkout that waits up to this many ms in the queue.
    CheckoutWait(Name, u32),
    Borrow(Name, u32),
    Checkin(HandleArg),
    Return(HandleArg),
    ResumeFrom(Wide),
    Reply {
        endpoint: u8,
        /// For another client (whose id this is) instead of this one.
        stranger: Option<Wide>,
        seq: SeqArg,
        from: Sid,
        result: ResultArg,
    },
    Unreachable(u8),
    NotSent(u8),
    Advance(u16),
    Deadline,
}

/// The number a reply answers: one the client sent recently, or any.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum SeqArg {
    Sent(u8),
    Wide(Wide),
}

#[derive(Debug, Arbitrary)]
enum ResultArg {
    Granted {
        handle: Wide,
        lease_ms: Wide,
        borrow_end: Option<Wide>,
        granted_by: Sid,
    },
    Released {
        handle: HandleArg,
    },
    HeartbeatAck {
        lease_ms: Wide,
        held: Vec<HandleArg>,
        unknown: Vec<HandleArg>,
        removed: Vec<HandleArg>,
    },
    Denied(DenialArg),
    /// An administrator's answer, which no client asks for.
    Removed {
        handles: Vec<HandleArg>,
    },
    /// An administrator's answers, which no client should be sent.
    LicensePushed {
        index: Wide,
        changed: bool,
    },
    LicenseRefused {
        reason: String,
    },
    OptionsPushed {
        index: Wide,
        changed: bool,
    },
    OptionsRefused {
        reason: String,
    },
    Queued {
        position: u32,
        used: u32,
        count: u32,
        lease_ms: Wide,
    },
    LeftQueue,
}

impl ResultArg {
    fn build(&self, cx: &Context) -> ReplyResult {
        let handles = |list: &[HandleArg]| list.iter().map(|h| h.build(cx)).collect();
        match self {
            ResultArg::Granted {
                handle,
                lease_ms,
                borrow_end,
                granted_by,
            } => ReplyResult::Granted {
                handle: Handle(handle.value()),
                lease_ms: lease_ms.value(),
                borrow_end: borrow_end.map(|w| WallTime(w.value())),
                granted_by: granted_by.build(),
            },
            ResultArg::Released { handle } => ReplyResult::Released {
                handle: handle.build(cx),
            },
            ResultArg::HeartbeatAck {
                lease_ms,
                held,
                unknown,
                removed,
            } => ReplyResult::HeartbeatAck {
                lease_ms: lease_ms.value(),
                held: handles(held),
                unknown: handles(unknown),
                removed: handles(removed),
            },
            ResultArg::Denied(denial) => ReplyResult::Denied(denial.build()),
            ResultArg::Removed { handles: removed } => ReplyResult::Removed {
                handles: handles(removed),
            },
            ResultArg::LicensePushed { index, changed } => ReplyResult::LicensePushed {
                index: hal_core::protocol::LogIndex(index.value()),
                changed: *changed,
            },
            ResultArg::LicenseRefused { reason } => ReplyResult::LicenseRefused {
                reason: reason.clone(),
            },
            ResultArg::OptionsPushed { index, changed } => ReplyResult::OptionsPushed {
                index: hal_core::protocol::LogIndex(index.value()),
                changed: *changed,
            },
            ResultArg::OptionsRefused { reason } => ReplyResult::OptionsRefused {
                reason: reason.clone(),
            },
            ResultArg::Queued {
                position,
                used,
                count,
                lease_ms,
            } => ReplyResult::Queued {
                position: *position,
                used: *used,
                count: *count,
                lease_ms: lease_ms.value(),
            },
            ResultArg::LeftQueue => ReplyResult::LeftQueue,
        }
    }
}

struct Harness {
    client: Client,
    path_len: u8,
    /// Wire numbers of the requests sent, newest last.
    seqs: Vec<u64>,
    now_ms: u64,
}

impl Harness {
    fn context(&self) -> Context {
        Context {
            handles: self.client.seats().keys().map(|h| h.0).collect(),
            seqs: self.seqs.clone(),
            now_ms: self.now_ms,
            ..Context::default()
        }
    }

    /// An endpoint on the license path: the shell only reports those.
    fn endpoint(&self, n: u8) -> Endpoint {
        Endpoint(n % self.path_len)
    }

    fn play(&mut self, input: &Input) {
        let cx = self.context();
        let now = now_at(self.now_ms);
        match input {
            Input::Checkout(feature) => {
                self.client.checkout(now, &feature.build());
            }
            Input::CheckoutWait(feature, wait_ms) => {
                let wait = std::time::Duration::from_millis(u64::from(*wait_ms));
                self.client.checkout_wait(now, &feature.build(), wait);
            }
            Input::Borrow(feature, hours) => {
                self.client.borrow(now, &feature.build(), *hours);
            }
            Input::Checkin(handle) => {
                self.client.checkin(now, handle.build(&cx));
            }
            Input::Return(handle) => {
                self.client.return_borrow(now, handle.build(&cx));
            }
            Input::ResumeFrom(seq) => self.client.resume_from(RequestSeq(seq.value())),
            Input::Reply {
                endpoint,
                stranger,
                seq,
                from,
                result,
            } => {
                let seq = match seq {
                    SeqArg::Sent(n) if !self.seqs.is_empty() => {
                        self.seqs[self.seqs.len() - 1 - usize::from(*n) % self.seqs.len()]
                    }
                    SeqArg::Sent(n) => u64::from(*n),
                    SeqArg::Wide(w) => w.value(),
                };
                let reply = ServerReply {
                    client: stranger.map_or(CLIENT, |w| ClientId(w.value())),
                    seq: RequestSeq(seq),
                    from: from.build(),
                    result: result.build(&cx),
                };
                let endpoint = self.endpoint(*endpoint);
                self.client.handle_reply(now, endpoint, reply);
            }
            Input::Unreachable(n) => {
                let endpoint = self.endpoint(*n);
                self.client.handle_unreachable(now, endpoint);
            }
            Input::NotSent(n) => {
                let endpoint = self.endpoint(*n);
                self.client.handle_not_sent(now, endpoint);
            }
            Input::Advance(ms) => {
                self.now_ms = self.now_ms.saturating_add(u64::from(*ms));
                self.client.handle_timeout(now_at(self.now_ms));
            }
            Input::Deadline => {
                if let Some(deadline) = self.client.poll_timeout() {
                    self.now_ms = self.now_ms.max(deadline.0);
                }
                self.client.handle_timeout(now_at(self.now_ms));
            }
        }
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(transmit) = self.client.poll_transmit() {
            assert!(transmit.to.0 < self.path_len, "sent on the path");
            assert_eq!(transmit.request.client, CLIENT, "sent as itself");
            if let Op::Heartbeat { handles } = &transmit.request.op {
                assert!(handles.len() <= HEARTBEAT_HANDLES_MAX, "heartbeat too long");
            }
            if self.seqs.len() == SEQS_KEPT_MAX {
                self.seqs.remove(0);
            }
            self.seqs.push(transmit.request.seq.0);
        }
        while self.client.poll_event().is_some() {}
    }
}

fuzz_target!(|setup: Setup| {
    let path_len = 1 + setup.path_len % PATH_MAX as u8;
    let config = ClientConfig::new(Timing::lan());
    let now_ms = 1_000;
    let client = Client::new(CLIENT, "ann", "ws1", path_len, config, now_at(now_ms));
    let mut harness = Harness {
        client,
        path_len,
        seqs: Vec::new(),
        now_ms,
    };
    for input in setup.inputs.iter().take(INPUTS_MAX) {
        harness.play(input);
    }
});
