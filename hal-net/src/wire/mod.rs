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
//! # Versions
//!
//! A build speaks [`PROTOCOL_VERSION`] and the version before it
//! ([`PROTOCOL_VERSION_OLDEST`]), so that a triad is upgraded one server at a time and
//! applications built with the previous client library keep working. The hello settles
//! which one a connection speaks:
//!
//! - the connecting side sends its hello in a frame of the *oldest* version it speaks,
//!   which every server it can talk to reads, followed by one byte after the message: the
//!   newest version it speaks. Version 8 reads the hello and ignores the byte after it
//!   (postcard stops at the message's end);
//! - the accepting side answers in the newest version both speak (the byte, or the
//!   hello's own version when there is none, capped by its own newest), and the
//!   connecting side takes the version of that answer;
//! - from then on both sides write that version, and a frame of any other is refused.
//!
//! [`Hello`] itself must therefore read the same in every version a build speaks.
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

/// The newest protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 9;
/// The oldest protocol version this build speaks: the previous release's.
pub const PROTOCOL_VERSION_OLDEST: u8 = 8;

mod v8;

/// The newest version this process speaks, when an operator holds it back
/// ([`hold_back_protocol`]): 0 when not held back.
static HELD_BACK: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Makes this process speak no newer protocol than `version` (within
/// [`PROTOCOL_VERSION_OLDEST`]..=[`PROTOCOL_VERSION`]), as the release that speaks only
/// it would: its hellos carry no newer version and it answers none. For mixed-version
/// tests, and to hold a server back during an upgrade (`serve --protocol-version`).
pub fn hold_back_protocol(version: u8) -> Result<(), String> {
    if !(PROTOCOL_VERSION_OLDEST..=PROTOCOL_VERSION).contains(&version) {
        return Err(format!(
            "protocol version {version}: this build speaks {PROTOCOL_VERSION_OLDEST} to {PROTOCOL_VERSION}"
        ));
    }
    HELD_BACK.store(version, Ordering::Relaxed);
    Ok(())
}

/// The newest protocol version this process speaks.
pub fn protocol_newest() -> u8 {
    match HELD_BACK.load(Ordering::Relaxed) {
        0 => PROTOCOL_VERSION,
        held => held,
    }
}

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
    /// What the server runs (`None`: a server of protocol version 8, which does not say).
    pub software: Option<Software>,
}

/// What software a server runs, and what it speaks and stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    /// hal-net's version (`0.2.0`).
    pub version: String,
    /// The protocol versions it speaks, oldest and newest.
    pub protocol: (u8, u8),
    /// The format of its data directory's log and snapshot.
    pub storage_format: u32,
}

impl Software {
    /// This build's, with its data directory in `storage_format`.
    pub fn this_build(storage_format: u32) -> Software {
        Software {
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: (PROTOCOL_VERSION_OLDEST, protocol_newest()),
            storage_format,
        }
    }
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
    /// The longest borrow allowed, in hours: the license's BORROW, or an options file's
    /// lower MAX_BORROW_HOURS. `None`: the feature may not be borrowed (or a server of
    /// protocol 8, which does not say).
    pub borrow_hours_max: Option<u32>,
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
    #[error(
        "frame of protocol version {got}; {}",
        match expected {
            Some(v) => format!("this connection speaks version {v}"),
            None => format!("this build speaks versions {PROTOCOL_VERSION_OLDEST} to {PROTOCOL_VERSION}"),
        }
    )]
    Version { got: u8, expected: Option<u8> },
    #[error("{extra} bytes after the message in a frame of version {version}")]
    Trailing { version: u8, extra: usize },
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
    /// The protocol version of the connection, once its hello settled it.
    version: Option<u8>,
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
            version: None,
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

    /// The protocol version the connection speaks, once its hello has settled it.
    pub fn version(&self) -> Option<u8> {
        self.version
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
        let (message, version, offered) = decode_versioned(&frame, self.version)?;
        if self.version.is_none() {
            // The first frame settles the version: a hello offers the newest its sender
            // speaks, and the answer to one is in the version chosen.
            self.version = Some(match (&message, offered) {
                (Message::Hello(_), Some(offered)) => offered.max(version).min(protocol_newest()),
                (Message::Hello(_), None) => version.min(protocol_newest()),
                _ => version,
            });
        }
        Ok(Some(message))
    }
}

/// Whether the first bytes of a stream are a TLS record's header (content type 20 to 23,
/// version 3.x).
fn looks_like_tls(prefix: &[u8; 4]) -> bool {
    (0x14..=0x17).contains(&prefix[0]) && prefix[1] == 0x03 && prefix[2] <= 0x04
}

/// Decodes one frame's content (version byte and payload), of any version this build
/// speaks.
pub fn decode_frame(frame: &[u8]) -> Result<Message, WireError> {
    decode_versioned(frame, None).map(|(message, _, _)| message)
}

/// Decodes one frame's content: the message, the frame's version, and the newest version
/// a hello offers. `expected` is the connection's version, once settled.
fn decode_versioned(
    frame: &[u8],
    expected: Option<u8>,
) -> Result<(Message, u8, Option<u8>), WireError> {
    let (&version, payload) = frame.split_first().ok_or(WireError::Empty)?;
    let speaks = PROTOCOL_VERSION_OLDEST..=protocol_newest();
    if expected.is_some_and(|v| v != version) || !speaks.contains(&version) {
        return Err(WireError::Version {
            got: version,
            expected,
        });
    }
    let (message, rest): (Message, &[u8]) = match version {
        8 => postcard::take_from_bytes::<v8::MessageV8>(payload)
            .map(|(message, rest)| (message.into(), rest)),
        _ => postcard::take_from_bytes::<Message>(payload),
    }
    .map_err(WireError::Decode)?;
    let offered = match (&message, rest) {
        (_, []) => None,
        // Only a hello has a byte after it: the newest version its sender speaks.
        (Message::Hello(_), [offered]) => Some(*offered),
        (_, rest) => {
            return Err(WireError::Trailing {
                version,
                extra: rest.len(),
            });
        }
    };
    Ok((message, version, offered))
}

/// `message` encoded as protocol `version` writes it.
fn encode_payload(message: Message, version: u8) -> Result<Vec<u8>, WireError> {
    match version {
        8 => postcard::to_stdvec(&v8::MessageV8::from(message)),
        _ => postcard::to_stdvec(&message),
    }
    .map_err(WireError::Encode)
}

impl Encoder<Message> for WireCodec {
    type Error = WireError;

    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        let newest = protocol_newest();
        let (version, payload) = match (&message, self.version) {
            // A hello goes in the oldest version this build speaks, with the newest
            // after it (none when the oldest is the newest this process speaks).
            (Message::Hello(_), None) => {
                let mut payload = encode_payload(message, PROTOCOL_VERSION_OLDEST)?;
                if newest > PROTOCOL_VERSION_OLDEST {
                    payload.push(newest);
                }
                (PROTOCOL_VERSION_OLDEST, payload)
            }
            (_, Some(version)) => (version, encode_payload(message, version)?),
            (_, None) => (newest, encode_payload(message, newest)?),
        };
        let len = payload.len() + 1; // the version byte
        let prefix = u32::try_from(len).map_err(|_| WireError::TooLarge {
            len,
            max: u32::MAX as usize,
        })?;
        dst.reserve(LENGTH_BYTES + len);
        dst.put_u32(prefix);
        dst.put_u8(version);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}

/// One whole frame for `message`, as bytes (tests and tools that write raw frames): a
/// hello as a connection's first frame, anything else in this build's newest version.
pub fn frame_bytes(message: &Message) -> Result<Bytes, WireError> {
    let mut dst = BytesMut::new();
    WireCodec::new(FRAME_BYTES_MAX_PEER).encode(message.clone(), &mut dst)?;
    Ok(dst.freeze())
}

/// One whole frame for `message` in protocol `version`, as a connection that settled on
/// it writes it.
pub fn frame_bytes_at(version: u8, message: &Message) -> Result<Bytes, WireError> {
    let mut dst = BytesMut::new();
    let mut codec = WireCodec::new(FRAME_BYTES_MAX_PEER);
    codec.version = Some(version);
    codec.encode(message.clone(), &mut dst)?;
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
        bytes[4] = 7;
        let error = WireCodec::new(1000).decode(&mut bytes).unwrap_err();
        assert!(
            matches!(
                error,
                WireError::Version {
                    got: 7,
                    expected: None
                }
            ),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "frame of protocol version 7; this build speaks versions 8 to 9"
        );
        // Once the hello settled a version, a frame of another is refused.
        let mut codec = WireCodec::new(FRAME_BYTES_MAX_PEER);
        let mut hello = BytesMut::from(&frame_bytes(&Message::Hello(Hello::Client)).unwrap()[..]);
        codec.decode(&mut hello).unwrap().unwrap();
        assert_eq!(codec.version(), Some(PROTOCOL_VERSION));
        let mut old = BytesMut::from(&frame_bytes_at(8, &request()).unwrap()[..]);
        let error = codec.decode(&mut old).unwrap_err();
        assert!(
            matches!(
                error,
                WireError::Version {
                    got: 8,
                    expected: Some(9)
                }
            ),
            "{error}"
        );
    }

    fn golden(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/wire-v8")
            .join(format!("{name}.bin"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// What a version-8 build does with a frame: the version byte must be 8, and postcard
    /// reads one message and ignores anything after it.
    fn as_version_8_reads(frame: &[u8]) -> v8::MessageV8 {
        assert_eq!(frame[4], 8, "a version-8 build reads only version-8 frames");
        postcard::from_bytes(&frame[5..]).unwrap()
    }

    #[test]
    fn frames_of_version_8_read_and_write_as_version_8_wrote_them() {
        for (name, message) in samples() {
            let bytes = golden(name);
            let mut codec = WireCodec::new(FRAME_BYTES_MAX_PEER);
            let read = codec.decode(&mut BytesMut::from(&bytes[..])).unwrap();
            assert_eq!(read.as_ref(), Some(&message), "{name}");
            assert_eq!(codec.version(), Some(8), "{name}");
            assert_eq!(frame_bytes_at(8, &message).unwrap(), bytes, "{name}");
        }
    }

    #[test]
    fn a_new_client_and_an_old_server_settle_on_version_8() {
        let mut client = WireCodec::new(FRAME_BYTES_MAX_PEER);
        let mut hello = BytesMut::new();
        client
            .encode(Message::Hello(Hello::Client), &mut hello)
            .unwrap();
        // The old server reads the hello (the newest version after it goes unnoticed)...
        assert_eq!(
            as_version_8_reads(&hello),
            v8::MessageV8::Hello(Hello::Client)
        );
        // ... and welcomes in version 8, which the client takes from then on.
        let mut welcome = BytesMut::from(&golden("welcome")[..]);
        let read = client.decode(&mut welcome).unwrap();
        assert_eq!(
            read,
            Some(Message::Welcome {
                server: ServerId::SECONDARY
            })
        );
        assert_eq!(client.version(), Some(8));
        let mut sent = BytesMut::new();
        client.encode(request(), &mut sent).unwrap();
        assert_eq!(&sent[..], &golden("request-checkout")[..]);
    }

    #[test]
    fn an_old_client_and_a_new_server_settle_on_version_8() {
        let mut server = WireCodec::new(FRAME_BYTES_MAX_PEER);
        let mut hello = BytesMut::from(&golden("hello-admin")[..]);
        assert_eq!(
            server.decode(&mut hello).unwrap(),
            Some(Message::Hello(Hello::Admin))
        );
        assert_eq!(server.version(), Some(8));
        // Its status answer is one the old client reads: no software version in it.
        let (_, Message::Status(report)) = samples().remove(10) else {
            panic!("sample 10 is a status report");
        };
        let mut newer = StatusReport {
            software: Some(Software::this_build(2)),
            ..*report.clone()
        };
        newer.features[0].borrow_hours_max = Some(72);
        let mut sent = BytesMut::new();
        server
            .encode(Message::Status(Box::new(newer)), &mut sent)
            .unwrap();
        assert_eq!(&sent[..], &golden("status")[..]);
        let v8::MessageV8::Status(old) = as_version_8_reads(&sent) else {
            panic!("not a status");
        };
        assert_eq!(StatusReport::from(*old), *report);
    }

    #[test]
    fn two_new_sides_settle_on_the_newest_version() {
        let mut client = WireCodec::new(FRAME_BYTES_MAX_PEER);
        let mut server = WireCodec::new(FRAME_BYTES_MAX_PEER);
        let mut wire = BytesMut::new();
        client
            .encode(Message::Hello(Hello::Admin), &mut wire)
            .unwrap();
        assert_eq!(
            wire[4], PROTOCOL_VERSION_OLDEST,
            "the hello is in the oldest"
        );
        server.decode(&mut wire).unwrap().unwrap();
        assert_eq!(server.version(), Some(PROTOCOL_VERSION));
        let report = StatusReport {
            software: Some(Software::this_build(2)),
            ..match samples().remove(10).1 {
                Message::Status(report) => *report,
                _ => panic!("sample 10 is a status report"),
            }
        };
        server
            .encode(
                Message::Welcome {
                    server: ServerId::PRIMARY,
                },
                &mut wire,
            )
            .unwrap();
        server
            .encode(Message::Status(Box::new(report.clone())), &mut wire)
            .unwrap();
        client.decode(&mut wire).unwrap().unwrap();
        assert_eq!(client.version(), Some(PROTOCOL_VERSION));
        assert_eq!(
            client.decode(&mut wire).unwrap(),
            Some(Message::Status(Box::new(report)))
        );
        // A hello from a newer build (its oldest is our newest) settles on our newest.
        let mut future = WireCodec::new(FRAME_BYTES_MAX_PEER);
        let mut hello =
            BytesMut::from(&frame_bytes_at(9, &Message::Hello(Hello::Client)).unwrap()[..]);
        hello[0..4].copy_from_slice(&3u32.to_be_bytes());
        hello.extend_from_slice(&[10]);
        future.decode(&mut hello).unwrap().unwrap();
        assert_eq!(future.version(), Some(PROTOCOL_VERSION));
    }

    #[test]
    fn bytes_after_a_message_other_than_a_hello_are_refused() {
        let mut bytes = BytesMut::from(&frame_bytes(&request()).unwrap()[..]);
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) + 1;
        bytes[0..4].copy_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&[9]);
        let error = WireCodec::new(1000).decode(&mut bytes).unwrap_err();
        assert!(
            matches!(error, WireError::Trailing { extra: 1, .. }),
            "{error}"
        );
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

    /// One of each kind of frame, as the golden frames of earlier versions hold them
    /// (`tests/fixtures/wire-v8`): the frames of version 8, as version 8 wrote them.
    fn samples() -> Vec<(&'static str, Message)> {
        use hal_core::protocol::{
            Entry, Handle, LogIndex, PeerBody, PeerMessage, ReplyResult, Term,
        };
        use hal_core::seats::Command;
        let entry = Arc::new(Entry {
            term: Term(2),
            command: Command::Grant {
                client: ClientId(7),
                seq: RequestSeq(3),
                feature: "cad".into(),
                user: "ann".into(),
                host: "ws1".into(),
                borrow_end: None,
                by: ServerId::PRIMARY,
                at: hal_core::time::WallTime(1_800_000_000_000),
            },
        });
        let status = StatusReport {
            server: ServerId::SECONDARY,
            triad: true,
            role: Role::Standby,
            term: 2,
            leader: Some(ServerId::PRIMARY),
            last_index: 9,
            commit_index: 9,
            applied_index: 8,
            wall_ms: 1_800_000_000_000,
            certificate_expires_ms: Some(1_900_000_000_000),
            peers: vec![PeerStatus {
                id: ServerId::PRIMARY,
                connected: true,
                refused: None,
            }],
            features: vec![FeatureStatus {
                name: "cad".into(),
                count: 5,
                used: 1,
                holders: vec![Holder {
                    handle: 4,
                    user: "ann".into(),
                    host: "ws1".into(),
                    borrow_end_ms: None,
                    granted_ms: 1_800_000_000_000,
                }],
                waiting: vec![],
                // Version 8 does not carry it.
                borrow_hours_max: None,
            }],
            license: LicenseStatus {
                digest: "ab".repeat(32),
                index: 1,
                by: Some("server #1".into()),
                problems: vec![],
                file_differs: None,
            },
            options: None,
            // Version 8 does not carry it.
            software: None,
        };
        let peer = |body| {
            Message::Peer(PeerMessage {
                from: ServerId::PRIMARY,
                to: ServerId::SECONDARY,
                term: Term(2),
                body,
            })
        };
        vec![
            ("hello-client", Message::Hello(Hello::Client)),
            ("hello-admin", Message::Hello(Hello::Admin)),
            (
                "hello-peer",
                Message::Hello(Hello::Peer {
                    from: ServerId::PRIMARY,
                    to: ServerId::SECONDARY,
                    identity: identity(&["6200@a", "6200@b", "6200@c"], &[("cad", "1")]),
                }),
            ),
            (
                "welcome",
                Message::Welcome {
                    server: ServerId::SECONDARY,
                },
            ),
            (
                "refused",
                Message::Refused {
                    reason: "no".into(),
                },
            ),
            ("ping", Message::Ping { nonce: 17 }),
            (
                "pong",
                Message::Pong {
                    nonce: 17,
                    wall_ms: 1_800_000_000_000,
                },
            ),
            ("request-checkout", request()),
            (
                "reply-granted",
                Message::Reply(ServerReply {
                    client: ClientId(7),
                    seq: RequestSeq(3),
                    from: ServerId::PRIMARY,
                    result: ReplyResult::Granted {
                        handle: Handle(4),
                        lease_ms: 120_000,
                        borrow_end: None,
                        granted_by: ServerId::PRIMARY,
                    },
                }),
            ),
            ("status-request", Message::StatusRequest),
            ("status", Message::Status(Box::new(status))),
            (
                "peer-append",
                peer(PeerBody::Append {
                    prev_index: LogIndex(8),
                    prev_term: Term(2),
                    entries: vec![entry],
                    commit: LogIndex(8),
                    round: 5,
                }),
            ),
            (
                "peer-request-vote",
                peer(PeerBody::RequestVote {
                    last_index: LogIndex(9),
                    last_term: Term(2),
                    transfer: true,
                }),
            ),
            ("peer-timeout-now", peer(PeerBody::TimeoutNow)),
        ]
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
