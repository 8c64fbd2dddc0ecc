//! Applying the schedule's faults to the lab, one at a time, and the fault log.
//!
//! Each fault is made, held for its time, checked for having taken effect where that can
//! be seen from outside, and undone:
//!
//! | fault | made by | seen by |
//! |---|---|---|
//! | crash | SIGKILL; started again from its data at the end | its status port closed |
//! | cut | nftables drops at both servers' input | a server reports the link down |
//! | cut_oneway | a drop at the receiver's input only | either reports the link down |
//! | loss | `numgen random mod 100 < N drop` both ways | the rules' drop counters |
//! | flapping | the cut made and undone every period | the cuts' drop counters |
//! | latency | DNAT of the pair's peer connections to [`DelayProxy`]s | bytes through both proxies |
//! | clock | the server's libfaketime offset file | the wall clock its status reports |
//!
//! The log (`faults.jsonl` in the run directory) has one JSON object per line, a line when
//! a fault starts and one when it ends:
//! `{"t_unix_ms":..,"fault":"crash|restart|cut|cut_oneway|loss|flapping|latency|clock","phase":"start|end","a":[1],"b":[2],...}`
//! with `lasts_ms` at the start, the fault's own figure (`loss_pct`, `period_ms`,
//! `delay_ms`, `step_ms`), and at the end `observed` (whether the fault was seen to take
//! effect). A crash ends with a `restart` line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use hal_core::ServerId;
use serde::Serialize;
use tokio::time::Instant;

use super::lab::{Lab, PORT};
use super::schedule::{Fault, Others, Planned, others};
use crate::delay_proxy::DelayProxy;

/// How far a stepped clock may read from the step asked for (the status round trip and
/// the seconds the file is written in).
const CLOCK_SLACK_MS: i64 = 5_000;

/// One line of the fault log.
#[derive(Debug, Serialize)]
struct Record {
    t_unix_ms: u64,
    fault: &'static str,
    phase: &'static str,
    a: Vec<u8>,
    b: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lasts_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_pct: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed: Option<bool>,
}

impl Record {
    fn new(fault: &Fault, name: &'static str, phase: &'static str) -> Record {
        let (a, b) = fault.sides();
        let ids = |s: Vec<ServerId>| s.into_iter().map(|id| id.get()).collect();
        let mut record = Record {
            t_unix_ms: hal_net::clock::wall_now().0,
            fault: name,
            phase,
            a: ids(a),
            b: ids(b),
            lasts_ms: None,
            loss_pct: None,
            period_ms: None,
            delay_ms: None,
            step_ms: None,
            observed: None,
        };
        match *fault {
            Fault::Loss { pct, .. } => record.loss_pct = Some(pct),
            Fault::Flapping { period, .. } => record.period_ms = Some(ms(period)),
            Fault::Latency { delay, .. } => record.delay_ms = Some(ms(delay)),
            Fault::Clock { step_s, .. } => record.step_ms = Some(step_s * 1000),
            Fault::Crash { .. } | Fault::Cut { .. } | Fault::CutOneway { .. } => {}
        }
        record
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The fault log being written.
#[derive(Debug)]
pub struct FaultLog {
    out: BufWriter<File>,
    /// When the first fault started, wall ms.
    pub first_unix_ms: Option<u64>,
    /// The fault the imported window is centred on, and when it started (wall ms): the
    /// first that took #1 away (a failover), else the first that took any server away,
    /// else the first fault. Lower ranks come first.
    focus: Option<(u8, u64)>,
}

impl FaultLog {
    pub fn create(path: &Path) -> Result<FaultLog> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(FaultLog {
            out: BufWriter::new(file),
            first_unix_ms: None,
            focus: None,
        })
    }

    /// When the fault the imported window is centred on started, wall ms.
    pub fn focus_unix_ms(&self) -> Option<u64> {
        self.focus.map(|(_, t)| t)
    }

    fn started(&mut self, fault: &Fault, t_unix_ms: u64) {
        self.first_unix_ms.get_or_insert(t_unix_ms);
        let rank = match *fault {
            Fault::Crash { server }
            | Fault::Cut {
                a: server,
                b: Others::Both,
            } if server == ServerId::PRIMARY => 0,
            Fault::Crash { .. }
            | Fault::Cut {
                b: Others::Both, ..
            } => 1,
            _ => 2,
        };
        if self.focus.is_none_or(|(r, _)| rank < r) {
            self.focus = Some((rank, t_unix_ms));
        }
    }

    fn write(&mut self, record: &Record) -> Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        // Flushed at once: a run that is killed keeps its log.
        self.out.flush()?;
        Ok(())
    }
}

/// Makes `planned`'s fault, holds it, and undoes it; returns whether it was seen to take
/// effect.
pub async fn inject(lab: &mut Lab, planned: &Planned, log: &mut FaultLog) -> Result<bool> {
    let fault = planned.fault;
    let name = fault.kind().name();
    let mut start = Record::new(&fault, name, "start");
    start.lasts_ms = Some(ms(planned.lasts));
    log.started(&fault, start.t_unix_ms);
    log.write(&start)?;
    let until = Instant::now() + planned.lasts;
    let observed = match fault {
        Fault::Crash { server } => crash(lab, server, until).await?,
        Fault::Cut { a, b } => {
            let cut_off = match b {
                Others::One(b) => vec![b],
                Others::Both => others(a).to_vec(),
            };
            let ways: Vec<_> = cut_off.iter().flat_map(|&b| [(a, b), (b, a)]).collect();
            cut(lab, &ways, until).await?
        }
        Fault::CutOneway { from, to } => cut(lab, &[(from, to)], until).await?,
        Fault::Loss { a, b, pct } => loss(lab, a, b, pct, until).await?,
        Fault::Flapping { a, b, period } => flap(lab, a, b, period, until).await?,
        Fault::Latency { a, b, delay } => latency(lab, a, b, delay, until).await?,
        Fault::Clock { server, step_s } => clock(lab, server, step_s, until).await?,
    };
    let end_name = match fault {
        Fault::Crash { .. } => "restart",
        _ => name,
    };
    let mut end = Record::new(&fault, end_name, "end");
    end.observed = Some(observed);
    log.write(&end)?;
    Ok(observed)
}

async fn crash(lab: &mut Lab, server: ServerId, until: Instant) -> Result<bool> {
    lab.servers.kill(server)?;
    tokio::time::sleep_until(until).await;
    let down = lab.status(server).await.is_err();
    lab.servers.spawn(server, false)?;
    Ok(down)
}

/// Cuts each `(from, to)` of `ways`: nothing from `from` reaches `to`. Seen if every
/// link cut is reported down by one of its ends.
async fn cut(lab: &mut Lab, ways: &[(ServerId, ServerId)], until: Instant) -> Result<bool> {
    for &(from, to) in ways {
        lab.network.drop_from(to, from, None).await?;
    }
    tokio::time::sleep_until(until).await;
    let mut down = true;
    for &(from, to) in ways {
        down &= lab.link_down(from, to).await;
    }
    for &(from, to) in ways {
        heal(lab, from, to).await?;
    }
    Ok(down)
}

/// Loses `pct` percent of the packets between `a` and `b`; seen if any was dropped.
async fn loss(lab: &mut Lab, a: ServerId, b: ServerId, pct: u8, until: Instant) -> Result<bool> {
    lab.network.drop_from(b, a, Some(pct)).await?;
    lab.network.drop_from(a, b, Some(pct)).await?;
    tokio::time::sleep_until(until).await;
    let dropped = dropped(lab, a, b).await?;
    heal(lab, a, b).await?;
    Ok(dropped > 0)
}

/// Packets dropped so far by the rules in `a`'s and `b`'s namespaces.
async fn dropped(lab: &Lab, a: ServerId, b: ServerId) -> Result<u64> {
    Ok(lab.network.dropped(a).await? + lab.network.dropped(b).await?)
}

/// Makes and undoes a cut between `a` and `b` every `period` until `until`; seen if the
/// cuts dropped packets.
async fn flap(
    lab: &mut Lab,
    a: ServerId,
    b: ServerId,
    period: Duration,
    until: Instant,
) -> Result<bool> {
    let mut dropped_total = 0;
    while Instant::now() + period < until {
        lab.network.drop_from(b, a, None).await?;
        lab.network.drop_from(a, b, None).await?;
        tokio::time::sleep(period).await;
        dropped_total += dropped(lab, a, b).await?;
        heal(lab, a, b).await?;
        tokio::time::sleep(period.min(until.saturating_duration_since(Instant::now()))).await;
    }
    tokio::time::sleep_until(until).await;
    Ok(dropped_total > 0)
}

/// Sends the peer connections between `a` and `b` (each server dials the other) through
/// a delaying proxy each, and resets the direct ones so they are dialled again through it.
async fn latency(
    lab: &mut Lab,
    a: ServerId,
    b: ServerId,
    delay: Duration,
    until: Instant,
) -> Result<bool> {
    let proxy_ip = lab.network.client_ip();
    let mut proxies = Vec::new();
    for (from, to) in [(a, b), (b, a)] {
        let target = SocketAddrV4::new(lab.network.server_ip(to), PORT);
        let proxy = DelayProxy::start(proxy_ip, target, delay).await?;
        lab.network.redirect(from, to, PORT, proxy.addr()).await?;
        lab.network.reset_connections(from, to, PORT).await?;
        proxies.push(proxy);
    }
    tokio::time::sleep_until(until).await;
    let through = proxies.iter().all(|p| p.bytes_forwarded() > 0);
    heal(lab, a, b).await?;
    // Dropping the proxies closes their connections: the servers dial directly again.
    drop(proxies);
    Ok(through)
}

/// Steps `server`'s wall clock by `step_s` and back; seen if its status reports the
/// stepped time.
async fn clock(lab: &mut Lab, server: ServerId, step_s: i64, until: Instant) -> Result<bool> {
    lab.clocks.set(server, step_s)?;
    tokio::time::sleep_until(until).await;
    let stepped = match lab.status(server).await {
        Ok(report) => {
            let off_ms = report.wall_ms as i64 - hal_net::clock::wall_now().0 as i64;
            (off_ms - step_s * 1000).abs() < CLOCK_SLACK_MS
        }
        Err(_) => false,
    };
    lab.clocks.set(server, 0)?;
    Ok(stepped)
}

async fn heal(lab: &Lab, a: ServerId, b: ServerId) -> Result<()> {
    lab.network.heal(a).await?;
    lab.network.heal(b).await
}
