//! A license push under load: a closed loop of checkouts and checkins runs against the
//! triad while an administrator pushes a license with a higher COUNT halfway through.
//! What it measures is what the push promises: no checkout or checkin fails, the active
//! server stays the active one (no election), and every server serves the new COUNT soon
//! after the push is answered.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hal_core::ServerId;
use hal_core::protocol::ClientId;
use hal_core::server::Role;
use hal_net::wire::StatusReport;

use crate::hal::HalSeats;
use crate::load::{self, LoadOptions, Report};
use crate::triad::{FEATURE, Triad, license_text};

/// What a push under load came to.
#[derive(Debug)]
pub struct PushRun {
    /// The load across the push.
    pub report: Report,
    pub count_before: u32,
    pub count_after: u32,
    /// The log index the pushed license is in force from.
    pub index: u64,
    /// From sending the push to its answer.
    pub push_ms: f64,
    /// From sending the push until every server's status showed the new COUNT (`None`:
    /// not within the limit).
    pub all_switched_ms: Option<f64>,
    /// From the push's answer until every server's status showed the new COUNT.
    pub after_answer_ms: Option<f64>,
    pub active_before: Option<ServerId>,
    pub active_after: Option<ServerId>,
    pub term_before: Option<u64>,
    pub term_after: Option<u64>,
}

impl PushRun {
    /// The figures as one line: `push: errors=… active_before=… …`.
    pub fn line(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "none".to_string(), |v| format!("{v:.0}"));
        let id =
            |v: Option<ServerId>| v.map_or_else(|| "none".to_string(), |v| v.get().to_string());
        let term = |v: Option<u64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
        format!(
            "push: errors={} cycles={} count_before={} count_after={} index={} push_ms={:.0} \
             all_switched_ms={} after_answer_ms={} active_before={} active_after={} \
             term_before={} term_after={}",
            self.report.errors,
            self.report.cycles,
            self.count_before,
            self.count_after,
            self.index,
            self.push_ms,
            ms(self.all_switched_ms),
            ms(self.after_answer_ms),
            id(self.active_before),
            id(self.active_after),
            term(self.term_before),
            term(self.term_after),
        )
    }
}

/// How long to wait for every server to show the new COUNT.
const SWITCH_LIMIT: Duration = Duration::from_secs(10);

/// The active server and the highest term among `reports`.
fn active_and_term(reports: &[Result<StatusReport, String>]) -> (Option<ServerId>, Option<u64>) {
    let ok: Vec<&StatusReport> = reports.iter().filter_map(|r| r.as_ref().ok()).collect();
    let active = ok.iter().find(|r| r.role == Role::Active).map(|r| r.server);
    (active, ok.iter().map(|r| r.term).max())
}

/// Whether every server reports `count` seats of the bench feature.
fn all_serve(reports: &[Result<StatusReport, String>], count: u32) -> bool {
    reports.iter().all(|r| {
        r.as_ref().is_ok_and(|r| {
            r.features
                .iter()
                .any(|f| f.name == FEATURE && f.count == count)
        })
    })
}

/// Runs `clients` in a closed loop for `options` and pushes a license of `count_after`
/// seats (signed with the triad's vendor key) halfway through the measured time.
pub async fn measure(
    triad: &Triad,
    clients: Vec<HalSeats>,
    options: LoadOptions,
    count_before: u32,
    count_after: u32,
) -> Result<PushRun> {
    let text = license_text(triad.dir(), count_after)?;
    let admin = triad.admin_transport()?;
    let servers: Vec<(String, ServerId)> = triad.addrs().into_iter().zip(ServerId::ALL).collect();
    let load = tokio::spawn(load::run(clients, options));
    tokio::time::sleep(options.warmup + options.duration / 2).await;
    let (active_before, term_before) = active_and_term(&triad.statuses().await);
    // Past every load client's id (those step by 256 from the base).
    let id = ClientId(crate::hal::client_id_base() + (1 << 23) + 1);
    let started = Instant::now();
    let pushed = hal_net::admin::push_license(
        &admin,
        &servers,
        (text.as_str().into(), "hal-load@bench".into()),
        id,
        Duration::from_secs(5),
    )
    .await;
    let push_ms = started.elapsed().as_secs_f64() * 1000.0;
    let answered = Instant::now();
    let index = match pushed {
        Ok(hal_net::admin::Push::Pushed {
            index,
            changed: true,
            ..
        }) => index,
        Ok(other) => bail!("the push was not taken: {other:?}"),
        Err(e) => bail!("the push failed: {e}"),
    };
    let mut switched = None;
    while started.elapsed() < SWITCH_LIMIT {
        if all_serve(&triad.statuses().await, count_after) {
            switched = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = load.await.context("the load task failed")?;
    let (active_after, term_after) = active_and_term(&triad.statuses().await);
    let ms = |from: Instant| switched.map(|t| t.duration_since(from).as_secs_f64() * 1000.0);
    Ok(PushRun {
        report,
        count_before,
        count_after,
        index,
        push_ms,
        all_switched_ms: ms(started),
        after_answer_ms: ms(answered),
        active_before,
        active_after,
        term_before,
        term_after,
    })
}
