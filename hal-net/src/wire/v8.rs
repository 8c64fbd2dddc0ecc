//! Protocol version 8 (hal-net 0.1.0), which this build still speaks so that a triad can
//! be upgraded one server at a time and older clients keep working: the messages as
//! version 8 encodes them, and their conversion to and from this version's.
//!
//! Version 9 added the server's software version and storage format to
//! [`StatusReport`], and each feature's longest borrow to its [`FeatureStatus`]; nothing
//! else changed. A message version 8 cannot carry does not arise (the status of a server
//! speaking 8 simply has neither).

use hal_core::ServerId;
use hal_core::protocol::{ClientRequest, PeerMessage, ServerReply};
use hal_core::server::Role;
use serde::{Deserialize, Serialize};

use super::{
    FeatureStatus, Hello, Holder, LicenseStatus, Message, OptionsStatus, PeerStatus, StatusReport,
    WaitingStatus,
};
use crate::tls::borrow_proof::BorrowProof;

/// [`Message`] as version 8 encodes it: the same variants, in the same order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum MessageV8 {
    Hello(Hello),
    Welcome {
        server: ServerId,
    },
    Refused {
        reason: String,
    },
    Peer(PeerMessage),
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
        wall_ms: u64,
    },
    Request(ClientRequest),
    Reply(ServerReply),
    StatusRequest,
    Status(Box<StatusReportV8>),
    BorrowReply {
        reply: ServerReply,
        proof: Box<BorrowProof>,
    },
}

/// [`StatusReport`] as version 8 encodes it: without the version fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StatusReportV8 {
    server: ServerId,
    triad: bool,
    role: Role,
    term: u64,
    leader: Option<ServerId>,
    last_index: u64,
    commit_index: u64,
    applied_index: u64,
    wall_ms: u64,
    certificate_expires_ms: Option<u64>,
    peers: Vec<PeerStatus>,
    features: Vec<FeatureStatusV8>,
    license: LicenseStatus,
    options: Option<OptionsStatus>,
}

/// [`FeatureStatus`] as version 8 encodes it: without the longest borrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FeatureStatusV8 {
    name: String,
    count: u32,
    used: u32,
    holders: Vec<Holder>,
    waiting: Vec<WaitingStatus>,
}

impl From<FeatureStatusV8> for FeatureStatus {
    fn from(f: FeatureStatusV8) -> FeatureStatus {
        FeatureStatus {
            name: f.name,
            count: f.count,
            used: f.used,
            holders: f.holders,
            waiting: f.waiting,
            borrow_hours_max: None,
        }
    }
}

impl From<FeatureStatus> for FeatureStatusV8 {
    fn from(f: FeatureStatus) -> FeatureStatusV8 {
        FeatureStatusV8 {
            name: f.name,
            count: f.count,
            used: f.used,
            holders: f.holders,
            waiting: f.waiting,
        }
    }
}

impl From<MessageV8> for Message {
    fn from(message: MessageV8) -> Message {
        match message {
            MessageV8::Hello(hello) => Message::Hello(hello),
            MessageV8::Welcome { server } => Message::Welcome { server },
            MessageV8::Refused { reason } => Message::Refused { reason },
            MessageV8::Peer(peer) => Message::Peer(peer),
            MessageV8::Ping { nonce } => Message::Ping { nonce },
            MessageV8::Pong { nonce, wall_ms } => Message::Pong { nonce, wall_ms },
            MessageV8::Request(request) => Message::Request(request),
            MessageV8::Reply(reply) => Message::Reply(reply),
            MessageV8::StatusRequest => Message::StatusRequest,
            MessageV8::Status(report) => Message::Status(Box::new(StatusReport::from(*report))),
            MessageV8::BorrowReply { reply, proof } => Message::BorrowReply { reply, proof },
        }
    }
}

impl From<Message> for MessageV8 {
    fn from(message: Message) -> MessageV8 {
        match message {
            Message::Hello(hello) => MessageV8::Hello(hello),
            Message::Welcome { server } => MessageV8::Welcome { server },
            Message::Refused { reason } => MessageV8::Refused { reason },
            Message::Peer(peer) => MessageV8::Peer(peer),
            Message::Ping { nonce } => MessageV8::Ping { nonce },
            Message::Pong { nonce, wall_ms } => MessageV8::Pong { nonce, wall_ms },
            Message::Request(request) => MessageV8::Request(request),
            Message::Reply(reply) => MessageV8::Reply(reply),
            Message::StatusRequest => MessageV8::StatusRequest,
            Message::Status(report) => MessageV8::Status(Box::new(StatusReportV8::from(*report))),
            Message::BorrowReply { reply, proof } => MessageV8::BorrowReply { reply, proof },
        }
    }
}

impl From<StatusReportV8> for StatusReport {
    fn from(r: StatusReportV8) -> StatusReport {
        StatusReport {
            server: r.server,
            triad: r.triad,
            role: r.role,
            term: r.term,
            leader: r.leader,
            last_index: r.last_index,
            commit_index: r.commit_index,
            applied_index: r.applied_index,
            wall_ms: r.wall_ms,
            certificate_expires_ms: r.certificate_expires_ms,
            peers: r.peers,
            features: r.features.into_iter().map(FeatureStatus::from).collect(),
            license: r.license,
            options: r.options,
            software: None,
        }
    }
}

impl From<StatusReport> for StatusReportV8 {
    fn from(r: StatusReport) -> StatusReportV8 {
        StatusReportV8 {
            server: r.server,
            triad: r.triad,
            role: r.role,
            term: r.term,
            leader: r.leader,
            last_index: r.last_index,
            commit_index: r.commit_index,
            applied_index: r.applied_index,
            wall_ms: r.wall_ms,
            certificate_expires_ms: r.certificate_expires_ms,
            peers: r.peers,
            features: r.features.into_iter().map(FeatureStatusV8::from).collect(),
            license: r.license,
            options: r.options,
        }
    }
}
