//! A server's Prometheus metrics (`/metrics` on its HTTP listener, [`crate::http`]).
//!
//! Two kinds: what the node counts as it happens (replies by result, denials by reason,
//! the commit and fsync latencies, each peer link's round trip), kept here; and what its
//! status report says (role, term, log, seats, queues, links, certificate, license),
//! copied in from a fresh report at each scrape ([`Metrics::observe_status`]). Every name
//! starts with `hal_`; the list is in the README ("Monitoring").

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::journal::JournalStats;
use crate::wire::StatusReport;

/// One label: its name and value.
type Label = [(&'static str, String); 1];
type Labels2 = [(&'static str, String); 2];
type FloatGauge = Gauge<f64, AtomicU64>;

/// A server's metrics, shared by the node (which counts) and the HTTP listener (which
/// reads). Cheap to clone: every metric is shared.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Held from copying a status report in to encoding it: two scrapes at once must
    /// not see each other's half-cleared families.
    scrape: Arc<std::sync::Mutex<()>>,
    live: Live,
    scraped: Scraped,
    journal: Arc<std::sync::Mutex<Option<Arc<JournalStats>>>>,
}

/// What the node updates as it works.
#[derive(Debug, Clone)]
struct Live {
    replies: Family<Label, Counter>,
    denials: Family<Label, Counter>,
    commit_seconds: Histogram,
    fsync_seconds: Histogram,
    peer_rtt_seconds: Family<Label, FloatGauge>,
}

/// What a scrape copies from the status report.
#[derive(Debug, Clone)]
struct Scraped {
    info: Family<Labels2, Gauge>,
    active: Gauge,
    leader: Gauge,
    term: Gauge,
    last_index: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    seats_used: Family<Label, Gauge>,
    seats_count: Family<Label, Gauge>,
    seats_borrowed: Family<Label, Gauge>,
    queue_length: Family<Label, Gauge>,
    peer_connected: Family<Label, Gauge>,
    peer_refused: Family<Label, Gauge>,
    certificate_days_left: Gauge,
    license_problems: Gauge,
    journal_dropped: Gauge,
    journal_errors: Gauge,
}

/// Buckets from 100 µs to about 6.5 s, doubling: commits and syncs on a LAN take
/// milliseconds; the top buckets catch a disk or a peer in trouble.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 17)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hal");
        let live = Live {
            replies: Family::default(),
            denials: Family::default(),
            commit_seconds: Histogram::new(latency_buckets()),
            fsync_seconds: Histogram::new(latency_buckets()),
            peer_rtt_seconds: Family::default(),
        };
        registry.register(
            "replies",
            "Replies to license requests, by result (granted, released, denied, queued, ...)",
            live.replies.clone(),
        );
        registry.register(
            "denials",
            "Requests denied, by reason (all_in_use, no_majority, not_active, ...)",
            live.denials.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Active server: from appending log entries to their commit by a majority",
            live.commit_seconds.clone(),
        );
        registry.register(
            "fsync_duration_seconds",
            "How long each batch of log writes took to reach the disk (write and fdatasync)",
            live.fsync_seconds.clone(),
        );
        registry.register(
            "peer_rtt_seconds",
            "Round trip of the last ping on the link to each peer",
            live.peer_rtt_seconds.clone(),
        );
        let scraped = Scraped {
            info: Family::default(),
            active: Gauge::default(),
            leader: Gauge::default(),
            term: Gauge::default(),
            last_index: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            seats_used: Family::default(),
            seats_count: Family::default(),
            seats_borrowed: Family::default(),
            queue_length: Family::default(),
            peer_connected: Family::default(),
            peer_refused: Family::default(),
            certificate_days_left: Gauge::default(),
            license_problems: Gauge::default(),
            journal_dropped: Gauge::default(),
            journal_errors: Gauge::default(),
        };
        let gauges: [(&str, &str, &Gauge); 10] = [
            (
                "active",
                "1 while this server is the active server",
                &scraped.active,
            ),
            (
                "leader",
                "The active server as this server knows it (1, 2 or 3; 0 none)",
                &scraped.leader,
            ),
            ("term", "The server's current term", &scraped.term),
            (
                "log_last_index",
                "The last index of this server's log",
                &scraped.last_index,
            ),
            (
                "log_commit_index",
                "The last index this server knows committed",
                &scraped.commit_index,
            ),
            (
                "log_applied_index",
                "The last index applied to this server's seat table",
                &scraped.applied_index,
            ),
            (
                "certificate_days_left",
                "Whole days until this server's TLS certificate expires",
                &scraped.certificate_days_left,
            ),
            (
                "license_problems",
                "What this server cannot serve of the license in force (a HostID, a signature)",
                &scraped.license_problems,
            ),
            (
                "journal_dropped_records",
                "Journal records dropped since the start (a full buffer, a failing disk)",
                &scraped.journal_dropped,
            ),
            (
                "journal_write_errors",
                "Journal write errors since the start",
                &scraped.journal_errors,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "build_info",
            "1, labelled with the version this server runs and its storage format",
            scraped.info.clone(),
        );
        let families: [(&str, &str, &Family<Label, Gauge>); 6] = [
            (
                "seats_used",
                "Seats in use, by feature",
                &scraped.seats_used,
            ),
            (
                "seats_count",
                "Seats licensed (COUNT in force), by feature",
                &scraped.seats_count,
            ),
            (
                "seats_borrowed",
                "Seats borrowed, by feature",
                &scraped.seats_borrowed,
            ),
            (
                "queue_length",
                "Checkouts waiting for a seat, by feature",
                &scraped.queue_length,
            ),
            (
                "peer_connected",
                "1 while the link to the peer is up",
                &scraped.peer_connected,
            ),
            (
                "peer_refused",
                "1 while the peer refuses the link (another triad list, another vendor key, ...)",
                &scraped.peer_refused,
            ),
        ];
        for (name, help, family) in families {
            registry.register(name, help, family.clone());
        }
        Metrics {
            registry: Arc::new(registry),
            scrape: Arc::default(),
            live,
            scraped,
            journal: Arc::default(),
        }
    }

    /// Counts a reply to a license request: its result, and a denial's reason.
    pub fn replied(&self, result: &'static str, denial: Option<&'static str>) {
        self.live
            .replies
            .get_or_create(&[("result", result.to_string())])
            .inc();
        if let Some(reason) = denial {
            self.live
                .denials
                .get_or_create(&[("reason", reason.to_string())])
                .inc();
        }
    }

    /// Log entries the active server appended were committed `took` later.
    pub fn committed(&self, took: Duration) {
        self.live.commit_seconds.observe(took.as_secs_f64());
    }

    /// A batch of log writes reached the disk in `took`.
    pub fn synced(&self, took: Duration) {
        self.live.fsync_seconds.observe(took.as_secs_f64());
    }

    /// The last ping to `peer` came back after `rtt`.
    pub fn peer_rtt(&self, peer: hal_core::ServerId, rtt: Duration) {
        self.live
            .peer_rtt_seconds
            .get_or_create(&[("peer", peer.get().to_string())])
            .set(rtt.as_secs_f64());
    }

    /// Reads the journal's counts at each scrape.
    pub fn journal(&self, stats: Arc<JournalStats>) {
        if let Ok(mut slot) = self.journal.lock() {
            *slot = Some(stats);
        }
    }

    /// Copies what `report` says into the gauges: this server's role, log, seats, links.
    pub fn observe_status(&self, report: &StatusReport) {
        let s = &self.scraped;
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        s.active
            .set(i64::from(report.role == hal_core::server::Role::Active));
        s.leader
            .set(report.leader.map_or(0, |l| i64::from(l.get())));
        s.term.set(to_i64(report.term));
        s.last_index.set(to_i64(report.last_index));
        s.commit_index.set(to_i64(report.commit_index));
        s.applied_index.set(to_i64(report.applied_index));
        s.info.clear();
        if let Some(software) = &report.software {
            s.info
                .get_or_create(&[
                    ("version", software.version.clone()),
                    ("storage_format", software.storage_format.to_string()),
                ])
                .set(1);
        }
        // A feature the license no longer has goes away, not stays at its last value.
        for family in [
            &s.seats_used,
            &s.seats_count,
            &s.seats_borrowed,
            &s.queue_length,
        ] {
            family.clear();
        }
        for f in &report.features {
            let label = [("feature", f.name.clone())];
            s.seats_used.get_or_create(&label).set(i64::from(f.used));
            s.seats_count.get_or_create(&label).set(i64::from(f.count));
            let borrowed = f
                .holders
                .iter()
                .filter(|h| h.borrow_end_ms.is_some())
                .count();
            s.seats_borrowed
                .get_or_create(&label)
                .set(i64::try_from(borrowed).unwrap_or(i64::MAX));
            s.queue_length
                .get_or_create(&label)
                .set(i64::try_from(f.waiting.len()).unwrap_or(i64::MAX));
        }
        for p in &report.peers {
            let label = [("peer", p.id.get().to_string())];
            s.peer_connected
                .get_or_create(&label)
                .set(i64::from(p.connected));
            s.peer_refused
                .get_or_create(&label)
                .set(i64::from(p.refused.is_some()));
        }
        if let Some(days) = crate::triad_view::certificate_days_left(report) {
            s.certificate_days_left.set(days);
        }
        s.license_problems
            .set(i64::try_from(report.license.problems.len()).unwrap_or(i64::MAX));
        let journal = self.journal.lock().ok().and_then(|slot| slot.clone());
        if let Some(stats) = journal {
            let read = |n: &AtomicU64| to_i64(n.load(std::sync::atomic::Ordering::Relaxed));
            s.journal_dropped.set(read(&stats.dropped));
            s.journal_errors.set(read(&stats.errors));
        }
    }

    /// Every metric in the Prometheus text format (OpenMetrics).
    pub fn encode(&self) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.encode_now()
    }

    /// A scrape: `report` copied in, then every metric encoded, with no other scrape in
    /// between.
    pub fn scrape(&self, report: Option<&StatusReport>) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(report) = report {
            self.observe_status(report);
        }
        self.encode_now()
    }

    fn encode_now(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_latencies_show_in_the_text() {
        let metrics = Metrics::new();
        metrics.replied("granted", None);
        metrics.replied("denied", Some("all_in_use"));
        metrics.replied("denied", Some("all_in_use"));
        metrics.synced(Duration::from_millis(3));
        metrics.committed(Duration::from_millis(1));
        metrics.peer_rtt(hal_core::ServerId::SECONDARY, Duration::from_micros(250));
        let text = metrics.encode();
        assert!(
            text.contains("hal_replies_total{result=\"denied\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hal_denials_total{reason=\"all_in_use\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hal_fsync_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("hal_commit_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("hal_peer_rtt_seconds{peer=\"2\"} 0.00025"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
