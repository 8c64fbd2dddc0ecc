//! The discovery datagrams, and the pure decisions on them: [`answer`] (what a server
//! sends back for a request, if anything) and [`parse_answer`] (what a client makes of an
//! answer). No sockets and no clock here: the shells in [`super::responder`] and
//! [`super::client`] carry the bytes.
//!
//! # Format (version 1)
//!
//! Every datagram starts with a 14-byte header: the magic `HALd`, the format version (1),
//! the kind (1 request, 2 answer) and a nonce (8 bytes, big-endian) that the client draws
//! and the answer echoes, so that a client takes only answers to its own request.
//!
//! - A **request** is the header and padding: the client pads it to [`REQUEST_BYTES`]
//!   (the padding's content is ignored).
//! - An **answer** is the header and a postcard-encoded [`AnswerBody`]: the triad list as
//!   the server's config gives it (`port@host`, in role order: a usable license path), the
//!   server's slot, its role as it knows it, the active server it knows of, and its
//!   version.
//!
//! # Amplification
//!
//! A request's source address can be forged, and an answer sent to the victim. So an
//! answer is never larger than the request it answers ([`Ignored::AnswerLarger`]): the
//! server sends at most the bytes it was sent, and a forged request gains an attacker
//! nothing but a reflection. (The responder also limits answers per second, in total and
//! per source: [`super::limit`].)
//!
//! Malformed datagrams are [`Ignored`], never answered: a wrong magic, a short header, an
//! answer where a request belongs, a version this server does not speak.

use serde::{Deserialize, Serialize};

use hal_core::ServerId;

use crate::addr::{LicensePath, ServerAddr};

/// The first four bytes of every discovery datagram.
pub const MAGIC: [u8; 4] = *b"HALd";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Magic, version, kind, nonce.
pub const HEADER_BYTES: usize = 4 + 1 + 1 + 8;
/// The size of the requests clients send: room for the largest answer a sensible triad
/// list makes (three 60-character host names and a version take about 250 bytes), and
/// below the 1280 bytes every IPv6 link and any Ethernet carries without fragments.
pub const REQUEST_BYTES: usize = 1200;
/// The largest datagram either side reads: anything longer is not ours and is ignored.
pub const DATAGRAM_BYTES_MAX: usize = 1400;
/// The longest version string an answer may carry.
pub const SERVER_VERSION_CHARS_MAX: usize = 32;

const KIND_REQUEST: u8 = 1;
const KIND_ANSWER: u8 = 2;

/// A client's request: what [`answer`] needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub nonce: u64,
}

impl Request {
    /// The request's bytes, padded to [`REQUEST_BYTES`].
    pub fn encode(self) -> Vec<u8> {
        let mut bytes = header(KIND_REQUEST, self.nonce);
        bytes.resize(REQUEST_BYTES, 0);
        bytes
    }
}

/// The role a server reports, as far as it knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// It leads the triad (or is a single server): it serves clients.
    Active,
    /// It follows: it denies clients and points them to the active server.
    Standby,
    /// It is connected to neither peer: it serves nothing until a majority is back.
    NoMajority,
    /// The server could not say in time (its core was busy); it is up, nothing more.
    Unknown,
}

impl Role {
    /// The name shown by `hal-net discover` and in its JSON.
    pub fn name(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::NoMajority => "no_majority",
            Role::Unknown => "unknown",
        }
    }
}

/// What a server knows and tells in its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The triad list as configured (`port@host` in role order); empty for a single
    /// server configured without one.
    pub triad: Vec<ServerAddr>,
    /// Its slot in the triad; `None` for a single server.
    pub slot: Option<ServerId>,
    pub role: Role,
    /// The active server it knows of.
    pub leader: Option<ServerId>,
    /// The server's version (`hal-net --version`).
    pub version: String,
}

/// An answer's body, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AnswerBody {
    /// 1 to 3, or 0 for a single server.
    slot: u8,
    role: Role,
    /// 1 to 3, or 0 for none known.
    leader: u8,
    version: String,
    triad: Vec<String>,
}

/// Why a datagram got no answer, or was not taken as one (counted, logged at debug level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ignored {
    #[error("shorter than a discovery header")]
    Short,
    #[error("longer than any discovery datagram")]
    Oversized,
    #[error("not a HAL discovery datagram (wrong magic)")]
    Magic,
    #[error("a discovery format version this side does not speak")]
    Version,
    #[error("not the kind of datagram expected here")]
    Kind,
    #[error("the answer would be larger than the request (amplification)")]
    AnswerLarger,
    #[error("an answer to another request (nonce)")]
    Nonce,
    #[error("a malformed answer body")]
    Body,
    #[error("too many answers this second (rate limit)")]
    RateLimited,
}

fn header(kind: u8, nonce: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(REQUEST_BYTES);
    bytes.extend_from_slice(&MAGIC);
    bytes.push(VERSION);
    bytes.push(kind);
    bytes.extend_from_slice(&nonce.to_be_bytes());
    bytes
}

/// The header's kind and nonce, after checking length, magic and version.
fn read_header(bytes: &[u8]) -> Result<(u8, u64, &[u8]), Ignored> {
    if bytes.len() > DATAGRAM_BYTES_MAX {
        return Err(Ignored::Oversized);
    }
    let Some((head, rest)) = bytes.split_first_chunk::<HEADER_BYTES>() else {
        return Err(Ignored::Short);
    };
    let [m0, m1, m2, m3, version, kind, nonce @ ..] = *head;
    if [m0, m1, m2, m3] != MAGIC {
        return Err(Ignored::Magic);
    }
    if version != VERSION {
        return Err(Ignored::Version);
    }
    Ok((kind, u64::from_be_bytes(nonce), rest))
}

/// Reads a request.
pub fn parse_request(bytes: &[u8]) -> Result<Request, Ignored> {
    match read_header(bytes)? {
        (KIND_REQUEST, nonce, _padding) => Ok(Request { nonce }),
        _ => Err(Ignored::Kind),
    }
}

/// The answer of a server that knows `facts` to the datagram `request`: its bytes, or why
/// there is none. Never larger than `request`.
pub fn answer(request: &[u8], facts: &Facts) -> Result<Vec<u8>, Ignored> {
    let Request { nonce } = parse_request(request)?;
    let body = AnswerBody {
        slot: facts.slot.map_or(0, ServerId::get),
        role: facts.role,
        leader: facts.leader.map_or(0, ServerId::get),
        version: facts
            .version
            .chars()
            .take(SERVER_VERSION_CHARS_MAX)
            .collect(),
        triad: facts.triad.iter().map(ToString::to_string).collect(),
    };
    let mut bytes = header(KIND_ANSWER, nonce);
    // Encoding into a Vec fails only if serialization itself does, which a struct of
    // strings and integers cannot.
    let body = postcard::to_stdvec(&body).map_err(|_| Ignored::Body)?;
    bytes.extend_from_slice(&body);
    if bytes.len() > request.len() {
        return Err(Ignored::AnswerLarger);
    }
    Ok(bytes)
}

/// A server's answer as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The license path the server's triad list makes.
    pub path: LicensePath,
    /// Its slot in the triad; `None` for a single server.
    pub slot: Option<ServerId>,
    pub role: Role,
    pub leader: Option<ServerId>,
    pub version: String,
}

/// Reads an answer to the request with `nonce`. `from` is where it came from: a single
/// server configured without a triad list sends none, and its path is then the address
/// it answered from (`port@ip`, the port being the one it listens on).
pub fn parse_answer(
    bytes: &[u8],
    nonce: u64,
    from: std::net::SocketAddr,
) -> Result<Answer, Ignored> {
    let (kind, got, rest) = read_header(bytes)?;
    if kind != KIND_ANSWER {
        return Err(Ignored::Kind);
    }
    if got != nonce {
        return Err(Ignored::Nonce);
    }
    let (body, trailing) =
        postcard::take_from_bytes::<AnswerBody>(rest).map_err(|_| Ignored::Body)?;
    if !trailing.is_empty() {
        return Err(Ignored::Body);
    }
    let slot = optional_server(body.slot)?;
    let leader = optional_server(body.leader)?;
    let version_ok = body.version.chars().count() <= SERVER_VERSION_CHARS_MAX
        && !body.version.chars().any(hal_core::names::is_forbidden);
    if !version_ok {
        return Err(Ignored::Body);
    }
    let path = match (body.triad.len(), slot) {
        (0, None) => LicensePath::parse(&format!("{}@{}", from.port(), from.ip())),
        (1, None) | (3, Some(_)) => LicensePath::parse(&body.triad.join(";")),
        _ => return Err(Ignored::Body),
    }
    .map_err(|_| Ignored::Body)?;
    Ok(Answer {
        path,
        slot,
        role: body.role,
        leader,
        version: body.version,
    })
}

/// 0 for none, else a slot 1 to 3.
fn optional_server(number: u8) -> Result<Option<ServerId>, Ignored> {
    match number {
        0 => Ok(None),
        n => ServerId::new(n).map(Some).ok_or(Ignored::Body),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use proptest::prelude::*;

    use super::*;

    fn facts() -> Facts {
        Facts {
            triad: ["6200@lic1", "6200@lic2", "6200@lic3"]
                .iter()
                .map(|t| t.parse().unwrap())
                .collect(),
            slot: ServerId::new(2),
            role: Role::Standby,
            leader: ServerId::new(1),
            version: "0.1.0".into(),
        }
    }

    fn from() -> SocketAddr {
        "192.168.1.12:6200".parse().unwrap()
    }

    #[test]
    fn an_answer_round_trips_with_the_nonce() {
        let request = Request { nonce: 77 }.encode();
        assert_eq!(request.len(), REQUEST_BYTES);
        assert_eq!(parse_request(&request), Ok(Request { nonce: 77 }));
        let bytes = answer(&request, &facts()).unwrap();
        assert!(bytes.len() <= request.len());
        let got = parse_answer(&bytes, 77, from()).unwrap();
        assert_eq!(got.path.to_string(), "6200@lic1;6200@lic2;6200@lic3");
        assert_eq!(got.slot, ServerId::new(2));
        assert_eq!(got.role, Role::Standby);
        assert_eq!(got.leader, ServerId::new(1));
        assert_eq!(got.version, "0.1.0");
        // Another request's nonce: not ours.
        assert_eq!(parse_answer(&bytes, 78, from()), Err(Ignored::Nonce));
    }

    #[test]
    fn a_single_server_without_a_triad_list_is_found_where_it_answered_from() {
        let single = Facts {
            triad: Vec::new(),
            slot: None,
            role: Role::Active,
            leader: None,
            ..facts()
        };
        let bytes = answer(&Request { nonce: 1 }.encode(), &single).unwrap();
        let got = parse_answer(&bytes, 1, from()).unwrap();
        assert_eq!(got.path.to_string(), "6200@192.168.1.12");
        assert_eq!(got.slot, None);
        assert_eq!(got.role, Role::Active);
    }

    #[test]
    fn an_answer_is_never_larger_than_its_request() {
        let full = Request { nonce: 5 }.encode();
        let needed = answer(&full, &facts()).unwrap().len();
        // Exactly as large: answered; one byte less: not.
        assert!(answer(&full[..needed], &facts()).is_ok());
        assert_eq!(
            answer(&full[..needed - 1], &facts()),
            Err(Ignored::AnswerLarger)
        );
        // A bare header (what a forger sends to amplify) gets nothing.
        assert_eq!(
            answer(&full[..HEADER_BYTES], &facts()),
            Err(Ignored::AnswerLarger)
        );
    }

    #[test]
    fn malformed_requests_are_ignored_with_a_reason() {
        let good = Request { nonce: 9 }.encode();
        assert_eq!(answer(&good[..3], &facts()), Err(Ignored::Short));
        assert_eq!(answer(&[], &facts()), Err(Ignored::Short));
        let mut magic = good.clone();
        magic[0] = b'X';
        assert_eq!(answer(&magic, &facts()), Err(Ignored::Magic));
        let mut version = good.clone();
        version[4] = 2;
        assert_eq!(answer(&version, &facts()), Err(Ignored::Version));
        let mut kind = good.clone();
        kind[5] = KIND_ANSWER;
        assert_eq!(answer(&kind, &facts()), Err(Ignored::Kind));
        let oversized = vec![0u8; DATAGRAM_BYTES_MAX + 1];
        assert_eq!(answer(&oversized, &facts()), Err(Ignored::Oversized));
        // An answer is not taken for a request, nor a request for an answer.
        let reply = answer(&good, &facts()).unwrap();
        assert_eq!(answer(&reply, &facts()), Err(Ignored::Kind));
        assert_eq!(parse_answer(&good, 9, from()), Err(Ignored::Kind));
    }

    #[test]
    fn answers_with_impossible_contents_are_refused() {
        let encode = |body: &AnswerBody| {
            let mut bytes = header(KIND_ANSWER, 3);
            bytes.extend(postcard::to_stdvec(body).unwrap());
            bytes
        };
        let good = AnswerBody {
            slot: 1,
            role: Role::Active,
            leader: 1,
            version: "0.1.0".into(),
            triad: vec!["1@a".into(), "1@b".into(), "1@c".into()],
        };
        assert!(parse_answer(&encode(&good), 3, from()).is_ok());
        let bad = [
            AnswerBody {
                slot: 4,
                ..good.clone()
            },
            AnswerBody {
                leader: 9,
                ..good.clone()
            },
            AnswerBody {
                slot: 0,
                ..good.clone()
            },
            AnswerBody {
                triad: vec!["1@a".into(), "1@b".into()],
                ..good.clone()
            },
            AnswerBody {
                triad: vec!["1@a".into(), "x".into(), "1@c".into()],
                ..good.clone()
            },
            AnswerBody {
                version: "\u{1b}[2J".into(),
                ..good.clone()
            },
            AnswerBody {
                version: "v".repeat(SERVER_VERSION_CHARS_MAX + 1),
                ..good.clone()
            },
        ];
        for body in bad {
            assert_eq!(
                parse_answer(&encode(&body), 3, from()),
                Err(Ignored::Body),
                "{body:?}"
            );
        }
        let mut trailing = encode(&good);
        trailing.push(0);
        assert_eq!(parse_answer(&trailing, 3, from()), Err(Ignored::Body));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let _ = answer(&bytes, &facts());
            let _ = parse_request(&bytes);
            let _ = parse_answer(&bytes, 0, from());
        }

        #[test]
        fn arbitrary_bodies_behind_a_good_header_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            nonce in any::<u64>(),
        ) {
            let mut bytes = header(KIND_ANSWER, nonce);
            bytes.extend(body);
            let _ = parse_answer(&bytes, nonce, from());
            let mut request = header(KIND_REQUEST, nonce);
            request.extend(&bytes);
            // Whatever follows a request's header is padding.
            if request.len() <= DATAGRAM_BYTES_MAX {
                prop_assert_eq!(parse_request(&request), Ok(Request { nonce }));
            }
        }
    }
}
