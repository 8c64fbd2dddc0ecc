//! Links judged by progress: a peer's large frame crossing a slow link keeps its link
//! open, a client connection that goes silent is replaced, and a server closes a client
//! that says nothing for its idle limit but keeps one that speaks.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use hal_core::catalog::Catalog;
use hal_core::client::{ClientConfig, ClientEvent};
use hal_core::protocol::{ClientId, Entry, LogIndex, PeerBody, PeerMessage, Term};
use hal_core::seats::Command;
use hal_core::server::{Config, Durable, Persist};
use hal_core::timing::Timing;
use hal_net::clock::SystemClock;
use hal_net::node::{LinkTiming, Node, NodeConfig};
use hal_net::session::Session;
use hal_net::storage::{Storage, StorageError};
use hal_net::transport::TcpTransport;
use hal_net::wire::{FRAME_BYTES_MAX_PEER, Hello, Identity, Message, WireCodec};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Encoder, Framed};

/// Storage that forgets everything (these tests are about links).
struct NoStorage;

impl Storage for NoStorage {
    async fn load(&mut self) -> Result<Durable, StorageError> {
        Ok(Durable::default())
    }

    async fn persist(&mut self, _batch: Vec<Persist>) -> Result<(), StorageError> {
        Ok(())
    }
}

fn identity() -> Identity {
    Identity {
        vendor_key: String::new(),
        triad: vec!["1@a".into(), "1@b".into(), "1@c".into()],
        license_digest: "d".into(),
        features: vec![],
    }
}

/// A big `Append` from #2 to #1 that #1 rejects (its log has no index 1000).
fn big_append(bytes: usize) -> Message {
    let user: Arc<str> = Arc::from("u".repeat(4096));
    let entry = Arc::new(Entry {
        term: Term(0),
        command: Command::Grant {
            client: ClientId(1),
            seq: hal_core::protocol::RequestSeq(1),
            feature: "cad".into(),
            user,
            host: "h".into(),
            borrow_end: None,
            by: ServerId::SECONDARY,
            at: hal_core::time::WallTime(1_800_000_000_000),
        },
    });
    Message::Peer(PeerMessage {
        from: ServerId::SECONDARY,
        to: ServerId::PRIMARY,
        term: Term(0),
        body: PeerBody::Append {
            prev_index: LogIndex(1000),
            prev_term: Term(0),
            entries: vec![entry; bytes / 4096],
            commit: LogIndex(0),
            round: 1,
        },
    })
}

/// Starts a node (`core` with `peers`) on a free port of 127.0.0.1; returns its address.
async fn start_node(
    core: Config,
    peers: BTreeMap<ServerId, String>,
    client_connections_max: usize,
) -> String {
    let links = LinkTiming::for_timing(&core.timing);
    start_node_with(core, peers, client_connections_max, links).await
}

async fn start_node_with(
    core: Config,
    peers: BTreeMap<ServerId, String>,
    client_connections_max: usize,
    links: LinkTiming,
) -> String {
    let config = NodeConfig {
        links,
        core,
        listen: "127.0.0.1:0".into(),
        peers,
        identity: identity(),
        client_connections_max,
        // Above the global limit: the tests of that limit open every connection from one
        // address.
        client_connections_per_address_max: client_connections_max * 2,
        certificate_expires_ms: None,
        borrow_signer: None,
        journal: hal_net::journal::Journal::off(),
        license_file: None,
    };
    let clock = SystemClock::new();
    let node = Node::bind(config, Catalog::default(), TcpTransport, NoStorage, clock)
        .await
        .unwrap();
    let addr = node.local_addr();
    tokio::spawn(node.run(std::future::pending()));
    addr
}

/// A fake server that welcomes every connection as server `as_server` and then stays
/// silent (no replies, no pongs, no error). Returns its address and a count of the
/// connections it took.
async fn silent_server(as_server: ServerId) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
            let _hello = link.next().await;
            let welcome = Message::Welcome { server: as_server };
            link.send(welcome).await.unwrap();
            open.push(link); // kept open, silent
        }
    });
    (addr, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_frame_on_a_slow_link_does_not_count_as_a_stall() {
    let timing = Timing::lan();
    let links = LinkTiming::for_timing(&timing);
    let mut peers = BTreeMap::new();
    // Unreachable peers: #1 dials them in vain; only its incoming link matters here.
    peers.insert(ServerId::SECONDARY, "127.0.0.1:9".to_string());
    peers.insert(ServerId::TIEBREAKER, "127.0.0.1:9".to_string());
    let addr = start_node(Config::triad(ServerId::PRIMARY, timing), peers, 8).await;

    let stream = TcpStream::connect(&addr).await.unwrap();
    let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
    let hello = Hello::Peer {
        from: ServerId::SECONDARY,
        to: ServerId::PRIMARY,
        identity: identity(),
    };
    link.send(Message::Hello(hello)).await.unwrap();
    let welcome = link.next().await.unwrap().unwrap();
    assert_eq!(
        welcome,
        Message::Welcome {
            server: ServerId::PRIMARY
        }
    );

    // 4 MiB at about 2.6 MB/s: three times the stall timeout to cross.
    let mut frame = BytesMut::new();
    WireCodec::new(FRAME_BYTES_MAX_PEER)
        .encode(big_append(4 << 20), &mut frame)
        .unwrap();
    let started = tokio::time::Instant::now();
    for chunk in frame.chunks(64 * 1024) {
        link.get_mut().write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        started.elapsed() > links.stall_after * 2,
        "{:?}",
        started.elapsed()
    );

    // The link is still open: a ping is answered.
    link.send(Message::Ping { nonce: 7 }).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match link.next().await {
                Some(Ok(Message::Pong { nonce, .. })) => return Some(nonce),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        answer,
        Some(7),
        "the link was closed during the large frame"
    );
}

#[tokio::test]
async fn a_silent_client_connection_is_replaced() {
    // A "server" that welcomes every connection and then never answers.
    let (addr, connections) = silent_server(ServerId::PRIMARY).await;
    let timing = Timing::lan();
    let config = ClientConfig::new(timing);
    let mut session = Session::new(
        TcpTransport,
        SystemClock::new(),
        vec![addr],
        ClientId(9),
        "u",
        "h",
        config,
    );
    let seq = session.checkout("cad");
    let event = tokio::time::timeout(Duration::from_secs(30), session.next_event())
        .await
        .unwrap();
    assert!(
        // Every attempt went unanswered: the server may have acted on one, so the
        // outcome is unknown (not a denial).
        matches!(event, ClientEvent::OutcomeUnknown { seq: s, .. } if s == seq),
        "{event:?}"
    );
    // The client kept retrying within its give-up time; each retry after a silent
    // request_timeout went over a fresh connection, not into the dead one.
    let opened = connections.load(Ordering::SeqCst);
    assert!(
        opened >= 3,
        "only {opened} connection(s) opened: the stalled one was reused"
    );
    assert!(
        session
            .last_failure()
            .is_some_and(|f| f.contains("stalled")),
        "{:?}",
        session.last_failure()
    );
}

/// Opens a client connection to `addr` and says hello; returns the link and the answer.
async fn client_hello(addr: &str) -> (Framed<TcpStream, WireCodec>, Message) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut link = Framed::new(stream, WireCodec::new(FRAME_BYTES_MAX_PEER));
    link.send(Message::Hello(Hello::Client)).await.unwrap();
    let answer = link.next().await.unwrap().unwrap();
    (link, answer)
}

#[tokio::test]
async fn a_client_silent_for_the_idle_limit_is_closed_and_one_that_speaks_is_kept() {
    let timing = Timing::lan();
    let mut links = LinkTiming::for_timing(&timing);
    links.client_idle_max = Duration::from_millis(400);
    let addr = start_node_with(Config::single(timing), BTreeMap::new(), 8, links).await;
    let open = |addr: String| async move {
        let (link, welcome) = client_hello(&addr).await;
        assert!(matches!(welcome, Message::Welcome { .. }), "{welcome:?}");
        link
    };
    // Timed from before the hello: the server cannot start the idle limit before it has
    // the hello, so the limit has surely run by the close.
    let started = tokio::time::Instant::now();
    let mut silent = open(addr.clone()).await;
    let silent_closed = tokio::spawn(async move {
        let end = tokio::time::timeout(Duration::from_secs(5), silent.next()).await;
        (end.map(|frame| frame.is_none()), started.elapsed())
    });
    let mut talking = open(addr.clone()).await;
    // Every 150 ms a request (a checkin of a seat that does not exist, answered with a
    // denial) for three idle limits: each one is news, so the connection stays.
    let request = |seq| {
        Message::Request(hal_core::protocol::ClientRequest {
            client: ClientId(5),
            seq: hal_core::protocol::RequestSeq(seq),
            op: hal_core::protocol::Op::Checkin {
                handle: hal_core::protocol::Handle(77),
            },
        })
    };
    for seq in 1..=8 {
        talking.send(request(seq)).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(2), talking.next()).await;
        assert!(
            matches!(answer, Ok(Some(Ok(Message::Reply(_))))),
            "request {seq} after {:?}: {answer:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The silent one was closed once 400 ms had passed without a frame, not before.
    let (closed, after) = silent_closed.await.unwrap();
    assert_eq!(closed, Ok(true), "after {after:?}");
    assert!(
        after >= Duration::from_millis(400) && after < Duration::from_millis(1200),
        "{after:?}"
    );
}

#[tokio::test]
async fn client_connections_are_bounded_and_a_full_server_says_so() {
    let timing = Timing::lan();
    let addr = start_node(Config::single(timing), BTreeMap::new(), 2).await;
    let (first, answer) = client_hello(&addr).await;
    assert_eq!(
        answer,
        Message::Welcome {
            server: ServerId::PRIMARY
        }
    );
    let (_second, answer) = client_hello(&addr).await;
    assert_eq!(
        answer,
        Message::Welcome {
            server: ServerId::PRIMARY
        }
    );
    let (_third, answer) = client_hello(&addr).await;
    let Message::Refused { reason } = answer else {
        panic!("third client welcomed: {answer:?}")
    };
    assert!(
        reason.contains("2 client connections are open already"),
        "{reason}"
    );
    // A slot frees when a client leaves.
    drop(first);
    let mut welcomed = false;
    for _ in 0..50 {
        if client_hello(&addr).await.1
            == (Message::Welcome {
                server: ServerId::PRIMARY,
            })
        {
            welcomed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(welcomed, "the freed slot was not given to a new client");
}

#[tokio::test]
async fn a_peer_link_that_goes_silent_is_reopened() {
    // A fake #2 that welcomes #1's link and then never answers a ping.
    let (fake, connections) = silent_server(ServerId::SECONDARY).await;
    let timing = Timing::lan();
    let mut peers = BTreeMap::new();
    peers.insert(ServerId::SECONDARY, fake);
    peers.insert(ServerId::TIEBREAKER, "127.0.0.1:9".to_string());
    start_node(Config::triad(ServerId::PRIMARY, timing), peers, 8).await;
    // Each silent link lasts `stall_after`, then a backoff that starts short: in 3 s,
    // several, and never more than one per `stall_after`.
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await;
    let links = LinkTiming::for_timing(&timing);
    let most = window.as_millis() / links.stall_after.as_millis() + 1;
    let opened = connections.load(Ordering::SeqCst) as u128;
    assert!(
        opened >= 3,
        "{opened} link(s) in 3 s: the silent one was not detected"
    );
    assert!(
        opened <= most,
        "{opened} links in 3 s: the backoff does not hold"
    );
}
