//! Bytes into discovery's pure decisions, as a server and as a client meet them: the
//! bytes as a request to `hal_net::discovery::answer` (a server with a triad, and a single
//! server), and as an answer to `parse_answer`. Nothing may panic; an answer is never
//! larger than the request it answers, and parses, with the request's nonce, to what the
//! server knows.

#![no_main]

use std::net::SocketAddr;

use hal_net::client::ServerId;
use hal_net::discovery::codec::{Facts, Role, parse_request};
use hal_net::discovery::{answer, parse_answer};
use libfuzzer_sys::fuzz_target;

fn facts(triad: bool) -> Facts {
    Facts {
        triad: if triad {
            [
                "6200@lic1.example.com",
                "6200@lic2.example.com",
                "6200@[::1]",
            ]
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect()
        } else {
            Vec::new()
        },
        slot: if triad { ServerId::new(2) } else { None },
        role: Role::Standby,
        leader: ServerId::new(1),
        version: "0.1.0".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let from = SocketAddr::from(([192, 168, 1, 7], 6200));
    let nonce = data
        .first_chunk::<8>()
        .map_or(0, |bytes| u64::from_be_bytes(*bytes));
    if let Ok(answer) = parse_answer(data, nonce, from) {
        assert!(!answer.path.is_empty());
    }
    for triad in [true, false] {
        let facts = facts(triad);
        let Ok(bytes) = answer(data, &facts) else {
            continue;
        };
        assert!(
            bytes.len() <= data.len(),
            "an answer larger than its request"
        );
        let request = parse_request(data).expect("answered a datagram that is no request");
        let parsed =
            parse_answer(&bytes, request.nonce, from).expect("an answer that does not parse");
        assert_eq!(parsed.slot, facts.slot);
        assert_eq!(parsed.role, facts.role);
        assert_eq!(parsed.leader, facts.leader);
        if triad {
            assert_eq!(parsed.path.addrs(), facts.triad.as_slice());
        } else {
            assert_eq!(parsed.path.to_string(), "6200@192.168.1.7");
        }
    }
});
