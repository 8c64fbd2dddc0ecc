//! `hal-load nemesis`: a Jepsen-style test of the production binary on a real network.
//! Three `hal-net serve` processes, TLS on as deployed, each in a network namespace of
//! its own ([`crate::netns`]); clients that check seats out and in for the whole run
//! ([`workload`]); real faults one at a time from a seeded schedule ([`schedule`],
//! [`faults`]): kill -9 and restart, two-way and one-way cuts, packet loss, a flapping
//! link, latency and a wall-clock step; then a calm period in which the triad must be
//! whole again and grant a checkout; then the servers' journals judged by `hal-sim`
//! ([`analysis`]).
//!
//! The run directory keeps everything: the triad's files, each server's log
//! (`serverN.log`) and data (`dataN`, journal in `dataN/journal`), the fault log
//! (`faults.jsonl`), `hal-sim`'s outputs and the imported `incident.toml`.
//!
//! What this does not do: judge the servers itself (the journals are judged by the same
//! checkers that judge simulated runs), or delay packets of clients (only the links
//! between servers are faulted; clients are in the root namespace on the bridge).

pub mod analysis;
pub mod clock;
pub mod faults;
pub mod lab;
pub mod schedule;
pub mod workload;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hal_core::ServerId;
use hal_core::timing::Timing;
use hal_net::client::AsyncClient;
use tokio::time::Instant;

use self::analysis::Verdicts;
use self::faults::FaultLog;
use self::lab::Lab;
use self::schedule::{FaultKind, Planned};
use self::workload::{Tally, Workload};
use crate::triad::{FEATURE, ServerSettings};

/// How long the triad may take to start whole.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long the triad may take to be whole again after the last fault.
const CALM_LIMIT: Duration = Duration::from_secs(30);
/// How long the clients keep going once the triad is whole again.
const CALM_LOAD: Duration = Duration::from_secs(3);
/// How long the final checkout may take (a seat whose checkin went unheard is freed by
/// its lease first).
const FINAL_LIMIT: Duration = Duration::from_secs(30);
/// The import window: from this long before the fault it is centred on (the first that
/// took #1 away, else any server, else the first fault; see [`FaultLog`])...
const WINDOW_BEFORE: Duration = Duration::from_secs(5);
/// ...to this long after it (or the end of the run).
const WINDOW_AFTER: Duration = Duration::from_secs(20);

/// What to run.
#[derive(Debug, Clone)]
pub struct NemesisOptions {
    pub hal_net: PathBuf,
    pub hal_sim: PathBuf,
    /// The run directory (cleared first, kept afterwards).
    pub dir: PathBuf,
    /// How long faults are injected.
    pub duration: Duration,
    pub seed: u64,
    pub clients: usize,
    /// Seats of the feature.
    pub count: u32,
    pub timing: Timing,
}

/// The LAN profile with a short client lease and failback hold, so that a seat whose
/// checkin went unheard, and #1's return, both happen within a run of a minute.
pub fn default_timing() -> Timing {
    let mut timing = Timing::lan();
    timing.client_heartbeat = Duration::from_secs(1);
    timing.client_lease = Duration::from_secs(6);
    timing.failback_hold = Duration::from_secs(3);
    timing
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub dir: PathBuf,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// Faults that were checked and not seen to take effect.
    pub unobserved: Vec<String>,
    pub tally: Tally,
    pub journals: Vec<PathBuf>,
    pub verdicts: Verdicts,
    /// Steps that did not run through, with why.
    pub failed_steps: Vec<String>,
}

impl Report {
    /// A report of nothing yet, for a run in `dir` whose servers journal in `journals`.
    fn new(dir: &std::path::Path, journals: Vec<PathBuf>) -> Report {
        Report {
            dir: dir.to_path_buf(),
            faults: BTreeMap::new(),
            unobserved: Vec::new(),
            tally: Tally::default(),
            journals,
            verdicts: Verdicts {
                violations: None,
                imported: false,
                notes: Vec::new(),
            },
            failed_steps: Vec::new(),
        }
    }

    /// Passed: every step ran, every checked fault took effect, no violation, and the
    /// imported incident replayed and passed.
    pub fn passed(&self) -> bool {
        self.failed_steps.is_empty()
            && self.unobserved.is_empty()
            && self.verdicts.violations == Some(0)
            && self.verdicts.imported
    }

    /// `nemesis: faults=N checkouts=M violations=V imported=passed|failed`.
    pub fn summary_line(&self) -> String {
        let violations = self
            .verdicts
            .violations
            .map_or_else(|| "error".to_string(), |v| v.to_string());
        let imported = if self.verdicts.imported {
            "passed"
        } else {
            "failed"
        };
        format!(
            "nemesis: faults={} checkouts={} violations={violations} imported={imported}",
            self.faults.values().sum::<u64>(),
            self.tally.granted
        )
    }

    /// The lines before the summary: faults, clients, journals, the steps.
    pub fn detail_lines(&self) -> Vec<String> {
        let kinds: Vec<String> = FaultKind::ALL
            .iter()
            .map(|k| format!("{}={}", k.name(), self.faults.get(k).copied().unwrap_or(0)))
            .collect();
        let unseen = if self.unobserved.is_empty() {
            "none".to_string()
        } else {
            self.unobserved.join("; ")
        };
        let mut lines = vec![
            format!(
                "faults: {} (log {}); not seen to take effect: {unseen}",
                kinds.join(" "),
                self.dir.join(FAULT_LOG).display()
            ),
            self.tally.line(),
        ];
        let journals: Vec<String> = self
            .journals
            .iter()
            .map(|j| {
                let missing = if j.exists() { "" } else { " (missing)" };
                format!("{}{missing}", j.display())
            })
            .collect();
        lines.push(format!("journals: {}", journals.join(" ")));
        lines.extend(self.verdicts.notes.iter().cloned());
        if !self.failed_steps.is_empty() {
            lines.push(format!("steps failed: {}", self.failed_steps.join("; ")));
        }
        lines
    }
}

/// The fault log's name in the run directory.
pub const FAULT_LOG: &str = "faults.jsonl";

/// Runs the nemesis. Fails (with nothing judged) if the network or the triad cannot be
/// set up; once the servers ran, returns a report, whatever it says.
pub async fn run(options: &NemesisOptions) -> Result<Report> {
    let mut lab = set_up(options).await?;
    let journals = ServerId::ALL.map(|id| lab.journal_dir(id)).to_vec();
    let mut report = Report::new(&options.dir, journals);
    let workload = Workload::start(&lab.client_options()?, options.clients)?;
    let mut log = FaultLog::create(&options.dir.join(FAULT_LOG))?;
    inject_all(&mut lab, options, &mut log, &mut report).await;
    calm(&mut lab, &mut report).await;
    report.tally = workload.stop().await;
    eprintln!("nemesis: {}", report.tally.line());
    if let Err(e) = final_checkout(&lab).await {
        report.failed_steps.push(format!("final checkout: {e:#}"));
    }
    lab.stop_servers();
    let ended_unix_ms = hal_net::clock::wall_now().0;
    let license = lab.license.clone();
    // The network goes before the judging, which needs only the files.
    drop(lab);
    report.verdicts = judge(
        options,
        &report,
        &license,
        log.focus_unix_ms(),
        ended_unix_ms,
    )
    .await;
    Ok(report)
}

/// A fresh run directory, the network and the servers, whole.
async fn set_up(options: &NemesisOptions) -> Result<Lab> {
    crate::netns::check_preconditions()?;
    let dir = &options.dir;
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let settings = ServerSettings {
        count: options.count,
        client_connections_max: None,
        timing: options.timing,
        tls: true,
        // The journals are what the run is judged on.
        journal: true,
    };
    let mut lab = Lab::start(std::process::id(), dir, &options.hal_net, &settings).await?;
    eprintln!(
        "nemesis: network {}, servers at {}, run directory {}",
        lab.network.subnet_display(),
        lab.addrs().join(" "),
        dir.display()
    );
    let active = lab.wait_whole(START_LIMIT).await.context(
        "the triad did not start whole (if its servers cannot reach each other, check that \
         bridged traffic is not filtered: br_netfilter with a FORWARD policy of DROP, as \
         Docker sets, blocks it)",
    )?;
    eprintln!("nemesis: the triad is whole, {active} active; clients start");
    Ok(lab)
}

/// The fault phase of the seed's schedule; what goes wrong is a failed step, after which
/// every fault is undone.
async fn inject_all(
    lab: &mut Lab,
    options: &NemesisOptions,
    log: &mut FaultLog,
    report: &mut Report,
) {
    let plan = schedule::plan(options.seed, options.duration);
    if plan.is_empty() {
        report.failed_steps.push(format!(
            "faults: none fits in --duration {} (the first starts after 2 s and lasts up to 5 s)",
            humantime::format_duration(options.duration)
        ));
    }
    if let Err(e) = fault_phase(lab, &plan, options.duration, log, report).await {
        report.failed_steps.push(format!("faults: {e:#}"));
        if let Err(e) = lab.heal_all().await {
            report.failed_steps.push(format!("healing: {e:#}"));
        }
    }
}

/// Injects the faults of `plan` at their times, then waits out the phase.
async fn fault_phase(
    lab: &mut Lab,
    plan: &[Planned],
    duration: Duration,
    log: &mut FaultLog,
    report: &mut Report,
) -> Result<()> {
    let start = Instant::now();
    for planned in plan {
        tokio::time::sleep_until(start + planned.at).await;
        lab.servers.check_running()?;
        let what = format!("{} for {:?}", planned.fault, planned.lasts);
        eprintln!("nemesis: +{:.1}s {what}", planned.at.as_secs_f64());
        let observed = faults::inject(lab, planned, log).await?;
        *report.faults.entry(planned.fault.kind()).or_default() += 1;
        if !observed {
            eprintln!("nemesis: {what}: not seen to take effect");
            report.unobserved.push(what);
        }
    }
    tokio::time::sleep_until(start + duration).await;
    Ok(())
}

/// Waits for the triad to be whole again, then lets the clients go on a little.
async fn calm(lab: &mut Lab, report: &mut Report) {
    match lab.wait_whole(CALM_LIMIT).await {
        Ok(active) => {
            eprintln!("nemesis: calm: the triad is whole again, {active} active");
            tokio::time::sleep(CALM_LOAD).await;
        }
        Err(e) => report.failed_steps.push(format!("calm: {e:#}")),
    }
}

/// A new client checks a seat out and in.
async fn final_checkout(lab: &Lab) -> Result<()> {
    let client = AsyncClient::new(lab.client_options()?.host("nemesis-final"))?;
    let deadline = Instant::now() + FINAL_LIMIT;
    let outcome = loop {
        match tokio::time::timeout(FINAL_LIMIT, client.checkout(FEATURE)).await {
            Ok(Ok(seat)) => break seat.checkin().await.context("its checkin"),
            Ok(Err(e)) if Instant::now() < deadline => {
                eprintln!("nemesis: final checkout: {e}; asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(Err(e)) => break Err(e.into()),
            Err(_) => bail!("no answer within {FINAL_LIMIT:?}"),
        }
    };
    client.close().await;
    if outcome.is_ok() {
        eprintln!("nemesis: final checkout granted");
    }
    outcome
}

/// The `hal-sim` steps on the journals, the import window around the first fault.
async fn judge(
    options: &NemesisOptions,
    report: &Report,
    license: &std::path::Path,
    focus_unix_ms: Option<u64>,
    ended_unix_ms: u64,
) -> Verdicts {
    let first = focus_unix_ms.unwrap_or(ended_unix_ms);
    let from_unix_ms = first.saturating_sub(WINDOW_BEFORE.as_millis() as u64);
    let to_unix_ms = (first + WINDOW_AFTER.as_millis() as u64).min(ended_unix_ms);
    let inputs = analysis::Inputs {
        hal_sim: &options.hal_sim,
        journals: &report.journals,
        license,
        dir: &options.dir,
        from_unix_ms,
        to_unix_ms,
    };
    analysis::judge(&inputs).await
}
