//! A minimal in-memory driver for three servers and any number of clients, for
//! benchmarks: messages are delivered in order with no delay or loss, persist writes are
//! counted and dropped (the disk is not what is measured), and time advances one
//! millisecond per round so timers keep working.

use std::collections::VecDeque;

use hal_core::ServerId;
use hal_core::catalog::{Catalog, FeatureRules};
use hal_core::client::{Client, ClientConfig, ClientEvent, Endpoint};
use hal_core::protocol::{ClientId, ClientRequest, PeerMessage, ServerReply};
use hal_core::server::{Config, Durable, Output, Server};
use hal_core::time::{Now, Time, WallTime};
use hal_core::timing::Timing;

/// Three servers, their clients and the messages between them.
#[derive(Debug)]
pub struct Cluster {
    pub servers: Vec<Server>,
    pub clients: Vec<Client>,
    now: Now,
    peer_queue: VecDeque<PeerMessage>,
    request_queue: VecDeque<(ServerId, usize, ClientRequest)>,
    reply_queue: VecDeque<(usize, ServerReply)>,
    /// Checkin+checkout cycles completed.
    pub cycles: u64,
    pub persist_writes: u64,
}

/// A catalog with one feature of `count` seats.
pub fn catalog(count: u32) -> Catalog {
    let rules = FeatureRules {
        count,
        borrow_hours_max: Some(168),
        start: None,
        end: None,
        hostid_ok: true,
    };
    Catalog::from_rules([("cad".to_string(), rules)])
}

impl Cluster {
    /// A triad with a leader elected and `clients` clients.
    pub fn new(clients: usize, count: u32) -> Cluster {
        let now = Now {
            mono: Time(0),
            wall: WallTime(1_800_000_000_000),
        };
        let timing = Timing::lan();
        let servers = ServerId::ALL
            .into_iter()
            .map(|id| {
                Server::new(
                    Config::triad(id, timing),
                    catalog(count),
                    Durable::default(),
                    now,
                )
            })
            .collect();
        let clients = (0..clients)
            .map(|i| {
                let id = ClientId(i as u64 + 1);
                Client::new(id, "user", "host", 3, ClientConfig::new(timing), now)
            })
            .collect();
        let mut cluster = Cluster {
            servers,
            clients,
            now,
            peer_queue: VecDeque::new(),
            request_queue: VecDeque::new(),
            reply_queue: VecDeque::new(),
            cycles: 0,
            persist_writes: 0,
        };
        // Let #1 win its election.
        for _ in 0..1500 {
            cluster.round();
        }
        assert!(cluster.servers[0].is_leader(), "#1 leads after start-up");
        cluster
    }

    /// Starts one checkout on every client.
    pub fn start_all(&mut self) {
        for i in 0..self.clients.len() {
            self.clients[i].checkout(self.now, "cad");
            self.drain_client(i);
        }
    }

    /// Runs rounds until `cycles` more cycles completed.
    pub fn run_cycles(&mut self, cycles: u64) {
        let target = self.cycles + cycles;
        while self.cycles < target {
            self.round();
        }
    }

    /// One round: time moves 1 ms, timers fire, and every queued message is delivered;
    /// each server drains once per batch of inputs.
    pub fn round(&mut self) {
        self.now.mono = Time(self.now.mono.0 + 1);
        self.now.wall = WallTime(self.now.wall.0 + 1);
        for s in 0..3 {
            if self.servers[s]
                .poll_timeout()
                .is_some_and(|t| t <= self.now.mono)
            {
                self.servers[s].handle_timeout(self.now);
            }
        }
        let requests: Vec<_> = self.request_queue.drain(..).collect();
        for (to, _, request) in requests {
            self.servers[to.index()].handle_client(self.now, request);
        }
        let peers: Vec<_> = self.peer_queue.drain(..).collect();
        for message in peers {
            self.servers[message.to.index()].handle_peer(self.now, message);
        }
        for s in 0..3 {
            self.drain_server(s);
        }
        let replies: Vec<_> = self.reply_queue.drain(..).collect();
        for (i, reply) in replies {
            let endpoint = Endpoint(reply.from.index() as u8);
            self.clients[i].handle_reply(self.now, endpoint, reply);
            self.drain_client(i);
        }
    }

    fn drain_server(&mut self, s: usize) {
        while let Some(output) = self.servers[s].poll_output() {
            match output {
                Output::Persist(_) => self.persist_writes += 1,
                Output::Peer(message) => self.peer_queue.push_back(message),
                Output::Reply(reply) => {
                    let i = (reply.client.0 - 1) as usize;
                    self.reply_queue.push_back((i, reply));
                }
                Output::Event(_) => {}
            }
        }
    }

    fn drain_client(&mut self, i: usize) {
        while let Some(transmit) = self.clients[i].poll_transmit() {
            let to = ServerId::ALL[usize::from(transmit.to.0)];
            self.request_queue.push_back((to, i, transmit.request));
        }
        while let Some(event) = self.clients[i].poll_event() {
            match event {
                ClientEvent::Granted { handle, .. } => {
                    self.clients[i].checkin(self.now, handle);
                }
                ClientEvent::Released { .. } => {
                    self.cycles += 1;
                    self.clients[i].checkout(self.now, "cad");
                }
                ClientEvent::Denied { .. } | ClientEvent::OutcomeUnknown { .. } => {
                    self.clients[i].checkout(self.now, "cad");
                }
                _ => {}
            }
            while let Some(transmit) = self.clients[i].poll_transmit() {
                let to = ServerId::ALL[usize::from(transmit.to.0)];
                self.request_queue.push_back((to, i, transmit.request));
            }
        }
    }
}
