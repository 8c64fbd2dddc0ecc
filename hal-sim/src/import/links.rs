//! The links between the servers, from each server's own view (`link` records) and the
//! round trips of its clock estimates (`peer_clock`):
//!
//! - a link both sides saw down is a cut (`cut`), one only one side saw down a one-way
//!   cut (`cut_oneway`, from the side that was not heard to the one that did not hear);
//!   a link down while its peer was down (crashed, stopped, not started yet, or just
//!   restarted and connecting) is explained by that, and not a cut;
//! - round trips much longer than the link's usual one are a slow link (`slow`), until
//!   the next usual one;
//! - the usual round trip, if it is long, is the `[network]` latency.
//!
//! Cuts shorter than [`CUT_MS_MIN`] are left out (noted): the simulator proves a cut
//! took effect from probes sent across it every 50 ms, which a blip does not allow.

use std::time::Duration;

use hal_core::ServerId;
use hal_core::record::Record;
use hal_core::timing::Timing;

use super::Noted;
use super::field::{Event, Field};
use super::time::rfc3339;
use super::window::Window;
use crate::faults::Fault;
use crate::scenario::{Action, Expect, Step};

/// The shortest cut replayed.
pub const CUT_MS_MIN: u64 = 200;
/// Down spans this close together are one episode.
const MERGE_GAP_MS: u64 = 100;
/// A round trip is slow when it is at least this long and four times the usual one.
pub const SLOW_RTT_MS_MIN: u64 = 100;
/// The usual round trip from which the `[network]` latency is set.
pub const NETWORK_RTT_MS_MIN: u64 = 10;

/// `[from, to)` in true ms; `u64::MAX`: to the end.
type Span = (u64, u64);

/// The links' steps, and what else the reader should know.
#[derive(Debug, Default)]
pub struct Links {
    pub steps: Vec<Noted<Step>>,
    pub notes: Vec<String>,
    /// `[network]` latency and jitter, when the usual round trip is long.
    pub network: Option<(Duration, Duration)>,
}

/// The server pairs, each once.
const PAIRS: [(u8, u8); 3] = [(1, 2), (1, 3), (2, 3)];

/// Infers the links' faults in `window`.
pub fn infer(field: &Field, window: &Window, timing: &Timing) -> Links {
    let grace = connect_grace(timing);
    let mut links = Links::default();
    for (a, b) in PAIRS {
        let journaled = (field.metas.contains_key(&a), field.metas.contains_key(&b));
        if journaled == (false, false) {
            continue;
        }
        let ab = unexplained(field, a, b, grace);
        let ba = unexplained(field, b, a, grace);
        for episode in merge(ab.iter().chain(&ba).copied().collect()) {
            let heard = |spans: &[Span]| spans.iter().any(|s| overlaps(*s, episode));
            let (a_lost_b, b_lost_a) = (heard(&ab), heard(&ba));
            // With one side's journal only, its view is all there is: taken as a cut.
            let both = (a_lost_b && b_lost_a) || journaled != (true, true);
            let fault = match (both, a_lost_b) {
                (true, _) => Fault::Cut(id(a), id(b)),
                // #a did not hear #b: what #b sends #a was lost.
                (false, true) => Fault::OneWay(id(b), id(a)),
                (false, false) => Fault::OneWay(id(a), id(b)),
            };
            links.episode(field, window, (a, b), episode, fault, journaled);
        }
    }
    slow(field, window, &mut links);
    links
}

fn id(server: u8) -> ServerId {
    ServerId::new(server).unwrap_or(ServerId::PRIMARY)
}

/// How long after a server (re)starts its links may take to come up.
fn connect_grace(timing: &Timing) -> u64 {
    u64::try_from(timing.election_timeout.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .max(2_000)
}

impl Links {
    fn episode(
        &mut self,
        field: &Field,
        window: &Window,
        (a, b): (u8, u8),
        (from, to): Span,
        fault: Fault,
        journaled: (bool, bool),
    ) {
        if to < window.from_ms || from > window.to_ms {
            return;
        }
        let what = match fault {
            Fault::Cut(..) => format!("the link #{a}-#{b} was down both ways"),
            Fault::OneWay(x, y) => format!(
                "what #{} sent #{} was lost (only #{} saw the link down)",
                x.get(),
                y.get(),
                y.get()
            ),
            _ => String::new(),
        };
        let length = to.saturating_sub(from);
        if to != u64::MAX && length < CUT_MS_MIN {
            self.notes.push(format!(
                "{what} for only {length} ms at {}: too short to replay (left out)",
                rfc3339(from)
            ));
            return;
        }
        let mut notes = vec![what];
        if journaled != (true, true) {
            notes.push(
                "only one of the two servers' journals was given: taken as a cut both ways".into(),
            );
        }
        notes.extend(seen(field, (a, b), (from, to)));
        let at_ms = if from < window.from_ms {
            0
        } else {
            window.sim_ms(from)
        };
        if from < window.from_ms {
            notes.push(format!("it began before the window, at {}", rfc3339(from)));
        }
        let lasting = (to <= window.to_ms)
            .then(|| Duration::from_millis(window.sim_ms(to).saturating_sub(at_ms).max(1)));
        if lasting.is_none() {
            notes.push("it had not healed by the window's end".into());
        }
        self.steps.push(Noted {
            notes,
            item: Step {
                at: Duration::from_millis(at_ms),
                line: 0,
                action: Action::Server { fault, lasting },
                expect: Expect::default(),
            },
        });
    }
}

/// The link records of the pair in `[from, to]`, as a reader would tell them.
fn seen(field: &Field, (a, b): (u8, u8), (from, to): Span) -> Vec<String> {
    let mut said = Vec::new();
    let margin = to.saturating_add(MERGE_GAP_MS);
    for event in &field.events {
        let Record::Link(link) = &event.record else {
            continue;
        };
        let ours = (link.server, link.peer) == (a, b) || (link.server, link.peer) == (b, a);
        if !ours || event.t_ms + MERGE_GAP_MS < from || event.t_ms > margin {
            continue;
        }
        let reason = link
            .reason
            .as_deref()
            .map(|r| format!(" ({})", super::clean(r)))
            .unwrap_or_default();
        said.push(format!(
            "#{} saw #{} {} at {}{reason} [{}]",
            link.server,
            link.peer,
            if link.up { "up" } else { "down" },
            rfc3339(event.t_ms),
            event.place.short()
        ));
    }
    said
}

/// When `observer` saw its link to `peer` down while neither the peer's being down nor
/// either side's (re)connecting explains it.
fn unexplained(field: &Field, observer: u8, peer: u8, grace: u64) -> Vec<Span> {
    if !field.metas.contains_key(&observer) {
        return Vec::new();
    }
    let mut explained: Vec<Span> = field
        .down_spans(peer)
        .into_iter()
        .map(|(from, to)| (from, to.saturating_add(grace)))
        .collect();
    for life in field.lives.get(&observer).into_iter().flatten() {
        if let Some((start, _, _)) = &life.start {
            explained.push((*start, start.saturating_add(grace)));
        }
    }
    subtract(&down_seen(field, observer, peer), &merge(explained))
}

/// When `observer` saw its link to `peer` down, life by life: from each down record to
/// the next up record, and from each start to the first up record.
fn down_seen(field: &Field, observer: u8, peer: u8) -> Vec<Span> {
    let mut spans = Vec::new();
    for life in field.lives.get(&observer).into_iter().flatten() {
        let end = life.end_ms().unwrap_or(u64::MAX);
        let mut down_from = life.start.as_ref().map(|(t, _, _)| *t);
        let in_life = |e: &&Event| {
            e.server == observer && e.t_ms >= life.began_ms() && e.t_ms <= life.last_ms
        };
        for event in field.events.iter().filter(in_life) {
            let Record::Link(link) = &event.record else {
                continue;
            };
            if link.peer != peer {
                continue;
            }
            match (link.up, down_from) {
                (true, Some(from)) => {
                    spans.push((from, event.t_ms));
                    down_from = None;
                }
                (false, None) => down_from = Some(event.t_ms),
                _ => {}
            }
        }
        if let Some(from) = down_from {
            spans.push((from, end));
        }
    }
    spans.retain(|(a, b)| a < b);
    spans
}

fn overlaps(a: Span, b: Span) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Sorted spans, those that overlap or nearly touch joined.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut merged: Vec<Span> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.0 <= last.1.saturating_add(MERGE_GAP_MS) => {
                last.1 = last.1.max(span.1);
            }
            _ => merged.push(span),
        }
    }
    merged
}

/// `spans` without `holes` (both sorted, holes disjoint).
fn subtract(spans: &[Span], holes: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for &(mut from, to) in spans {
        for &(h_from, h_to) in holes {
            if h_to <= from || h_from >= to {
                continue;
            }
            if h_from > from {
                out.push((from, h_from));
            }
            from = from.max(h_to);
            if from >= to {
                break;
            }
        }
        if from < to {
            out.push((from, to));
        }
    }
    out
}

/// A round trip sample of a pair.
#[derive(Debug, Clone, Copy)]
struct Rtt {
    t_ms: u64,
    rtt_ms: u64,
}

/// Slow stretches of each link, and the usual round trip as the network's latency.
fn slow(field: &Field, window: &Window, links: &mut Links) {
    let mut all: Vec<u64> = Vec::new();
    for (a, b) in PAIRS {
        let samples: Vec<Rtt> = field
            .events
            .iter()
            .filter_map(|e| match &e.record {
                Record::PeerClock(c)
                    if (c.server, c.peer) == (a, b) || (c.server, c.peer) == (b, a) =>
                {
                    Some(Rtt {
                        t_ms: e.t_ms,
                        rtt_ms: c.rtt_ms,
                    })
                }
                _ => None,
            })
            .collect();
        let Some(usual) = median(samples.iter().map(|s| s.rtt_ms).collect()) else {
            continue;
        };
        all.push(usual);
        let threshold = SLOW_RTT_MS_MIN.max(usual.saturating_mul(4));
        let mut i = 0;
        while i < samples.len() {
            if samples[i].rtt_ms < threshold {
                i += 1;
                continue;
            }
            let first = i;
            while i < samples.len() && samples[i].rtt_ms >= threshold {
                i += 1;
            }
            let worst = samples[first..i]
                .iter()
                .map(|s| s.rtt_ms)
                .max()
                .unwrap_or(0);
            let (from, to) = (
                samples[first].t_ms,
                samples.get(i).map_or(u64::MAX, |s| s.t_ms),
            );
            links.slow_episode(window, (a, b), (from, to), worst, usual);
        }
    }
    if let Some(usual) = median(all)
        && usual >= NETWORK_RTT_MS_MIN
    {
        links.network = Some((Duration::from_millis(usual / 2), Duration::ZERO));
        links.notes.push(format!(
            "the servers' usual round trip was {usual} ms: [network] latency is set to half of it"
        ));
    }
}

impl Links {
    fn slow_episode(
        &mut self,
        window: &Window,
        (a, b): (u8, u8),
        (from, to): Span,
        worst: u64,
        usual: u64,
    ) {
        if to < window.from_ms || from > window.to_ms {
            return;
        }
        // A message takes from half the latency to all of it: a round trip, 1.5 times it
        // on average.
        let latency_ms = (worst * 2 / 3).clamp(4, 30_000);
        let at_ms = if from < window.from_ms {
            0
        } else {
            window.sim_ms(from)
        };
        let lasting = (to <= window.to_ms)
            .then(|| Duration::from_millis(window.sim_ms(to).saturating_sub(at_ms).max(1)));
        let mut notes = vec![format!(
            "the link #{a}-#{b} was slow: round trips up to {worst} ms (usually {usual} ms) from {}",
            rfc3339(from)
        )];
        notes.push(match to {
            u64::MAX => "no usual round trip was measured after it".into(),
            _ => format!(
                "the next usual round trip was measured at {} (clock estimates come every minute or when they move, so the end is known only that well)",
                rfc3339(to)
            ),
        });
        if lasting.is_some_and(|l| l < Duration::from_millis(CUT_MS_MIN)) {
            self.notes
                .push(format!("{}: too short to replay (left out)", notes[0]));
            return;
        }
        self.steps.push(Noted {
            notes,
            item: Step {
                at: Duration::from_millis(at_ms),
                line: 0,
                action: Action::Server {
                    fault: Fault::Slow(id(a), id(b), Duration::from_millis(latency_ms)),
                    lasting,
                },
                expect: Expect::default(),
            },
        });
    }
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_subtract_and_merge() {
        assert_eq!(
            subtract(&[(0, 100)], &[(10, 20), (50, 60)]),
            [(0, 10), (20, 50), (60, 100)]
        );
        assert_eq!(subtract(&[(0, 100)], &[(0, 200)]), []);
        assert_eq!(subtract(&[(10, 20)], &[(0, 5), (30, 40)]), [(10, 20)]);
        assert_eq!(
            merge(vec![(500, 600), (0, 10), (605, 700)]),
            [(0, 10), (500, 700)]
        );
    }
}
