//! A rolling restart under load: a closed loop of checkouts and checkins runs against the
//! triad while each server in turn (#3, #2, then the active #1) gets SIGTERM, is started
//! again, and is waited for until it is back in the triad with its log level. What it
//! measures is what an operator's upgrade needs: no checkout or checkin fails, and the
//! longest a checkout waited (the active server's handover and #1's failback included).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hal_core::ServerId;
use hal_core::server::Role;
use hal_net::wire::StatusReport;

use crate::hal::HalSeats;
use crate::load::{self, LoadOptions, Report};
use crate::triad::Triad;

/// One server's restart.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub server: ServerId,
    /// From SIGTERM to its exit.
    pub stop_ms: f64,
    /// From SIGTERM until it was back: up, log level with the others, an active server.
    pub back_ms: f64,
}

/// What a rolling restart under load came to.
#[derive(Debug)]
pub struct RollingRun {
    pub report: Report,
    pub steps: Vec<Step>,
    /// The active server at the end, once #1 took its role back.
    pub active_after: Option<ServerId>,
}

impl RollingRun {
    /// The figures as lines: `rolling: errors=… checkout_max_ms=…`, then one per step.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "rolling: errors={} cycles={} checkout_p50_ms={:.3} checkout_p99_ms={:.3} \
             checkout_max_ms={:.3} active_after={}",
            self.report.errors,
            self.report.cycles,
            self.report.checkout_ms(0.5),
            self.report.checkout_ms(0.99),
            self.report.checkout_us.max() as f64 / 1000.0,
            self.active_after
                .map_or_else(|| "none".to_string(), |s| s.get().to_string()),
        )];
        for step in &self.steps {
            lines.push(format!(
                "restart: server={} stop_ms={:.0} back_ms={:.0}",
                step.server.get(),
                step.stop_ms,
                step.back_ms
            ));
        }
        lines
    }
}

/// How long a restarted server may take to be back.
const BACK_LIMIT: Duration = Duration::from_secs(30);

/// The active server's report among `reports`.
fn active(reports: &[Result<StatusReport, String>]) -> Option<&StatusReport> {
    reports
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .find(|r| r.role == Role::Active)
}

/// Whether `server` is back: it answers, has applied what the active server had
/// committed when it first answered (`caught_up_to`, set then), and a server is active
/// (#1 itself, when `server` is #1: its failback done).
fn back(
    reports: &[Result<StatusReport, String>],
    server: ServerId,
    caught_up_to: &mut Option<u64>,
) -> bool {
    let Some(Ok(report)) = reports.get(server.index()) else {
        return false;
    };
    let Some(leader) = active(reports) else {
        return false;
    };
    let target = *caught_up_to.get_or_insert(leader.commit_index);
    report.applied_index >= target
        && (server != ServerId::PRIMARY || leader.server == ServerId::PRIMARY)
}

/// Runs `clients` in a closed loop for `options` and restarts the servers one at a time
/// after the warm-up; the restarts must be done within the measured time.
pub async fn measure(
    triad: &mut Triad,
    clients: Vec<HalSeats>,
    options: LoadOptions,
) -> Result<RollingRun> {
    let load = tokio::spawn(load::run(clients, options));
    tokio::time::sleep(options.warmup).await;
    let end = Instant::now() + options.duration;
    let mut steps = Vec::new();
    for server in [ServerId::TIEBREAKER, ServerId::SECONDARY, ServerId::PRIMARY] {
        let asked = Instant::now();
        let stop = triad.terminate(server)?;
        triad.restart(server)?;
        // Back: and for #1, active again (its failback), so the next run starts alike.
        let mut caught_up_to = None;
        while !back(&triad.statuses().await, server, &mut caught_up_to) {
            triad.check_running()?;
            if asked.elapsed() > BACK_LIMIT {
                bail!("server {server} not back within {BACK_LIMIT:?} of its restart");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        steps.push(Step {
            server,
            stop_ms: stop.as_secs_f64() * 1000.0,
            back_ms: asked.elapsed().as_secs_f64() * 1000.0,
        });
    }
    if Instant::now() > end {
        bail!(
            "the restarts outlasted the measured time ({:?}): give a longer --duration",
            options.duration
        );
    }
    let report = load.await.context("the load task failed")?;
    let active_after = active(&triad.statuses().await).map(|r| r.server);
    Ok(RollingRun {
        report,
        steps,
        active_after,
    })
}
