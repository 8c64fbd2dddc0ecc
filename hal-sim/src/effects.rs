//! The harness's proof that every fault took effect (DESIGN §6.2), read from the probes
//! ([`crate::probe`]) that the servers send each other every 50 ms:
//!
//! - a cut (isolation, a both-way cut, a one-way cut, each down phase of a flapping link):
//!   probes were sent across it while it lasted, and none got through; a one-way cut
//!   still lets the other direction through;
//! - a hold: nothing got through while it lasted, and everything held arrived on release;
//! - a slow link: every probe across it took between half the set latency and the set
//!   latency;
//! - a restart: the restarted server's probes reach its peers again;
//! - a clock fault: the server's own clock reads true time plus the offset, drifting at
//!   the set rate (checked on every probe it sends, to the end of the run).
//!
//! Crashes are checked where they are applied (the host stops running).

use std::time::Duration;

use hal_core::ServerId;

use crate::faults::{Fault, peers, servers};
use crate::probe::{PROBE_EVERY, Probe, Probes};

/// Probes sent this close to a fault's start or end are not judged: the fault was
/// applied between two ticks, and a probe's send time is known to a tick.
const MARGIN_MS: u64 = 2;
/// How far a probe's clock reading may be from the model (whole-ms readings).
const CLOCK_SLACK_MS: i64 = 2;

/// A fault that did not take effect, as the probes show: a harness bug (DESIGN §6.2),
/// not a violation. Servers are shown as `#N`, times in simulated ms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NoEffect {
    #[error(
        "the cut of #{}→#{} from {start} ms to {end} ms let {through} of {sent} probes through (the first sent at {first_sent} ms)",
        .from.get(), .to.get()
    )]
    CutCrossed {
        from: ServerId,
        to: ServerId,
        start: u64,
        end: u64,
        through: usize,
        sent: usize,
        first_sent: u64,
    },
    #[error(
        "a hold of #{}→#{} from {start} ms to {end} ms let a probe through (sent at {sent} ms, received at {received} ms)",
        .from.get(), .to.get()
    )]
    HoldLeaked {
        from: ServerId,
        to: ServerId,
        start: u64,
        end: u64,
        sent: u64,
        received: u64,
    },
    #[error(
        "#{} sent #{} no probe from {start} ms to {end} ms: nothing shows the fault took effect",
        .from.get(), .to.get()
    )]
    NoProbe {
        from: ServerId,
        to: ServerId,
        start: u64,
        end: u64,
    },
    /// A link that should have delivered everything (the other way of a one-way cut, a
    /// released hold, a slow link) lost a probe.
    #[error("a probe #{}→#{} sent at {sent} ms {when} never arrived", .from.get(), .to.get())]
    ProbeLost {
        from: ServerId,
        to: ServerId,
        sent: u64,
        when: String,
    },
    /// Such a link carried no probe at all.
    #[error("#{} sent #{} no probe {when}", .from.get(), .to.get())]
    NoProbeWhile {
        from: ServerId,
        to: ServerId,
        when: String,
    },
    #[error(
        "a probe #{}→#{} sent at {sent} ms over a link slowed to {latency} ms took {took} ms (expected {low}..={high})",
        .from.get(), .to.get()
    )]
    SlowWrong {
        from: ServerId,
        to: ServerId,
        sent: u64,
        latency: u64,
        took: u64,
        low: u64,
        high: u64,
    },
    #[error(
        "#{} restarted at {at} ms, but by {now} ms none of its probes reached a peer",
        .server.get()
    )]
    RestartUnreached { server: ServerId, at: u64, now: u64 },
    #[error(
        "#{} sent no probe after its clock fault at {at} ms: nothing shows its clock changed",
        .server.get()
    )]
    ClockUnseen { server: ServerId, at: u64 },
    #[error(
        "#{}'s clock read {read} ms off true time at {at} ms; its clock faults say {expected:.1} ms",
        .server.get()
    )]
    ClockWrong {
        server: ServerId,
        read: i64,
        at: u64,
        expected: f64,
    },
    /// A client machine cut off from servers got a reply from one of them.
    #[error(
        "client {client} was cut off from {servers} from {start} ms to {end} ms, yet got a reply: {reply}"
    )]
    ClientCutCrossed {
        client: String,
        servers: String,
        start: u64,
        end: u64,
        reply: String,
    },
    /// The history the check reads is not readable (a harness bug too).
    #[error("history line {line}: {what}")]
    History { line: usize, what: String },
}

/// A check that can only be made some time after a fault's end.
#[derive(Debug, Clone, Copy)]
enum Later {
    /// Everything held between `a` and `b` from `start` to `end` arrived after `end`.
    Released {
        a: ServerId,
        b: ServerId,
        start: u64,
        end: u64,
    },
    /// Probes between `a` and `b` from `start` to `end` took from half of `latency` up
    /// to `latency`.
    Slowed {
        a: ServerId,
        b: ServerId,
        start: u64,
        end: u64,
        latency: Duration,
    },
    /// Server `s`, restarted at `at`, reaches its peers.
    Restarted { s: ServerId, at: u64 },
    /// Server `s`'s clock follows the fault applied at `at`.
    Clock { s: ServerId, at: u64 },
}

/// One segment of a server's clock model: from `t_ms` on, the wall clock reads true time
/// plus `offset_ms`, plus the drift accumulated before (`error_ms`), plus `drift_ppm`.
#[derive(Debug, Clone, Copy)]
struct ClockSegment {
    t_ms: u64,
    offset_ms: i64,
    drift_ppm: i64,
    error_ms: f64,
}

impl ClockSegment {
    fn drift_error_at(&self, t_ms: u64) -> f64 {
        self.error_ms + self.drift_ppm as f64 * (t_ms as f64 - self.t_ms as f64) / 1e6
    }
}

/// What the harness expects of the links and clocks, and the checks still to make.
#[derive(Debug)]
pub struct Effects {
    probes: Probes,
    /// `cut[x][y]`: since when what `x` sends `y` is cut.
    cut: [[Option<u64>; 3]; 3],
    /// Since when the link between two servers is held (kept for both directions).
    held: [[Option<u64>; 3]; 3],
    /// Since when, and how slow, the link between two servers is.
    slow: [[Option<(u64, Duration)>; 3]; 3],
    later: Vec<(u64, Later)>,
    clocks: [Vec<ClockSegment>; 3],
    /// Per server, when it was down: from a crash to its restart (open: still down).
    down: [Vec<(u64, Option<u64>)>; 3],
    /// Every fault's span and the servers it touches (open: not ended yet). A scenario
    /// can overlap faults (a crash during an isolation), which the checks of one alone
    /// cannot judge: a fault overlapped by another on the same servers is not judged.
    spans: Vec<([bool; 3], u64, Option<u64>)>,
}

/// The servers `fault` touches, and whether it starts (true) or ends a fault; `None`
/// for a clock fault and a flapping link's phases (inside the flap's own span).
fn touches(fault: Fault) -> Option<([bool; 3], bool)> {
    let mut mask = [false; 3];
    let starts = match fault {
        // A stop is judged as a crash when the process exits (`Book::stopped`).
        Fault::Clock(..) | Fault::FlapDown(..) | Fault::FlapUp(..) | Fault::Stop(_) => {
            return None;
        }
        Fault::Isolate(_) | Fault::Rejoin(_) => {
            mask = [true; 3];
            matches!(fault, Fault::Isolate(_))
        }
        Fault::Crash(s) | Fault::Restart(s) => {
            mask[s.index()] = true;
            matches!(fault, Fault::Crash(_))
        }
        Fault::Cut(a, b)
        | Fault::OneWay(a, b)
        | Fault::Hold(a, b)
        | Fault::Slow(a, b, _)
        | Fault::Flap(a, b)
        | Fault::Mend(a, b)
        | Fault::MendOneWay(a, b)
        | Fault::Release(a, b)
        | Fault::Fast(a, b)
        | Fault::Steady(a, b) => {
            mask[a.index()] = true;
            mask[b.index()] = true;
            !crate::faults::heals(&fault)
        }
    };
    Some((mask, starts))
}

fn mask_of(servers: &[ServerId]) -> [bool; 3] {
    let mut mask = [false; 3];
    for s in servers {
        mask[s.index()] = true;
    }
    mask
}

impl Effects {
    pub fn new(probes: Probes) -> Effects {
        let start = ClockSegment {
            t_ms: 0,
            offset_ms: 0,
            drift_ppm: 0,
            error_ms: 0.0,
        };
        Effects {
            probes,
            cut: Default::default(),
            held: Default::default(),
            slow: Default::default(),
            later: Vec::new(),
            clocks: [vec![start], vec![start], vec![start]],
            down: Default::default(),
            spans: Vec::new(),
        }
    }

    /// Whether a fault on `servers` from `from` to `to` was overlapped by another fault
    /// touching any of them (its own span counts once).
    fn overlapped(&self, servers: &[ServerId], from: u64, to: u64) -> bool {
        let mask = mask_of(servers);
        self.spans
            .iter()
            .filter(|(m, start, end)| {
                (0..3).any(|i| m[i] && mask[i]) && *start <= to && end.is_none_or(|e| e >= from)
            })
            .count()
            > 1
    }

    /// Follows `fault`, applied at `t`: makes the checks its end allows.
    pub fn applied(&mut self, t: u64, fault: Fault) -> Result<(), NoEffect> {
        let result = self.judge(t, fault);
        // The span closes after the end is judged (the overlap check counts it).
        if let Some((mask, starts)) = touches(fault) {
            if starts {
                self.spans.push((mask, t, None));
            } else if let Some(span) = self
                .spans
                .iter_mut()
                .rev()
                .find(|(m, _, end)| *m == mask && end.is_none())
            {
                span.2 = Some(t);
            }
        }
        result
    }

    fn judge(&mut self, t: u64, fault: Fault) -> Result<(), NoEffect> {
        match fault {
            Fault::Crash(s) => self.down[s.index()].push((t, None)),
            // Judged as a crash when the process exits.
            Fault::Stop(_) => {}
            Fault::Restart(s) => {
                if let Some((_, end @ None)) = self.down[s.index()].last_mut() {
                    *end = Some(t);
                }
                self.later.push((
                    t + 3 * PROBE_EVERY.as_millis() as u64 + 10,
                    Later::Restarted { s, at: t },
                ));
            }
            Fault::Isolate(s) => {
                for o in peers(s) {
                    self.cut_from(s, o, t);
                    self.cut_from(o, s, t);
                }
            }
            Fault::Cut(a, b) | Fault::FlapDown(a, b) => {
                self.cut_from(a, b, t);
                self.cut_from(b, a, t);
            }
            Fault::OneWay(a, b) => self.cut_from(a, b, t),
            Fault::Rejoin(s) => {
                for o in peers(s) {
                    self.mended(s, o, t)?;
                    self.mended(o, s, t)?;
                }
            }
            Fault::Mend(a, b) | Fault::FlapUp(a, b) => {
                self.mended(a, b, t)?;
                self.mended(b, a, t)?;
            }
            Fault::MendOneWay(a, b) => {
                let start = self.cut[a.index()][b.index()].unwrap_or(t);
                self.mended(a, b, t)?;
                // The cut was one way: the other way worked all along.
                if !self.was_down(a, start, t)
                    && !self.was_down(b, start, t)
                    && !self.overlapped(&[a, b], start, t)
                {
                    let back =
                        self.probes
                            .sent_between(b, a, start + MARGIN_MS, t.saturating_sub(10));
                    self.all_arrived(&back, b, a, "during a one-way cut the other way")?;
                }
            }
            Fault::Hold(a, b) => {
                self.held[a.index()][b.index()] = Some(t);
                self.held[b.index()][a.index()] = Some(t);
            }
            Fault::Release(a, b) => {
                let start = self.held[a.index()][b.index()].take().unwrap_or(t);
                self.held[b.index()][a.index()] = None;
                if self.overlapped(&[a, b], start, t) {
                    return Ok(()); // not judged: see `spans`
                }
                for (x, y) in [(a, b), (b, a)] {
                    let sent = self.sent(x, y, start, t)?;
                    let early = sent
                        .iter()
                        .find_map(|p| p.received_ms.filter(|&r| r < t).map(|r| (p.sent_ms, r)));
                    if let Some((sent, received)) = early {
                        return Err(NoEffect::HoldLeaked {
                            from: x,
                            to: y,
                            start,
                            end: t,
                            sent,
                            received,
                        });
                    }
                }
                self.later.push((
                    t + 20,
                    Later::Released {
                        a,
                        b,
                        start,
                        end: t,
                    },
                ));
            }
            Fault::Slow(a, b, latency) => {
                self.slow[a.index()][b.index()] = Some((t, latency));
            }
            Fault::Fast(a, b) => {
                if let Some((start, latency)) = self.slow[a.index()][b.index()].take() {
                    self.later.push((
                        t + latency.as_millis() as u64 + 10,
                        Later::Slowed {
                            a,
                            b,
                            start,
                            end: t,
                            latency,
                        },
                    ));
                }
            }
            Fault::Flap(..) | Fault::Steady(..) => {}
            Fault::Clock(s, offset_ms, drift_ppm) => {
                let model = &mut self.clocks[s.index()];
                let error_ms = model.last().map_or(0.0, |seg| seg.drift_error_at(t));
                model.push(ClockSegment {
                    t_ms: t,
                    offset_ms,
                    drift_ppm,
                    error_ms,
                });
                self.later.push((
                    t + 2 * PROBE_EVERY.as_millis() as u64,
                    Later::Clock { s, at: t },
                ));
            }
        }
        Ok(())
    }

    /// Makes the checks due by `now`.
    pub fn due(&mut self, now: u64) -> Result<(), NoEffect> {
        while let Some(at) = self.later.iter().position(|(due, _)| *due <= now) {
            let (_, check) = self.later.remove(at);
            self.check(check, now)?;
        }
        Ok(())
    }

    /// At the end of the run (`now`): the checks still due, and every server's clock over
    /// the whole run.
    pub fn finish(&mut self, now: u64) -> Result<(), NoEffect> {
        self.due(now)?;
        for s in servers() {
            self.clock_follows(s, 0, now)?;
        }
        Ok(())
    }

    fn cut_from(&mut self, x: ServerId, y: ServerId, t: u64) {
        self.cut[x.index()][y.index()] = Some(t);
    }

    /// The cut of `x`→`y` ends at `t`: probes were sent across it, and none got through.
    fn mended(&mut self, x: ServerId, y: ServerId, t: u64) -> Result<(), NoEffect> {
        let Some(start) = self.cut[x.index()][y.index()].take() else {
            return Ok(());
        };
        if self.overlapped(&[x, y], start, t) {
            return Ok(()); // not judged: see `spans`
        }
        let sent = self.sent(x, y, start, t)?;
        let through: Vec<&Probe> = sent.iter().filter(|p| p.received_ms.is_some()).collect();
        if let Some(p) = through.first() {
            return Err(NoEffect::CutCrossed {
                from: x,
                to: y,
                start,
                end: t,
                through: through.len(),
                sent: sent.len(),
                first_sent: p.sent_ms,
            });
        }
        Ok(())
    }

    /// Whether server `s` was down at any time in `[start, end]`.
    fn was_down(&self, s: ServerId, start: u64, end: u64) -> bool {
        self.down[s.index()]
            .iter()
            .any(|&(from, until)| from <= end && until.is_none_or(|u| u >= start))
    }

    /// The probes `x` sent `y` well inside `[start, end]`; at least one. None sent and
    /// none expected when either was down meanwhile (a scenario can crash a server during
    /// another fault): then the fault cannot be judged from probes, and is not.
    fn sent(&self, x: ServerId, y: ServerId, start: u64, end: u64) -> Result<Vec<Probe>, NoEffect> {
        if self.was_down(x, start, end) || self.was_down(y, start, end) {
            return Ok(Vec::new());
        }
        let sent = self
            .probes
            .sent_between(x, y, start + MARGIN_MS, end.saturating_sub(MARGIN_MS));
        if sent.is_empty() {
            return Err(NoEffect::NoProbe {
                from: x,
                to: y,
                start,
                end,
            });
        }
        Ok(sent)
    }

    fn all_arrived(
        &self,
        sent: &[Probe],
        x: ServerId,
        y: ServerId,
        when: &str,
    ) -> Result<(), NoEffect> {
        if sent.is_empty() {
            return Err(NoEffect::NoProbeWhile {
                from: x,
                to: y,
                when: when.to_string(),
            });
        }
        if let Some(p) = sent.iter().find(|p| p.received_ms.is_none()) {
            return Err(NoEffect::ProbeLost {
                from: x,
                to: y,
                sent: p.sent_ms,
                when: when.to_string(),
            });
        }
        Ok(())
    }

    fn check(&self, check: Later, now: u64) -> Result<(), NoEffect> {
        match check {
            Later::Released { a, b, start, end } => {
                for (x, y) in [(a, b), (b, a)] {
                    let sent = self.sent(x, y, start, end)?;
                    if sent.is_empty() {
                        continue; // not judged: see `sent`
                    }
                    self.all_arrived(&sent, x, y, &format!("while held (released at {end} ms)"))?;
                }
            }
            Later::Slowed {
                a,
                b,
                start,
                end,
                latency,
            } => {
                let most = latency.as_millis() as u64;
                if self.overlapped(&[a, b], start, end + most) {
                    return Ok(()); // not judged: see `spans`
                }
                let (low, high) = ((most / 2).saturating_sub(2), most + 3);
                for (x, y) in [(a, b), (b, a)] {
                    let sent = self.sent(x, y, start, end)?;
                    if sent.is_empty() {
                        continue; // not judged: see `sent`
                    }
                    self.all_arrived(&sent, x, y, "over a slow link")?;
                    for p in &sent {
                        let took = p.received_ms.unwrap_or(0).saturating_sub(p.sent_ms);
                        if !(low..=high).contains(&took) {
                            return Err(NoEffect::SlowWrong {
                                from: x,
                                to: y,
                                sent: p.sent_ms,
                                latency: most,
                                took,
                                low,
                                high,
                            });
                        }
                    }
                }
            }
            Later::Restarted { s, at } => {
                let peers_up: Vec<ServerId> = peers(s)
                    .into_iter()
                    .filter(|&o| !self.was_down(o, at, now))
                    .collect();
                if peers_up.is_empty()
                    || self.was_down(s, at + 1, now)
                    || self.overlapped(&[s], at, now)
                {
                    return Ok(()); // nobody to reach, or down again: not judged
                }
                let reached = peers_up.into_iter().any(|o| {
                    self.probes
                        .sent_between(s, o, at + MARGIN_MS, now)
                        .iter()
                        .any(|p| p.received_ms.is_some())
                });
                if !reached {
                    return Err(NoEffect::RestartUnreached { server: s, at, now });
                }
            }
            Later::Clock { s, at } => {
                if self.was_down(s, at, now) {
                    return Ok(()); // down: no probe to read its clock from
                }
                let sent = peers(s)
                    .into_iter()
                    .flat_map(|o| self.probes.sent_between(s, o, at + MARGIN_MS, now))
                    .count();
                if sent == 0 {
                    return Err(NoEffect::ClockUnseen { server: s, at });
                }
                self.clock_follows(s, at, now)?;
            }
        }
        Ok(())
    }

    /// Every probe `s` sent from `from` to `to` carried the clock error the model says
    /// (probes sent just around a clock fault are not judged).
    fn clock_follows(&self, s: ServerId, from: u64, to: u64) -> Result<(), NoEffect> {
        let model = &self.clocks[s.index()];
        let Some(&peer) = peers(s).first() else {
            return Ok(());
        };
        for p in self.probes.sent_between(s, peer, from, to) {
            let Some(seg) = model.iter().rev().find(|seg| seg.t_ms <= p.sent_ms) else {
                continue;
            };
            let near_change = model
                .iter()
                .any(|c| c.t_ms > 0 && c.t_ms.abs_diff(p.sent_ms) <= MARGIN_MS);
            if near_change {
                continue;
            }
            let expected = seg.offset_ms as f64 + seg.drift_error_at(p.sent_ms);
            if (p.clock_error_ms as f64 - expected).abs() > CLOCK_SLACK_MS as f64 {
                return Err(NoEffect::ClockWrong {
                    server: s,
                    read: p.clock_error_ms,
                    at: p.sent_ms,
                    expected,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ServerId {
        ServerId::new(n).unwrap_or(ServerId::PRIMARY)
    }

    /// Probes every 50 ms from `from` to `to` over `[start, end)`, each taking `took` ms
    /// (None: lost), with clock error `error(t)`.
    fn probes(
        log: &Probes,
        (from, to): (u8, u8),
        (start, end): (u64, u64),
        took: impl Fn(u64) -> Option<u64>,
        error: impl Fn(u64) -> i64,
    ) {
        for t in (start..end).step_by(50) {
            let probe = Probe {
                sent_ms: t,
                clock_error_ms: error(t),
                received_ms: took(t).map(|d| t + d),
            };
            log.record(id(from), id(to), probe);
        }
    }

    #[test]
    fn a_cut_that_lets_probes_through_is_a_harness_bug() {
        let log = Probes::default();
        probes(
            &log,
            (1, 2),
            (0, 2_000),
            |t| (!(500..1_000).contains(&t)).then_some(1),
            |_| 0,
        );
        probes(&log, (2, 1), (0, 2_000), |_| Some(1), |_| 0);
        let mut effects = Effects::new(log.clone());
        // 1→2 was cut from 500 to 1000 ms: a one-way cut that took effect, the other way open.
        effects
            .applied(500, Fault::OneWay(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        effects
            .applied(1_000, Fault::MendOneWay(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        // A both-way cut at the same time (in another run) did not cut 2→1.
        let mut effects = Effects::new(log);
        effects
            .applied(500, Fault::Cut(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        let error = effects
            .applied(1_000, Fault::Mend(id(1), id(2)))
            .unwrap_err();
        assert!(
            matches!(
                error,
                NoEffect::CutCrossed { from, through: 9, sent: 9, .. } if from == id(2)
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("#2→#1"), "{error}");
    }

    /// A scenario may overlap faults on the same servers (a crash during an isolation, a
    /// cut during a hold): the one-fault checks cannot judge them, and do not.
    #[test]
    fn overlapping_faults_are_not_judged() {
        let log = Probes::default();
        // Probes cross 1→2 throughout: as a lone cut, this would be a harness bug.
        probes(&log, (1, 2), (0, 2_000), |_| Some(1), |_| 0);
        probes(&log, (2, 1), (0, 2_000), |_| Some(1), |_| 0);
        let mut effects = Effects::new(log.clone());
        effects
            .applied(400, Fault::Hold(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        effects
            .applied(500, Fault::Cut(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        effects
            .applied(1_000, Fault::Mend(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        effects
            .applied(1_100, Fault::Release(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        // The same cut alone is judged, and fails.
        let mut effects = Effects::new(log);
        effects
            .applied(500, Fault::Cut(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(effects.applied(1_000, Fault::Mend(id(1), id(2))).is_err());
    }

    #[test]
    fn a_fault_with_no_probe_across_it_proves_nothing() {
        let mut effects = Effects::new(Probes::default());
        effects
            .applied(500, Fault::Isolate(id(3)))
            .unwrap_or_else(|e| panic!("{e}"));
        let error = effects.applied(900, Fault::Rejoin(id(3))).unwrap_err();
        assert!(matches!(error, NoEffect::NoProbe { .. }), "{error:?}");
        assert!(error.to_string().contains("no probe"), "{error}");
    }

    #[test]
    fn a_hold_must_keep_everything_back_then_deliver_it() {
        let log = Probes::default();
        // Held from 1000 to 1500 ms, delivered at 1501; except one 2→1 probe, lost.
        let held = |t: u64| {
            if (1_000..1_500).contains(&t) {
                1_501 - t
            } else {
                1
            }
        };
        probes(&log, (1, 2), (0, 3_000), |t| Some(held(t)), |_| 0);
        probes(
            &log,
            (2, 1),
            (0, 3_000),
            |t| (t != 1_200).then(|| held(t)),
            |_| 0,
        );
        let mut effects = Effects::new(log);
        effects
            .applied(1_000, Fault::Hold(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        effects
            .applied(1_500, Fault::Release(id(1), id(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        let error = effects.due(1_600).unwrap_err();
        assert!(
            matches!(error, NoEffect::ProbeLost { sent: 1_200, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("#2→#1 sent at 1200 ms"),
            "{error}"
        );
    }

    #[test]
    fn a_slow_link_must_be_slow_both_ways() {
        let log = Probes::default();
        let slow = |t: u64| if (1_000..2_000).contains(&t) { 150 } else { 1 };
        probes(&log, (1, 3), (0, 3_000), |t| Some(slow(t)), |_| 0);
        probes(
            &log,
            (3, 1),
            (0, 3_000),
            |t| Some(if t == 1_500 { 1 } else { slow(t) }),
            |_| 0,
        );
        let mut effects = Effects::new(log);
        let latency = Duration::from_millis(200);
        effects
            .applied(1_000, Fault::Slow(id(1), id(3), latency))
            .unwrap_or_else(|e| panic!("{e}"));
        effects
            .applied(2_000, Fault::Fast(id(1), id(3)))
            .unwrap_or_else(|e| panic!("{e}"));
        effects
            .due(2_100)
            .unwrap_or_else(|e| panic!("not due yet: {e}"));
        let error = effects.due(2_300).unwrap_err();
        assert!(
            matches!(
                error,
                NoEffect::SlowWrong {
                    sent: 1_500,
                    took: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("#3→#1 sent at 1500 ms"),
            "{error}"
        );
    }

    #[test]
    fn a_clock_must_step_by_the_offset_and_drift_at_the_rate() {
        // From 1000 ms: 5 s ahead, and 500 ppm fast (1 ms more every 2 s).
        let truth = |t: u64| {
            if t < 1_000 {
                0
            } else {
                5_000 + (t as i64 - 1_000) / 2_000
            }
        };
        let log = Probes::default();
        probes(&log, (2, 1), (0, 21_000), |_| Some(1), truth);
        let mut effects = Effects::new(log.clone());
        effects
            .applied(1_000, Fault::Clock(id(2), 5_000, 500))
            .unwrap_or_else(|e| panic!("{e}"));
        effects.finish(21_000).unwrap_or_else(|e| panic!("{e}"));
        // A clock that stepped but does not drift is 10 ms off by the end.
        let still = Probes::default();
        probes(
            &still,
            (2, 1),
            (0, 21_000),
            |_| Some(1),
            |t| if t < 1_000 { 0 } else { 5_000 },
        );
        let mut effects = Effects::new(still);
        effects
            .applied(1_000, Fault::Clock(id(2), 5_000, 500))
            .unwrap_or_else(|e| panic!("{e}"));
        let error = effects.finish(21_000).unwrap_err();
        assert!(
            matches!(error, NoEffect::ClockWrong { read: 5_000, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("#2's clock read 5000 ms off"),
            "{error}"
        );
    }

    #[test]
    fn a_restarted_server_must_reach_a_peer() {
        let log = Probes::default();
        probes(&log, (3, 1), (2_000, 3_000), |_| None, |_| 0);
        let mut effects = Effects::new(log);
        effects
            .applied(2_000, Fault::Restart(id(3)))
            .unwrap_or_else(|e| panic!("{e}"));
        let error = effects.due(2_500).unwrap_err();
        assert!(
            matches!(error, NoEffect::RestartUnreached { at: 2_000, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("#3 restarted at 2000 ms"),
            "{error}"
        );
    }
}
