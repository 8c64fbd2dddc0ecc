//! The client's side: send one request to the broadcast address (or the addresses given)
//! and the multicast group, collect the answers for a bounded time, and find the one
//! triad they describe ([`Found::license_path`]). Generic over the socket
//! ([`search_with`]), so the simulator runs this very loop over turmoil's UDP.
//!
//! What is found is only a license path: nothing in an answer is trusted further. The
//! client then connects to those servers over TLS and verifies each against the triad's
//! CA and its slot, as with a license path written by hand, so a forged answer that
//! points at other machines gets nothing but a refused handshake.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::codec::{self, Answer, DATAGRAM_BYTES_MAX, Request};
use super::socket::{DatagramSocket, client_socket};
use crate::addr::LicensePath;
use crate::config::DEFAULT_PORT;

/// The variable that names the port to search on (default [`DEFAULT_PORT`]).
pub const PORT_VAR: &str = "HAL_DISCOVERY_PORT";
/// The variable that names a multicast group to search too (`239.255.62.62`).
pub const GROUP_VAR: &str = "HAL_DISCOVERY_GROUP";
/// The variable that replaces the broadcast address with addresses of its own,
/// separated by `,` (`192.168.1.255` or `10.0.0.5:6200`): for networks where
/// `255.255.255.255` does not reach the servers.
pub const TO_VAR: &str = "HAL_DISCOVERY_TO";
/// How long a search waits for answers unless told otherwise: servers on a LAN answer
/// within milliseconds.
pub const WAIT_DEFAULT: Duration = Duration::from_millis(500);
/// The longest a search may wait.
pub const WAIT_MAX: Duration = Duration::from_secs(60);
/// The most addresses a search sends to.
pub const TARGETS_MAX: usize = 16;
/// The most answers a search keeps (three per triad; more means a crowded network, and
/// the search says so by listing what it kept).
pub const ANSWERS_MAX: usize = 64;

/// Where and how long to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The port the servers listen on.
    pub port: u16,
    /// Where to send the request instead of `255.255.255.255` (an address without a port
    /// gets [`Search::port`]); empty: the broadcast address.
    pub to: Vec<SocketAddr>,
    /// A multicast group the servers joined (`discovery_multicast` in their config).
    pub group: Option<Ipv4Addr>,
    /// The local address multicast leaves from (default: the routing table's choice).
    pub interface: Option<Ipv4Addr>,
    /// How long to collect answers.
    pub wait: Duration,
}

impl Default for Search {
    fn default() -> Search {
        Search {
            port: DEFAULT_PORT,
            to: Vec::new(),
            group: None,
            interface: None,
            wait: WAIT_DEFAULT,
        }
    }
}

/// Why a search found no one triad.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    #[error("{what}: {problem}")]
    Setting { what: String, problem: String },
    #[error("cannot open a UDP socket to search for license servers: {0}")]
    Socket(#[source] std::io::Error),
    #[error("cannot send the discovery request anywhere: {0}")]
    SendFailed(String),
    #[error(
        "no license server answered discovery on {targets} within {} ms: start the servers, check that they run with discovery on and that UDP port {port} reaches them (name a subnet's broadcast address with {TO_VAR} or --to, or a multicast group with {GROUP_VAR} or --group), or set HAL_LICENSE_PATH",
        waited.as_millis()
    )]
    NothingAnswered {
        targets: String,
        port: u16,
        waited: Duration,
    },
    #[error(
        "license servers of {} different triads answered, and a client does not guess: set HAL_LICENSE_PATH to one of {}",
        paths.len(),
        paths.join(" | ")
    )]
    SeveralTriads { paths: Vec<String> },
}

impl Search {
    /// The search the environment describes: [`PORT_VAR`], [`GROUP_VAR`], [`TO_VAR`],
    /// each optional.
    pub fn from_env() -> Result<Search, DiscoveryError> {
        let var = |name: &str| std::env::var_os(name).map(|v| (name.to_string(), v));
        let text = |(name, value): (String, std::ffi::OsString)| {
            value.into_string().map_err(|_| DiscoveryError::Setting {
                what: name.clone(),
                problem: "not valid UTF-8".into(),
            })
        };
        let mut search = Search::default();
        if let Some(port) = var(PORT_VAR).map(text).transpose()? {
            search.port = parse_port(&port).map_err(|problem| setting(PORT_VAR, problem))?;
        }
        if let Some(group) = var(GROUP_VAR).map(text).transpose()? {
            search.group =
                Some(parse_group(&group).map_err(|problem| setting(GROUP_VAR, problem))?);
        }
        if let Some(to) = var(TO_VAR).map(text).transpose()? {
            for item in to.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let target = parse_target(item).map_err(|problem| setting(TO_VAR, problem))?;
                search.to.push(target);
            }
        }
        search.check()?;
        Ok(search)
    }

    /// Refuses a search that cannot work: port 0, too many targets, a wait of nothing or
    /// of more than [`WAIT_MAX`].
    pub fn check(&self) -> Result<(), DiscoveryError> {
        if self.port == 0 {
            return Err(setting("port", "0 is not a port servers listen on".into()));
        }
        if self.to.len() > TARGETS_MAX {
            let problem = format!("{} addresses; at most {TARGETS_MAX}", self.to.len());
            return Err(setting("addresses to search", problem));
        }
        if self.wait.is_zero() || self.wait > WAIT_MAX {
            let problem = format!(
                "{} ms; from 1 ms to {} s",
                self.wait.as_millis(),
                WAIT_MAX.as_secs()
            );
            return Err(setting("the wait for answers", problem));
        }
        Ok(())
    }

    /// Where the request goes: the addresses given (port [`Search::port`] where they
    /// name none) or the broadcast address, then the group.
    pub fn targets(&self) -> Vec<SocketAddr> {
        let mut targets: Vec<SocketAddr> = if self.to.is_empty() {
            vec![SocketAddr::from((Ipv4Addr::BROADCAST, self.port))]
        } else {
            self.to
                .iter()
                .map(|to| match to.port() {
                    0 => SocketAddr::new(to.ip(), self.port),
                    _ => *to,
                })
                .collect()
        };
        if let Some(group) = self.group {
            targets.push(SocketAddr::from((group, self.port)));
        }
        targets
    }

    /// Searches from a fresh socket (on the current tokio runtime).
    pub async fn run(&self) -> Result<Found, DiscoveryError> {
        self.check()?;
        let socket = client_socket(self.interface).map_err(DiscoveryError::Socket)?;
        let nonce = getrandom::u64().map_err(|e| {
            DiscoveryError::Socket(std::io::Error::other(format!("cannot draw a nonce: {e}")))
        })?;
        let found = search_with(&socket, &self.targets(), nonce, self.wait).await?;
        found.require_some()
    }
}

fn setting(what: &str, problem: String) -> DiscoveryError {
    DiscoveryError::Setting {
        what: what.into(),
        problem,
    }
}

/// A port from 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| format!("'{text}' is not a port from 1 to 65535"))
}

/// An IPv4 multicast address (224.0.0.0 to 239.255.255.255).
pub fn parse_group(text: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not an IPv4 address such as 239.255.62.62"))?;
    if !ip.is_multicast() {
        return Err(format!(
            "{ip} is not a multicast address (224.0.0.0 to 239.255.255.255; 239.255.x.y is for a site's own use)"
        ));
    }
    Ok(ip)
}

/// An address to send to: an IP address (the search's port is used) or `ip:port`.
pub fn parse_target(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 0));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("'{text}' is not an IP address or ip:port, e.g. 192.168.1.255 or 10.0.0.5:6200")
    })
}

/// One server's answer and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub from: SocketAddr,
    pub answer: Answer,
}

/// What a search collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The answers, one per server (a server heard twice counts once), in arrival order.
    pub answers: Vec<Discovered>,
    /// Datagrams that were not answers to this search.
    pub ignored: u64,
    /// Where the request went, and the sends that failed (with why).
    pub targets: Vec<SocketAddr>,
    pub send_errors: Vec<String>,
    /// How long the search collected answers.
    pub waited: Duration,
}

impl Found {
    /// The answers grouped by the license path they give, in path order.
    pub fn triads(&self) -> BTreeMap<String, Vec<&Discovered>> {
        let mut triads: BTreeMap<String, Vec<&Discovered>> = BTreeMap::new();
        for found in &self.answers {
            triads
                .entry(found.answer.path.to_string())
                .or_default()
                .push(found);
        }
        triads
    }

    /// The one license path the answers agree on. Several different ones are an error
    /// that lists them: two triads on one LAN, or servers configured with different triad
    /// lists, and a client must not guess which is its own.
    pub fn license_path(&self) -> Result<LicensePath, DiscoveryError> {
        let triads = self.triads();
        let mut paths = triads.values().filter_map(|found| found.first());
        match (paths.next(), paths.next()) {
            (Some(one), None) => Ok(one.answer.path.clone()),
            (None, _) => Err(self.nothing_answered()),
            (Some(_), Some(_)) => Err(DiscoveryError::SeveralTriads {
                paths: triads.into_keys().collect(),
            }),
        }
    }

    /// Itself, or the error that nothing answered.
    fn require_some(self) -> Result<Found, DiscoveryError> {
        if self.answers.is_empty() {
            return Err(self.nothing_answered());
        }
        Ok(self)
    }

    fn nothing_answered(&self) -> DiscoveryError {
        DiscoveryError::NothingAnswered {
            targets: format_targets(&self.targets),
            port: self.targets.first().map_or(DEFAULT_PORT, SocketAddr::port),
            waited: self.waited,
        }
    }
}

fn format_targets(targets: &[SocketAddr]) -> String {
    let list: Vec<String> = targets.iter().map(ToString::to_string).collect();
    list.join(", ")
}

/// Sends the request with `nonce` to each of `targets` from `socket`, and collects the
/// answers that arrive within `wait`. If nothing has answered by half the wait, the
/// request is sent once more (a datagram lost on the way would otherwise leave a client
/// without its servers). Fails only when no send succeeded; an empty [`Found`] means
/// nothing answered.
pub async fn search_with<S: DatagramSocket>(
    socket: &S,
    targets: &[SocketAddr],
    nonce: u64,
    wait: Duration,
) -> Result<Found, DiscoveryError> {
    let start = tokio::time::Instant::now();
    let (resend_at, deadline) = (start + wait / 2, start + wait);
    let request = Request { nonce }.encode();
    let mut found = Found {
        answers: Vec::new(),
        ignored: 0,
        targets: targets.to_vec(),
        send_errors: Vec::new(),
        waited: wait,
    };
    send(socket, &request, &mut found).await?;
    let mut resent = false;
    let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX + 1];
    while found.answers.len() < ANSWERS_MAX {
        let until = if resent { deadline } else { resend_at };
        let received = tokio::time::timeout_at(until, socket.recv_from(&mut buffer)).await;
        let Ok(received) = received else {
            if resent {
                break;
            }
            resent = true;
            if found.answers.is_empty() {
                send(socket, &request, &mut found).await?;
            }
            continue;
        };
        let Ok((length, from)) = received else {
            // An ICMP error surfacing on the socket: not an answer.
            found.ignored += 1;
            continue;
        };
        let bytes = buffer.get(..length).unwrap_or_default();
        match codec::parse_answer(bytes, nonce, from) {
            Ok(answer) => found.take(Discovered { from, answer }),
            Err(_) => found.ignored += 1,
        }
    }
    Ok(found)
}

/// Sends `request` to each of `found`'s targets; fails when every send failed.
async fn send<S: DatagramSocket>(
    socket: &S,
    request: &[u8],
    found: &mut Found,
) -> Result<(), DiscoveryError> {
    let mut failed = Vec::new();
    for &target in &found.targets {
        if let Err(error) = socket.send_to(request, target).await {
            failed.push(format!("{target}: {error}"));
        }
    }
    if failed.len() == found.targets.len() {
        return Err(DiscoveryError::SendFailed(failed.join("; ")));
    }
    found.send_errors.extend(failed);
    Ok(())
}

impl Found {
    /// Keeps `new` unless the same server already answered (heard by broadcast and by
    /// multicast, say).
    fn take(&mut self, new: Discovered) {
        let same = |old: &Discovered| {
            old.from == new.from
                && old.answer.slot == new.answer.slot
                && old.answer.path == new.answer.path
        };
        if !self.answers.iter().any(same) {
            self.answers.push(new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::codec::{Facts, Role};
    use hal_core::ServerId;

    fn answer(path: &str, slot: u8) -> Discovered {
        let triad = path.split(';').map(|t| t.parse().unwrap()).collect();
        let facts = Facts {
            triad,
            slot: ServerId::new(slot),
            role: Role::Standby,
            leader: None,
            version: "0.1.0".into(),
        };
        let from: SocketAddr = format!("10.0.0.{slot}:6200").parse().unwrap();
        let bytes = codec::answer(&Request { nonce: 1 }.encode(), &facts).unwrap();
        Discovered {
            from,
            answer: codec::parse_answer(&bytes, 1, from).unwrap(),
        }
    }

    fn found(answers: Vec<Discovered>) -> Found {
        Found {
            answers,
            ignored: 0,
            targets: vec!["255.255.255.255:6200".parse().unwrap()],
            send_errors: Vec::new(),
            waited: WAIT_DEFAULT,
        }
    }

    const A: &str = "6200@a1;6200@a2;6200@a3";

    #[test]
    fn one_triad_gives_its_path_even_with_a_server_missing() {
        let f = found(vec![answer(A, 1), answer(A, 3)]);
        assert_eq!(f.license_path().unwrap().to_string(), A);
    }

    #[test]
    fn two_triads_are_an_error_naming_both() {
        let b = "6200@b1;6200@b2;6200@b3";
        let f = found(vec![answer(A, 1), answer(b, 2)]);
        let error = f.license_path().unwrap_err().to_string();
        assert!(error.contains("2 different triads"), "{error}");
        assert!(error.contains(A) && error.contains(b), "{error}");
    }

    #[test]
    fn nothing_found_is_an_error_that_says_what_to_do() {
        let error = found(Vec::new()).license_path().unwrap_err().to_string();
        assert!(
            error.starts_with(
                "no license server answered discovery on 255.255.255.255:6200 within 500 ms"
            ),
            "{error}"
        );
        assert!(error.contains("HAL_LICENSE_PATH"), "{error}");
    }

    #[test]
    fn a_server_heard_twice_counts_once() {
        let mut f = found(Vec::new());
        f.take(answer(A, 1));
        f.take(answer(A, 1));
        f.take(answer(A, 2));
        assert_eq!(f.answers.len(), 2);
    }

    #[test]
    fn targets_default_to_the_broadcast_address_and_add_the_group() {
        let mut search = Search {
            port: 7000,
            ..Search::default()
        };
        assert_eq!(search.targets(), ["255.255.255.255:7000".parse().unwrap()]);
        search.to = vec![
            parse_target("127.255.255.255").unwrap(),
            parse_target("10.0.0.5:6201").unwrap(),
        ];
        search.group = Some(parse_group("239.255.62.62").unwrap());
        let want: Vec<SocketAddr> = [
            "127.255.255.255:7000",
            "10.0.0.5:6201",
            "239.255.62.62:7000",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        assert_eq!(search.targets(), want);
    }

    /// A network that loses the first request and lets the server answer the second.
    struct LosesFirst {
        sent: std::sync::Mutex<u32>,
        answers: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>>,
        answer: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    }

    impl DatagramSocket for LosesFirst {
        async fn send_to(&self, bytes: &[u8], _to: SocketAddr) -> std::io::Result<usize> {
            let sent = {
                let mut sent = self.sent.lock().unwrap();
                *sent += 1;
                *sent
            };
            if sent > 1 {
                let facts = Facts {
                    triad: A.split(';').map(|t| t.parse().unwrap()).collect(),
                    slot: ServerId::new(1),
                    role: Role::Active,
                    leader: ServerId::new(1),
                    version: "0.1.0".into(),
                };
                self.answer
                    .send(codec::answer(bytes, &facts).unwrap())
                    .unwrap();
            }
            Ok(bytes.len())
        }

        async fn recv_from(&self, buffer: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
            let bytes = self.answers.lock().await.recv().await.unwrap();
            buffer[..bytes.len()].copy_from_slice(&bytes);
            Ok((bytes.len(), "10.0.0.1:6200".parse().unwrap()))
        }
    }

    #[tokio::test]
    async fn a_lost_request_is_sent_once_more_at_half_the_wait() {
        let (answer, answers) = tokio::sync::mpsc::unbounded_channel();
        let socket = LosesFirst {
            sent: std::sync::Mutex::new(0),
            answers: tokio::sync::Mutex::new(answers),
            answer,
        };
        let to = ["255.255.255.255:6200".parse().unwrap()];
        let found = search_with(&socket, &to, 7, Duration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(*socket.sent.lock().unwrap(), 2);
        assert_eq!(found.license_path().unwrap().to_string(), A);
    }

    #[test]
    fn bad_settings_get_clear_errors() {
        assert!(parse_port("0").unwrap_err().contains("not a port"));
        assert!(parse_port("70000").is_err());
        assert!(
            parse_group("10.0.0.1")
                .unwrap_err()
                .contains("not a multicast")
        );
        assert!(
            parse_group("lic1")
                .unwrap_err()
                .contains("not an IPv4 address")
        );
        assert!(
            parse_target("lic1")
                .unwrap_err()
                .contains("not an IP address")
        );
        let zero = Search {
            wait: Duration::ZERO,
            ..Search::default()
        };
        assert!(zero.check().unwrap_err().to_string().contains("wait"));
        let many = Search {
            to: vec![parse_target("10.0.0.1").unwrap(); TARGETS_MAX + 1],
            ..Search::default()
        };
        assert!(many.check().is_err());
    }
}
