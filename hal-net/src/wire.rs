//! The wire protocol: length-prefixed frames carrying [`Message`]s encoded with postcard.
//!
//! A frame is `[u32 big-endian length][u8 protocol version][postcard payload]`; the length
//! counts the version byte and the payload. Every frame carries the version so that a
//! frame from a different release is recognised as such, not misread. Each side limits
//! the frames it accepts ([`FRAME_BYTES_MAX_UNIDENTIFIED`] until the handshake says who is
//! talking); a frame over the limit, of another version or that does not decode closes the
//! connection with a [`WireError`] that says which.
//!
//! Every connection starts with the connecting side's [`Hello`]; the accepting server
//! answers [`Message::Welcome`] or [`Message::Refused`] with the reason, then closes.
//!
//! What it does not do: decide anything. The node driver and the client session use it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hal_core::ServerId;
use hal_core::protocol::{ClientRequest, PeerMessage, ServerReply};
use hal_core::server::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::codec::{Decoder, Encoder};

use crate::tls::borrow_proof::BorrowProof;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 8;

/// The largest frame accepted before the handshake (a hello is small).
pub const FRAME_BYTES_MAX_UNIDENTIFIED: usize = 64 * 1024;
/// The largest frame accepted from a client: a heartbeat of
/// [`hal_core::protocol::HEARTBEAT_HANDLES_MAX`] seats is about 10 KiB, a checkout with
/// three names of the longest allowed under 1 KiB.
pub const FRAME_BYTES_MAX_CLIENT: usize = 16 * 1024;
/// Partial frames of at most this many bytes are not counted against a
/// [`FrameBudget`]: connections are few enough that these add up to little.
pub const FRAME_BYTES_UNCOUNTED: usize = 4 * 1024;
/// The largest frame accepted from a peer server or by a client (snapshots, status).
pub const FRAME_BYTES_MAX_PEER: usize = 256 * 1024 * 1024;

/// Everything that travels between two HAL processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The first frame of every connection, from the side that connected.
    Hello(Hello),
    /// The handshake succeeded; `server` is the accepting server's id.
    Welcome {
        server: ServerId,
    },
    /// The handshake failed, or the connection is being closed; says why.
    Refused {
        reason: String,
    },
    /// Replication between servers.
    Peer(PeerMessage),
    /// Link liveness between servers: a stalled connection shows as missing pongs.
    Ping {
        nonce: u64,
    },
    /// The answer to a ping, with the answering server's wall clock (ms since the Unix
    /// epoch), from which the pinging server estimates the offset between their clocks
    /// for its journal.
    Pong {
        nonce: u64,
        wall_ms: u64,
    },
    /// A client's request and the server's reply.
    Request(ClientRequest),
    Reply(ServerReply),
    /// An operator's status query (`hal-net status`) and the answer.
    StatusRequest,
    Status(Box<StatusReport>),
    /// The reply granting a borrow, with the answering server's signature over it, which
    /// the client keeps in its borrow record (a server without a TLS key sends a plain
    /// [`Message::Reply`]).
    BorrowReply {
        reply: ServerReply,
        proof: Box<BorrowProof>,
    },
}

/// Who is connecting, and for what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hello {
    /// Server `from` opens its link to server `to`. The triad list and the vendor key
    /// must be the same on both, or the link is refused; license files that differ are
    /// logged (the triad serves the license in its log, [`hal_core::server::Licensing`]).
    Peer {
        from: ServerId,
        to: ServerId,
        identity: Identity,
    },
    /// A license client (checkout, borrow, return).
    Client,
    /// An operator tool (status).
    Admin,
}

/// What must agree between the servers of one triad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The triad list in role order, as configured (`6200@host` entries).
    pub triad: Vec<String>,
    /// SHA-256 of the vendor's public key, in hex (empty where no key is used).
    pub vendor_key: String,
    /// SHA-256 of the license file's canonical text, in hex.
    pub license_digest: String,
    /// Each feature's name and the SHA-256 of its canonical form, so that a mismatch can
    /// name the features that differ.
    pub features: Vec<(String, String)>,
}

impl Identity {
    /// The identity of a triad with `triad` serving `license` signed by `vendor_key`.
    pub fn new(
        triad: Vec<String>,
        license: &hal_core::license::License,
        vendor_key: Option<&ed25519_dalek::VerifyingKey>,
    ) -> Identity {
        let (license_digest, features) = license_digests(license);
        Identity {
            triad,
            vendor_key: vendor_key.map_or_else(String::new, |key| {
                hex::encode(Sha256::digest(key.as_bytes()))
            }),
            license_digest,
            features,
        }
    }

    /// Why server `me` (`self`) and server `peer` cannot form a triad, in words that read
    /// the same in both servers' logs; `None` if they can.
    pub fn difference(&self, me: ServerId, theirs: &Identity, peer: ServerId) -> Option<String> {
        if self.triad != theirs.triad {
            return Some(format!(
                "triad list differs: server {me} has [{}], server {peer} has [{}] (the list, in order, must be identical on all three servers)",
                self.triad.join(", "),
                theirs.triad.join(", ")
            ));
        }
        if self.vendor_key != theirs.vendor_key {
            return Some(format!(
                "vendor key differs between server {me} ({}) and server {peer} ({}): all three servers must have the vendor's same public key (`vendor_key`)",
                short(&self.vendor_key),
                short(&theirs.vendor_key)
            ));
        }
        None
    }

    /// How server `me`'s license file differs from server `peer`'s, if it does: not a
    /// reason to refuse the link (the triad serves the license in its log), but worth a
    /// line in the log.
    pub fn license_difference(
        &self,
        me: ServerId,
        theirs: &Identity,
        peer: ServerId,
    ) -> Option<String> {
        if self.license_digest == theirs.license_digest {
            return None;
        }
        let ours: std::collections::BTreeMap<_, _> = self.features.iter().cloned().collect();
        let other: std::collections::BTreeMap<_, _> = theirs.features.iter().cloned().collect();
        let mut differing: Vec<String> = Vec::new();
        for (name, digest) in &ours {
            match other.get(name) {
                None => differing.push(format!("{name} (only on {me})")),
                Some(d) if d != digest => differing.push(format!("{name} (different terms)")),
                Some(_) => {}
            }
        }
        for name in other.keys().filter(|n| !ours.contains_key(*n)) {
            differing.push(format!("{name} (only on {peer})"));
        }
        if differing.is_empty() {
            differing.push("feature order".to_string());
        }
        Some(format!(
            "license file differs between server {me} and server {peer}: {} (license digest on {me} {}, on {peer} {}); the triad serves the license in force (`hal-net status`), and a server writes it over its file when it takes effect",
            differing.join(", "),
            short(&self.license_digest),
            short(&theirs.license_digest)
        ))
    }
}

/// SHA-256 of `license`'s canonical text and of each feature's canonical form, in hex.
pub fn license_digests(license: &hal_core::license::License) -> (String, Vec<(String, String)>) {
    let mut whole = Sha256::new();
    let features = license
        .features
        .iter()
        .map(|feature| {
            let canonical = hal_core::license::canonical_bytes(feature);
            whole.update(&canonical);
            let name = feature.name.as_str().to_string();
            (name, hex::encode(Sha256::digest(&canonical)))
        })
        .collect();
    (hex::encode(whole.finalize()), features)
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// One server's view, as `hal-net status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub server: ServerId,
    /// Whether the server runs as a triad member (else a single server).
    pub triad: bool,
    pub role: Role,
    pub term: u64,
    /// The active server as this one knows it.
    pub leader: Option<ServerId>,
    pub last_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// This server's wall clock, ms since the epoch.
    pub wall_ms: u64,
    /// When the server's TLS certificate expires, wall-clock ms since the epoch (`None`:
    /// the server runs in plaintext).
    pub certificate_expires_ms: Option<u64>,
    pub peers: Vec<PeerStatus>,
    pub features: Vec<FeatureStatus>,
    pub license: LicenseStatus,
    /// The options file in force, if one is.
    pub options: Option<OptionsStatus>,
}

/// The options file a server applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionsStatus {
    /// SHA-256 of its text, in hex.
    pub digest: String,
    /// The log index it took effect at.
    pub index: u64,
    /// Who pushed it (`user@host`).
    pub by: String,
    /// How many rules it has.
    pub rules: usize,
}

/// The license a server serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseStatus {
    /// SHA-256 of its canonical text, in hex (as [`Identity::license_digest`]).
    pub digest: String,
    /// The log index it took effect at; 0 while the server serves its own file (no
    /// license in the log yet).
    pub index: u64,
    /// Who put it in the log: `user@host` of an administrator's push, `server #1` for a
    /// first leader's file.
    pub by: Option<String>,
    /// What this server cannot serve of it (a feature locked to another HostID, a bad
    /// signature), or why it serves none of it.
    pub problems: Vec<String>,
    /// Set when this server's license file differs from the license in force: what to
    /// do about it.
    pub file_differs: Option<String>,
}

/// A peer link as one server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub id: ServerId,
    pub connected: bool,
    /// Why the peer refused the link, if it did.
    pub refused: Option<String>,
}

/// One feature's seats, from the server's applied seat table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureStatus {
    pub name: String,
    pub count: u32,
    pub used: u32,
    pub holders: Vec<Holder>,
    /// The checkouts waiting for a seat, first come first (`checkout --wait`).
    pub waiting: Vec<WaitingStatus>,
}

/// A checkout waiting in a feature's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingStatus {
    /// Its place's id (the log index that queued it).
    pub id: u64,
    pub user: String,
    pub host: String,
    /// When it joined the queue, on the deciding server's wall clock (ms since the
    /// epoch).
    pub since_ms: u64,
}

/// One held seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub handle: u64,
    pub user: String,
    pub host: String,
    /// A borrow's end, wall-clock ms since the epoch; `None` for a checkout.
    pub borrow_end_ms: Option<u64>,
    /// When the seat was granted, on the deciding server's wall clock (ms since the
    /// epoch).
    pub granted_ms: u64,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error(
        "a TLS record where a HAL frame should be: one side runs TLS and the other plaintext (insecure_plaintext on a server, --insecure on a client: both or neither)"
    )]
    TlsRecord,
    #[error("frame of protocol version {got}; this server speaks version {PROTOCOL_VERSION}")]
    Version { got: u8 },
    #[error("empty frame (no protocol version byte)")]
    Empty,
    #[error("frame does not decode: {0}")]
    Decode(postcard::Error),
    #[error(
        "a frame of {len} bytes would pass the server's budget of {max} bytes for frames still arriving; connection closed"
    )]
    OverBudget { len: usize, max: usize },
    #[error("cannot encode a message: {0}")]
    Encode(postcard::Error),
}

/// The frame codec, for `tokio_util::codec::Framed` over any byte stream.
///
/// The length prefix is read without consuming it until the whole frame is buffered, so
/// the limit is checked once per frame, before any of it is buffered.
#[derive(Debug)]
pub struct WireCodec {
    max: usize,
    /// The budget a frame still arriving is counted against, and what this codec holds
    /// of it.
    budget: Option<Arc<FrameBudget>>,
    held: usize,
}

/// A budget of bytes for frames still arriving, shared by the connections that count
/// against it (all but authenticated peers): many connections each holding a large
/// partial frame cannot take the server's memory. A frame over [`FRAME_BYTES_UNCOUNTED`]
/// takes its whole announced length from the budget when it starts arriving, and gives it
/// back when it is complete or its connection closes.
#[derive(Debug)]
pub struct FrameBudget {
    used: AtomicUsize,
    max: usize,
}

impl FrameBudget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<FrameBudget> {
        Arc::new(FrameBudget {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// Bytes taken now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    fn give(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

impl Drop for WireCodec {
    fn drop(&mut self) {
        self.release();
    }
}

/// The bytes of the length prefix.
const LENGTH_BYTES: usize = 4;
/// The most buffer reserved ahead of the bytes of a frame that is still arriving.
const RESERVE_STEP_MAX: usize = 64 * 1024;

impl WireCodec {
    /// A codec accepting frames of at most `frame_bytes_max` bytes.
    pub fn new(frame_bytes_max: usize) -> WireCodec {
        WireCodec {
            max: frame_bytes_max,
            budget: None,
            held: 0,
        }
    }

    /// A codec whose large partial frames count against `budget`.
    pub fn budgeted(frame_bytes_max: usize, budget: Arc<FrameBudget>) -> WireCodec {
        WireCodec {
            budget: Some(budget),
            ..WireCodec::new(frame_bytes_max)
        }
    }

    /// Changes the limit, once the handshake has said who is talking.
    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: usize) {
        self.max = frame_bytes_max;
    }

    /// Stops counting against a budget (an authenticated peer's link, whose snapshots
    /// may be large).
    pub fn unbudgeted(&mut self) {
        self.release();
        self.budget = None;
    }

    fn release(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give(std::mem::take(&mut self.held));
        }
    }

    /// Counts a frame of `len` bytes that has started arriving, once.
    fn hold(&mut self, len: usize) -> Result<(), WireError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        if self.held > 0 || len <= FRAME_BYTES_UNCOUNTED {
            return Ok(());
        }
        if !budget.take(len) {
            return Err(WireError::OverBudget {
                len,
                max: budget.max,
            });
        }
        self.held = len;
        Ok(())
    }
}

impl Decoder for WireCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let Some(prefix) = src.get(..LENGTH_BYTES) else {
            return Ok(None);
        };
        let prefix = [prefix[0], prefix[1], prefix[2], prefix[3]];
        let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
        if len > self.max {
            // No HAL frame is 352 MB: bytes 0x16 0x03 are a TLS handshake record.
            if looks_like_tls(&prefix) {
                return Err(WireError::TlsRecord);
            }
            return Err(WireError::TooLarge { len, max: self.max });
        }
        if src.len() < LENGTH_BYTES + len {
            self.hold(len)?;
            // Room for what is announced, a bounded step at a time: memory follows the
            // bytes that actually arrive, not what a peer claims it will send.
            src.reserve((LENGTH_BYTES + len - src.len()).min(RESERVE_STEP_MAX));
            return Ok(None);
        }
        self.release();
        src.advance(LENGTH_BYTES);
        let frame = src.split_to(len);
        decode_frame(&frame).map(Some)
    }
}

/// Whether the first bytes of a stream are a TLS record's header (content type 20 to 23,
/// version 3.x).
fn looks_like_tls(prefix: &[u8; 4]) -> bool {
    (0x14..=0x17).contains(&prefix[0]) && prefix[1] == 0x03 && prefix[2] <= 0x04
}

/// Decodes one frame's content (version byte and payload).
pub fn decode_frame(frame: &[u8]) -> Result<Message, WireError> {
    let (&version, payload) = frame.split_first().ok_or(WireError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(WireError::Version { got: version });
    }
    postcard::from_bytes(payload).map_err(WireError::Decode)
}

impl Encoder<Message> for WireCodec {
    type Error = WireError;

    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        let payload = postcard::to_stdvec(&message).map_err(WireError::Encode)?;
        let len = payload.len() + 1; // the version byte
        let prefix = u32::try_from(len).map_err(|_| WireError::TooLarge {
            len,
            max: u32::MAX as usize,
        })?;
        dst.reserve(LENGTH_BYTES + len);
        dst.put_u32(prefix);
        dst.put_u8(PROTOCOL_VERSION);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}

/// One whole frame for `message`, as bytes (tests and tools that write raw frames).
pub fn frame_bytes(message: &Message) -> Result<Bytes, WireError> {
    let mut dst = BytesMut::new();
    WireCodec::new(FRAME_BYTES_MAX_PEER).encode(message.clone(), &mut dst)?;
    Ok(dst.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal_core::protocol::{ClientId, Op, RequestSeq};

    fn request() -> Message {
        Message::Request(ClientRequest {
            client: ClientId(7),
            seq: RequestSeq(3),
            op: Op::Checkout {
                feature: "cad".into(),
                user: "ann".into(),
                host: "ws1".into(),
            },
        })
    }

    #[test]
    fn frames_round_trip_across_split_reads() {
        let bytes = frame_bytes(&request()).unwrap();
        let mut codec = WireCodec::new(FRAME_BYTES_MAX_CLIENT);
        let mut buf = BytesMut::new();
        // Fed one byte at a time, the frame decodes exactly once, at its last byte.
        for (i, b) in bytes.iter().enumerate() {
            buf.put_u8(*b);
            let got = codec.decode(&mut buf).unwrap();
            assert_eq!(got.is_some(), i + 1 == bytes.len());
            if let Some(message) = got {
                assert_eq!(message, request());
            }
        }
    }

    #[test]
    fn back_to_back_frames_decode_one_by_one() {
        let status = Message::StatusRequest;
        let mut buf = BytesMut::new();
        let mut codec = WireCodec::new(FRAME_BYTES_MAX_CLIENT);
        codec.encode(request(), &mut buf).unwrap();
        codec.encode(status.clone(), &mut buf).unwrap();
        buf.extend_from_slice(&frame_bytes(&request()).unwrap()[..3]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(request()));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(status));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 3, "the partial frame stays buffered");
    }

    #[test]
    fn oversized_frames_are_refused_before_reading_them() {
        let mut codec = WireCodec::new(1000);
        let mut buf = BytesMut::from(&[0u8, 0, 0x10, 0][..]);
        let error = codec.decode(&mut buf).unwrap_err();
        assert_eq!(
            error.to_string(),
            "frame of 4096 bytes is over the limit of 1000 bytes"
        );
    }

    #[test]
    fn a_tls_record_is_named_as_such() {
        // A TLS 1.2 ClientHello record header, as a TLS client sends first.
        let mut buf = BytesMut::from(&[0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01][..]);
        let error = WireCodec::new(FRAME_BYTES_MAX_PEER)
            .decode(&mut buf)
            .unwrap_err();
        assert!(matches!(error, WireError::TlsRecord), "{error}");
        assert!(error.to_string().contains("both or neither"), "{error}");
    }

    #[test]
    fn frames_of_another_version_are_refused() {
        let mut bytes = BytesMut::from(&frame_bytes(&request()).unwrap()[..]);
        bytes[4] = 9;
        let error = WireCodec::new(1000).decode(&mut bytes).unwrap_err();
        assert!(matches!(error, WireError::Version { got: 9 }), "{error}");
    }

    #[test]
    fn junk_does_not_decode() {
        let mut bytes = BytesMut::from(&[0u8, 0, 0, 3, PROTOCOL_VERSION, 0xff, 0xff][..]);
        let error = WireCodec::new(1000).decode(&mut bytes).unwrap_err();
        assert!(matches!(error, WireError::Decode(_)), "{error}");
        let mut empty = BytesMut::from(&[0u8, 0, 0, 0][..]);
        let error = WireCodec::new(1000).decode(&mut empty).unwrap_err();
        assert!(matches!(error, WireError::Empty), "{error}");
    }

    #[test]
    fn large_partial_frames_count_against_the_budget_until_complete() {
        let budget = FrameBudget::new(20_000);
        let mut first = WireCodec::budgeted(FRAME_BYTES_MAX_CLIENT, budget.clone());
        let mut second = WireCodec::budgeted(FRAME_BYTES_MAX_CLIENT, budget.clone());
        // A frame announcing 12,000 bytes takes them from the budget at once.
        let mut buf = BytesMut::from(&12_000u32.to_be_bytes()[..]);
        assert_eq!(first.decode(&mut buf).unwrap(), None);
        assert_eq!(budget.used(), 12_000);
        // A second such frame does not fit: its connection is refused, not buffered.
        let mut other = BytesMut::from(&12_000u32.to_be_bytes()[..]);
        let error = second.decode(&mut other).unwrap_err();
        assert!(
            matches!(
                error,
                WireError::OverBudget {
                    len: 12_000,
                    max: 20_000
                }
            ),
            "{error}"
        );
        // Small frames are not counted; a closed connection gives its share back.
        let mut small = BytesMut::from(&100u32.to_be_bytes()[..]);
        assert_eq!(second.decode(&mut small).unwrap(), None);
        assert_eq!(budget.used(), 12_000);
        drop(first);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_completed_frame_gives_its_share_back() {
        let budget = FrameBudget::new(1 << 20);
        let mut codec = WireCodec::budgeted(FRAME_BYTES_MAX_CLIENT, budget.clone());
        let big = Message::Refused {
            reason: "x".repeat(8_000),
        };
        let bytes = frame_bytes(&big).unwrap();
        let mut buf = BytesMut::from(&bytes[..100]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(budget.used() > 8_000);
        buf.extend_from_slice(&bytes[100..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(big));
        assert_eq!(budget.used(), 0);
    }

    fn identity(triad: &[&str], features: &[(&str, &str)]) -> Identity {
        Identity {
            triad: triad.iter().map(|s| s.to_string()).collect(),
            vendor_key: "k".to_string(),
            license_digest: features.iter().map(|(_, d)| *d).collect(),
            features: features
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
        }
    }

    #[test]
    fn identity_differences_say_what_differs() {
        let ours = identity(
            &["6200@a", "6200@b", "6200@c"],
            &[("cad", "1"), ("cam", "2")],
        );
        let me = ServerId::PRIMARY;
        assert_eq!(
            ours.difference(me, &ours.clone(), ServerId::SECONDARY),
            None
        );
        let swapped = identity(
            &["6200@b", "6200@a", "6200@c"],
            &[("cad", "1"), ("cam", "2")],
        );
        let why = ours.difference(me, &swapped, ServerId::SECONDARY).unwrap();
        assert!(why.starts_with("triad list differs: server #1 has [6200@a, 6200@b, 6200@c], server #2 has [6200@b, 6200@a, 6200@c]"), "{why}");
        let other = identity(
            &["6200@a", "6200@b", "6200@c"],
            &[("cad", "9"), ("cae", "3")],
        );
        assert_eq!(ours.difference(me, &other, ServerId::TIEBREAKER), None);
        let why = ours
            .license_difference(me, &other, ServerId::TIEBREAKER)
            .unwrap();
        assert!(
            why.contains("cad (different terms), cam (only on #1), cae (only on #3)"),
            "{why}"
        );
        let mut keyed = ours.clone();
        keyed.vendor_key = "other".to_string();
        let why = ours.difference(me, &keyed, ServerId::SECONDARY).unwrap();
        assert!(why.starts_with("vendor key differs"), "{why}");
    }
}
