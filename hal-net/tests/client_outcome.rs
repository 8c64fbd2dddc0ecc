//! `hal-net checkout` when a request goes unanswered (issue 20, bug 4): it is not called a
//! denial, the exit code is the one for unreachable servers, and a seat the request may
//! have produced is found and released before the command exits.
//!
//! The server is a scripted stand-in speaking the wire protocol in plaintext: it answers
//! the first attempt "no majority" (so the client has heard a server), then stays silent
//! until the client gives up, then answers the client's settling of the request with the
//! grant a lost reply would have carried, and the checkin that follows.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use hal_core::protocol::{ClientRequest, Denial, Handle, Op, ReplyResult, ServerReply};
use hal_net::wire::{FRAME_BYTES_MAX_PEER, Message, WireCodec};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const HAL_NET: &str = env!("CARGO_BIN_EXE_hal-net");

/// What the stand-in saw: each request with the time it came.
type Seen = Arc<Mutex<Vec<(Duration, ClientRequest)>>>;

fn reply(request: &ClientRequest, result: ReplyResult) -> Message {
    Message::Reply(ServerReply {
        client: request.client,
        seq: request.seq,
        from: ServerId::PRIMARY,
        result,
    })
}

/// Serves one client connection at a time by the script above; `silent_for` is how long
/// it ignores requests after the first.
async fn stand_in(listener: TcpListener, seen: Seen, silent_for: Duration) {
    let start = Instant::now();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
            let _hello = link.next().await;
            let welcome = Message::Welcome {
                server: ServerId::PRIMARY,
            };
            if link.send(welcome).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = link.next().await {
                let Message::Request(request) = message else {
                    continue;
                };
                let at = start.elapsed();
                let first = seen.lock().unwrap().is_empty();
                seen.lock().unwrap().push((at, request.clone()));
                let answer = match &request.op {
                    _ if first => reply(&request, ReplyResult::Denied(Denial::NoMajority)),
                    _ if at < silent_for => continue,
                    Op::Checkout { .. } => reply(
                        &request,
                        ReplyResult::Granted {
                            handle: Handle(41),
                            lease_ms: 120_000,
                            borrow_end: None,
                            granted_by: ServerId::PRIMARY,
                        },
                    ),
                    Op::Checkin { handle } => {
                        reply(&request, ReplyResult::Released { handle: *handle })
                    }
                    _ => continue,
                };
                if link.send(answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts a stand-in on a runtime of its own (kept alive by the caller): its port and
/// what it sees.
fn start_stand_in(silent_for: Duration) -> (tokio::runtime::Runtime, u16, Seen) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    runtime.spawn(stand_in(listener, seen.clone(), silent_for));
    (runtime, port, seen)
}

#[test]
fn an_unanswered_checkout_is_unreachable_and_its_seat_is_released() {
    // The client gives up after 6 s (LAN profile); the stand-in answers again at 6.5 s.
    let (_runtime, port, seen) = start_stand_in(Duration::from_millis(6_500));

    let started = Instant::now();
    let out = Command::new(HAL_NET)
        .args([
            "checkout",
            "cad",
            "--hold",
            "0s",
            "--json",
            "--insecure",
            "--license-path",
            &format!("{port}@127.0.0.1"),
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["result"], "unreachable", "{json}");
    assert_eq!(json["outcome"], "released", "{json}");
    assert_eq!(json["released"], "h41", "{json}");
    assert!(took < Duration::from_secs(15), "{took:?}");

    // The settling asked with the request's own number, then checked in what it found.
    let seen = seen.lock().unwrap();
    let checkout_seq = seen[0].1.seq;
    let resent = seen
        .iter()
        .find(|(at, r)| *at >= Duration::from_millis(6_500) && matches!(r.op, Op::Checkout { .. }))
        .unwrap();
    assert_eq!(
        resent.1.seq, checkout_seq,
        "asked again as the same request"
    );
    assert!(
        seen.iter()
            .any(|(_, r)| r.op == Op::Checkin { handle: Handle(41) }),
        "the seat found was checked in: {seen:?}"
    );
}

/// Without the settling (the stand-in stays silent), the command still exits as for
/// unreachable servers, and says the outcome is unknown rather than "denied".
#[test]
fn an_unanswered_checkout_that_cannot_be_settled_says_so() {
    let (_runtime, port, _) = start_stand_in(Duration::from_secs(3_600));
    let out = Command::new(HAL_NET)
        .args([
            "checkout",
            "cad",
            "--insecure",
            "--license-path",
            &format!("{port}@127.0.0.1"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("did not answer in time"), "{stderr}");
    assert!(stderr.contains("it may have been granted"), "{stderr}");
    assert!(!stderr.contains("denied"), "{stderr}");
}
