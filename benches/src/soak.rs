//! The soak: many clients check a seat out each and hold it, heartbeating, for minutes;
//! a third of the way in the active server is killed (-9) and started again a little
//! later, so the clients ride a failover and, after the failback hold, a hand-back. At
//! the end every seat must be accounted for: no client heard its seat was lost, and each
//! server's seat table holds exactly the clients' handles.
//!
//! The clients run in worker processes (`hal-load soak-worker`) of at most
//! [`WORKER_CLIENTS_MAX`] each, so that no process needs more open files than a usual
//! hard limit allows (a client may keep a connection to two servers after a failover).
//! A worker prints `ready` once all its clients hold a seat, holds until it reads `stop`
//! (or its input ends), then prints `lost=N` and `handles=H,H,...`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hal_core::ServerId;
use hal_core::client::ClientEvent;
use hal_core::protocol::Handle;
use hal_core::timing::Timing;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::hal::{HalSeats, client_id_base};

/// The most clients in one worker process.
pub const WORKER_CLIENTS_MAX: u64 = 5_000;
use crate::load::Seats;
use crate::procstat::Usage;
use crate::triad::{FEATURE, Triad};
use hal_net::tls_transport::{ClientTransport, TlsTransport};

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub clients: u64,
    /// The `hal-load` executable that runs the workers.
    pub worker_exe: PathBuf,
    /// How long the clients hold their seats once all have one.
    pub duration: Duration,
}

/// One server's figures over the soak.
#[derive(Debug, Clone)]
pub struct ServerFigures {
    pub id: ServerId,
    /// The highest resident memory seen, KiB.
    pub rss_peak_kib: u64,
    /// CPU time over the hold (all processes of the server, restarts included).
    pub cpu: Duration,
}

/// What the soak saw.
#[derive(Debug)]
pub struct SoakReport {
    pub clients: u64,
    /// Time to hand every client its seat.
    pub ramp_up: Duration,
    pub hold: Duration,
    /// From the kill of #1 to #2 active, and from #1's restart to it active again.
    pub failover: Duration,
    pub failback: Duration,
    /// Seats the clients were told they lost.
    pub lost: u64,
    /// Seats in use on each server at the end, and whether its holders are exactly the
    /// clients' handles.
    pub tables: Vec<(ServerId, u32, bool)>,
    pub servers: Vec<ServerFigures>,
}

impl SoakReport {
    /// Every seat accounted for on every server, none lost.
    pub fn accounted(&self) -> bool {
        self.lost == 0
            && self.tables.len() == 3
            && self
                .tables
                .iter()
                .all(|&(_, used, exact)| u64::from(used) == self.clients && exact)
    }

    pub fn line(&self) -> String {
        let mut line = format!(
            "soak: clients={} ramp_up_s={:.1} hold_s={:.0} failover_ms={} failback_ms={} lost={}",
            self.clients,
            self.ramp_up.as_secs_f64(),
            self.hold.as_secs_f64(),
            self.failover.as_millis(),
            self.failback.as_millis(),
            self.lost,
        );
        for (id, used, exact) in &self.tables {
            line += &format!(
                " used_{id}={used}{}",
                if *exact { "" } else { "(holders differ)" }
            );
        }
        for s in &self.servers {
            line += &format!(
                " rss_peak_mib_{}={:.1} cpu_pct_{}={:.1}",
                s.id,
                s.rss_peak_kib as f64 / 1024.0,
                s.id,
                100.0 * s.cpu.as_secs_f64() / self.hold.as_secs_f64().max(1e-9),
            );
        }
        line += &format!(" accounted={}", self.accounted());
        line
    }
}

/// Raises this process's open-file limit (and so its children's) to what the soak needs.
pub fn raise_open_files(needed: u64) -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= needed {
        return Ok(());
    }
    // Root may raise the hard limit too; others get up to it.
    let want = needed.max(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < needed {
        bail!("the open-file limit is {soft}, and the soak needs {needed}: raise it (ulimit -n)");
    }
    Ok(())
}

/// Runs the soak on `triad` (whose servers must allow `clients` connections).
pub async fn run(mut triad: Triad, options: SoakOptions) -> Result<SoakReport> {
    let started = Instant::now();
    let mut workers = Vec::new();
    let mut first = 0;
    while first < options.clients {
        let clients = WORKER_CLIENTS_MAX.min(options.clients - first);
        let id = client_id_base() + first + 1;
        workers.push(Worker::start(
            &options.worker_exe,
            &triad.addrs(),
            triad.ca().as_deref(),
            id,
            clients,
        )?);
        first += clients;
    }
    for worker in &mut workers {
        tokio::select! {
            ready = worker.expect("ready") => { ready?; }
            () = tokio::time::sleep(Duration::from_secs(300)) => {
                bail!("a worker's clients did not all get a seat within 300 s");
            }
        }
    }
    let ramp_up = started.elapsed();
    eprintln!(
        "soak: {} clients hold a seat after {:.1} s; holding for {:?}",
        options.clients,
        ramp_up.as_secs_f64(),
        options.duration
    );

    let cpu_before: Vec<Option<Usage>> = ServerId::ALL.iter().map(|&id| triad.usage(id)).collect();
    let mut figures: Vec<ServerFigures> = ServerId::ALL
        .iter()
        .map(|&id| ServerFigures {
            id,
            rss_peak_kib: 0,
            cpu: Duration::ZERO,
        })
        .collect();
    let hold_start = Instant::now();
    let kill_at = hold_start + options.duration / 3;
    let mut failover = Duration::ZERO;
    let mut failback = Duration::ZERO;
    let mut killed = false;
    while hold_start.elapsed() < options.duration {
        sample(&triad, &mut figures);
        if !killed && Instant::now() >= kill_at {
            // The dying process's CPU so far counts too.
            add_cpu(&triad, ServerId::ALL[0], &cpu_before, &mut figures);
            triad.kill(ServerId::ALL[0])?;
            let t = Instant::now();
            let active = triad.wait_active(Duration::from_secs(30)).await?;
            failover = t.elapsed();
            eprintln!(
                "soak: #1 killed; {active} active after {} ms",
                failover.as_millis()
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
            triad.restart(ServerId::ALL[0])?;
            let t = Instant::now();
            wait_for(&triad, ServerId::ALL[0], Duration::from_secs(120)).await?;
            failback = t.elapsed();
            eprintln!(
                "soak: #1 restarted; active again after {} ms",
                failback.as_millis()
            );
            killed = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let hold = hold_start.elapsed();
    for (i, &id) in ServerId::ALL.iter().enumerate() {
        let before = if i == 0 && killed {
            None
        } else {
            cpu_before[i]
        };
        if let Some(now) = triad.usage(id) {
            figures[i].cpu += now.cpu - before.map_or(Duration::ZERO, |u| u.cpu);
        }
    }

    let mut handles = BTreeSet::new();
    let mut lost = 0;
    for worker in workers {
        let (worker_lost, worker_handles) = worker.finish().await?;
        lost += worker_lost;
        handles.extend(worker_handles);
    }
    let mut tables = Vec::new();
    for report in triad.statuses().await {
        let report = report.map_err(|e| anyhow::anyhow!("status at the end: {e}"))?;
        let feature = report.features.iter().find(|f| f.name == FEATURE);
        let (used, held): (u32, BTreeSet<u64>) = feature.map_or((0, BTreeSet::new()), |f| {
            (f.used, f.holders.iter().map(|h| h.handle).collect())
        });
        tables.push((report.server, used, held == handles));
    }
    Ok(SoakReport {
        clients: options.clients,
        ramp_up,
        hold,
        failover,
        failback,
        lost,
        tables,
        servers: figures,
    })
}

fn sample(triad: &Triad, figures: &mut [ServerFigures]) {
    for f in figures {
        if let Some(usage) = triad.usage(f.id) {
            f.rss_peak_kib = f.rss_peak_kib.max(usage.rss_kib);
        }
    }
}

fn add_cpu(triad: &Triad, id: ServerId, before: &[Option<Usage>], figures: &mut [ServerFigures]) {
    if let (Some(now), Some(then)) = (triad.usage(id), before[id.index()]) {
        figures[id.index()].cpu += now.cpu - then.cpu;
    }
}

async fn wait_for(triad: &Triad, id: ServerId, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let reports = triad.statuses().await;
        if reports[id.index()]
            .as_ref()
            .is_ok_and(|r| r.role == hal_core::server::Role::Active)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("server #{id} was not active again within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A worker process and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn start(
        exe: &PathBuf,
        addrs: &[String],
        ca: Option<&std::path::Path>,
        first_id: u64,
        clients: u64,
    ) -> Result<Worker> {
        let mut command = Command::new(exe);
        command.arg("soak-worker");
        if let Some(ca) = ca {
            command.arg("--ca").arg(ca);
        }
        let mut child = command
            .arg("--addrs")
            .arg(addrs.join(","))
            .arg("--first-id")
            .arg(first_id.to_string())
            .arg("--clients")
            .arg(clients.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} soak-worker", exe.display()))?;
        let stdin = child.stdin.take().context("the worker's input")?;
        let stdout = child.stdout.take().context("the worker's output")?;
        Ok(Worker {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next line, which must start with `prefix`; returns the rest.
    async fn expect(&mut self, prefix: &str) -> Result<String> {
        match self.lines.next_line().await? {
            Some(line) => match line.strip_prefix(prefix) {
                Some(rest) => Ok(rest.to_string()),
                None => bail!("a soak worker said {line:?} where '{prefix}' was expected"),
            },
            None => bail!("a soak worker ended before it said '{prefix}' (its errors are above)"),
        }
    }

    /// Stops the clients; returns the seats they were told they lost and the handles
    /// they hold.
    async fn finish(mut self) -> Result<(u64, Vec<u64>)> {
        self.stdin.write_all(b"stop\n").await?;
        let lost = self.expect("lost=").await?.parse().context("lost=")?;
        let handles = self.expect("handles=").await?;
        let handles = handles
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<u64>, _>>()
            .context("handles=")?;
        let status = self.child.wait().await?;
        if !status.success() {
            bail!("a soak worker failed ({status})");
        }
        Ok((lost, handles))
    }
}

/// Clients holding seats in this process.
struct Holders {
    tasks: Vec<JoinHandle<Option<Handle>>>,
    stop: watch::Sender<bool>,
    lost: Arc<AtomicU64>,
}

impl Holders {
    /// Starts `clients` holders with ids from `first_id`; returns once all hold a seat.
    async fn start(
        transport: ClientTransport,
        addrs: &[String],
        first_id: u64,
        clients: u64,
    ) -> Result<Holders> {
        let lost = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        // Checkouts at most 256 at a time: a ramp, not a stampede of connects.
        let ramp = Arc::new(Semaphore::new(256));
        let (granted_tx, mut granted_rx) = tokio::sync::mpsc::channel(1024);
        let tasks = (0..clients)
            .map(|n| {
                let seats = HalSeats::new(
                    transport.clone(),
                    addrs.to_vec(),
                    first_id + n,
                    Timing::lan(),
                );
                tokio::spawn(hold(
                    seats,
                    Arc::clone(&ramp),
                    granted_tx.clone(),
                    stop_rx.clone(),
                    Arc::clone(&lost),
                ))
            })
            .collect();
        drop(granted_tx);
        for granted in 0..clients {
            match tokio::time::timeout(Duration::from_secs(120), granted_rx.recv()).await {
                Ok(Some(Ok(()))) => {}
                Ok(Some(Err(e))) => bail!("client {granted}: checkout failed: {e}"),
                Ok(None) | Err(_) => bail!("only {granted} of {clients} clients got a seat"),
            }
        }
        Ok(Holders { tasks, stop, lost })
    }

    /// Stops them; returns the seats they were told they lost and the handles they hold.
    async fn finish(self) -> Result<(u64, Vec<u64>)> {
        let _ = self.stop.send(true);
        let mut handles = Vec::new();
        for task in self.tasks {
            if let Some(handle) = task.await? {
                handles.push(handle.0);
            }
        }
        Ok((self.lost.load(Ordering::SeqCst), handles))
    }
}

/// `hal-load soak-worker`: holds `clients` seats for the soak in the parent process, over
/// TLS trusting `ca` (plaintext without one).
pub async fn worker(
    addrs: Vec<String>,
    ca: Option<PathBuf>,
    first_id: u64,
    clients: u64,
) -> Result<()> {
    raise_open_files(clients * 2 + 256)?;
    let transport = match ca {
        Some(ca) => ClientTransport::Tls(TlsTransport::client(hal_net::tls::client_connector(
            &ca, None,
        )?)),
        None => ClientTransport::Insecure(hal_net::transport::TcpTransport),
    };
    let holders = Holders::start(transport, &addrs, first_id, clients).await?;
    println!("ready");
    // The clients heartbeat (their own tasks) until a line (`stop`) or the end of the
    // input: the parent is done or gone.
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let _ = input.next_line().await;
    let (lost, handles) = holders.finish().await?;
    println!("lost={lost}");
    let list: Vec<String> = handles.iter().map(u64::to_string).collect();
    println!("handles={}", list.join(","));
    Ok(())
}

/// One client: checks out (retrying a denial, within the ramp's limit), then heartbeats
/// until told to stop; returns the handle it still holds.
async fn hold(
    mut seats: HalSeats,
    ramp: Arc<Semaphore>,
    granted: tokio::sync::mpsc::Sender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
    lost: Arc<AtomicU64>,
) -> Option<Handle> {
    let handle = {
        let _permit = ramp.acquire().await.ok()?;
        let mut attempts = 0;
        loop {
            match seats.checkout().await {
                Ok(handle) => break handle,
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    let _ = granted.send(Err(e)).await;
                    return None;
                }
            }
        }
    };
    let _ = granted.send(Ok(())).await;
    drop(granted);
    let mut held = Some(handle);
    loop {
        tokio::select! {
            event = seats.session().next_event() => {
                if let ClientEvent::Lost { handle: gone } = event
                    && Some(gone) == held
                {
                    lost.fetch_add(1, Ordering::SeqCst);
                    held = None;
                }
            }
            _ = stop.changed() => return held,
        }
    }
}
