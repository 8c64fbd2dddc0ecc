//! The license client verbs of the `hal-net` binary: `checkout`, `borrow` and `return`.
//!
//! Exit codes: 0 done; 1 failed otherwise (a seat lost while held, an unreadable borrow
//! record); 2 the request was denied (the reason is printed); 3 no server could be reached.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hal_core::client::{ClientConfig, ClientEvent};
use hal_core::protocol::{ClientId, Denial, Handle, RequestSeq};
use hal_core::timing::Timing;
use hal_net::addr::LicensePath;
use hal_net::clock::SystemClock;
use hal_net::session::Session;
use hal_net::tls_transport::{ClientTransport, TlsTransport};
use hal_net::transport::TcpTransport;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::signals;

/// Where the servers are, and how they are timed.
#[derive(Debug, Clone, Args)]
pub struct PathArgs {
    /// The license servers: `port@host` entries separated by `;` or `,`, in triad order.
    #[arg(long = "license-path", env = "HAL_LICENSE_PATH", value_name = "PATH")]
    license_path: String,
    /// The servers' timing profile (sets how long to wait for a failover).
    #[arg(long, default_value = "lan", value_parser = ["lan", "wan"])]
    profile: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    security: SecurityArgs,
}

/// How a client verifies the servers.
#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// The triad's CA certificate (`ca.pem` from `hal-net tls init`): a server must prove
    /// with a certificate from it that it is the server of its place in the license path.
    #[arg(
        long,
        env = "HAL_TRIAD_CA",
        value_name = "FILE",
        conflicts_with = "insecure"
    )]
    ca: Option<PathBuf>,
    /// Talk plaintext to servers that run with `insecure_plaintext = true`, verifying
    /// nothing (for a closed test network only).
    #[arg(long)]
    insecure: bool,
}

impl SecurityArgs {
    /// The transport these options ask for.
    pub fn transport(&self) -> Result<ClientTransport> {
        match (&self.ca, self.insecure) {
            (_, true) => {
                eprintln!(
                    "warning: --insecure: the servers are not verified and the connection is not encrypted"
                );
                Ok(ClientTransport::Insecure(TcpTransport))
            }
            (Some(ca), false) => {
                let connector = hal_net::tls::client_connector(ca, None)?;
                Ok(ClientTransport::Tls(TlsTransport::client(connector)))
            }
            (None, false) => bail!(
                "no triad CA: pass --ca FILE or set HAL_TRIAD_CA to the triad's ca.pem (or --insecure for servers that run without TLS)"
            ),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// The feature to check out.
    feature: String,
    /// How long to hold the seat (`30s`, `5m`, `2h`); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration)]
    hold: Option<Duration>,
    #[command(flatten)]
    path: PathArgs,
}

#[derive(Debug, Args)]
pub struct BorrowArgs {
    /// The feature to borrow.
    feature: String,
    /// How long to borrow it, in hours (at most the license's BORROW).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    hours: u32,
    #[command(flatten)]
    path: PathArgs,
}

#[derive(Debug, Args)]
pub struct ReturnArgs {
    /// The handle the borrow printed (`h17`).
    handle: String,
    #[command(flatten)]
    path: PathArgs,
}

/// How a request ended.
enum Answer {
    Granted {
        handle: Handle,
        server: u8,
        granted_by: u8,
        borrow_end_ms: Option<u64>,
    },
    Released,
    Denied(Denial),
    Unreachable(String),
    /// No server answered in time, and the request may have taken effect. `settled`:
    /// what the client found when it asked again (`Some(Some(h))`: seat `h`, released;
    /// `Some(None)`: nothing), or `None` if it could not find out.
    Unknown {
        why: String,
        settled: Option<Option<Handle>>,
    },
    /// Ctrl-C or SIGTERM came first.
    Interrupted,
}

/// How long a command whose request went unanswered keeps trying to settle it before it
/// exits (a seat it leaves behind is freed by its lease).
const SETTLE_FOR: std::time::Duration = std::time::Duration::from_secs(5);

type ClientSession = Session<ClientTransport, SystemClock>;

fn session(path: &PathArgs, id: ClientId) -> Result<ClientSession> {
    let servers = LicensePath::parse(&path.license_path)
        .with_context(|| format!("--license-path '{}'", path.license_path))?;
    let transport = path.security.transport()?;
    let timing = if path.profile == "wan" {
        Timing::wan()
    } else {
        Timing::lan()
    };
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string());
    let addrs = servers.addrs().iter().map(|s| s.connect_string()).collect();
    Ok(Session::new(
        transport,
        SystemClock::new(),
        addrs,
        id,
        &user,
        &host,
        ClientConfig::new(timing),
    ))
}

fn random_client_id() -> Result<ClientId> {
    getrandom::u64()
        .map(ClientId)
        .map_err(|e| anyhow!("cannot draw a client id: {e}"))
}

/// Waits for the answer to request `seq`, reporting failovers on the way, unless Ctrl-C
/// or SIGTERM comes first.
async fn answer(session: &mut ClientSession, seq: RequestSeq) -> Answer {
    let stop = signals::stop();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            () = &mut stop => return Answer::Interrupted,
            event = session.next_event() => event,
        };
        match event {
            ClientEvent::Granted {
                seq: s,
                handle,
                server,
                granted_by,
                borrow_end,
                ..
            } if s == seq => {
                return Answer::Granted {
                    handle,
                    server: server.get(),
                    granted_by: granted_by.get(),
                    borrow_end_ms: borrow_end.map(|e| e.0),
                };
            }
            ClientEvent::Released { seq: s, .. } if s == seq => return Answer::Released,
            ClientEvent::Denied { seq: s, reason, .. } if s == seq => {
                if reason.try_elsewhere() && session.replies_heard() == 0 {
                    let why = session.last_failure().unwrap_or("no answer").to_string();
                    return Answer::Unreachable(why);
                }
                return Answer::Denied(reason);
            }
            ClientEvent::OutcomeUnknown {
                seq: s,
                last_denial,
                ..
            } if s == seq => {
                let mut why = session.last_failure().unwrap_or("no answer").to_string();
                if let Some(denial) = last_denial {
                    why = format!("{why}; the last server to answer said {denial}");
                }
                if session.replies_heard() == 0 {
                    // No server was ever reached: the request cannot have been acted on
                    // by a server this client could talk to, and settling would not
                    // reach one either.
                    return Answer::Unreachable(why);
                }
                let settled = tokio::select! {
                    () = &mut stop => None,
                    settled = settle(session, seq) => settled,
                };
                return Answer::Unknown { why, settled };
            }
            ClientEvent::FailedOver { from, to } => {
                eprintln!("note: the active server changed from {from} to {to}");
            }
            _ => {}
        }
    }
}

/// Lets the client settle request `seq` (given up with its outcome unknown) for up to
/// [`SETTLE_FOR`]: the seat it turned out to have produced, now released, or nothing.
async fn settle(session: &mut ClientSession, seq: RequestSeq) -> Option<Option<Handle>> {
    let settled = async {
        loop {
            if let ClientEvent::Resolved { seq: s, released } = session.next_event().await
                && s == seq
            {
                return released;
            }
        }
    };
    tokio::time::timeout(SETTLE_FOR, settled).await.ok()
}

/// Prints a refusal and gives its exit code.
fn refused(answer: &Answer, json: bool) -> ExitCode {
    match answer {
        Answer::Denied(reason) => {
            if json {
                println!(
                    "{}",
                    json!({"result": "denied", "reason": reason.name(), "detail": reason.to_string()})
                );
            } else {
                eprintln!("denied: {reason}");
            }
            ExitCode::from(2)
        }
        Answer::Unreachable(why) => {
            if json {
                println!("{}", json!({"result": "unreachable", "error": why}));
            } else {
                eprintln!("error: no license server could be reached ({why})");
            }
            ExitCode::from(3)
        }
        Answer::Unknown { why, settled } => {
            let (outcome, released, text) = match settled {
                Some(Some(handle)) => (
                    "released",
                    Some(handle.to_string()),
                    format!("it had been granted (seat {handle}), and that seat was released"),
                ),
                Some(None) => ("not_granted", None, "it had not been granted".to_string()),
                None => (
                    "unknown",
                    None,
                    "it may have been granted; a seat it got is freed when its lease runs out"
                        .to_string(),
                ),
            };
            if json {
                println!(
                    "{}",
                    json!({"result": "unreachable", "outcome": outcome, "released": released, "error": why})
                );
            } else {
                eprintln!("error: the license servers did not answer in time ({why}); {text}");
            }
            ExitCode::from(3)
        }
        Answer::Interrupted => {
            eprintln!("interrupted before the servers answered");
            ExitCode::FAILURE
        }
        Answer::Granted { .. } | Answer::Released => ExitCode::FAILURE,
    }
}

pub async fn checkout(args: CheckoutArgs) -> Result<ExitCode> {
    // Installed before the seat is taken, so a stop signal always checks it in.
    let stop = signals::stop();
    let mut session = session(&args.path, random_client_id()?)?;
    let seq = session.checkout(&args.feature);
    let granted = answer(&mut session, seq).await;
    let Answer::Granted {
        handle,
        server,
        granted_by,
        ..
    } = granted
    else {
        return Ok(refused(&granted, args.path.json));
    };
    if args.path.json {
        let line = json!({"result": "granted", "server": server, "handle": handle.to_string(),
            "feature": args.feature, "granted_by": granted_by});
        println!("{line}");
    } else {
        println!(
            "granted: {} seat {handle} by server #{server}",
            args.feature
        );
    }
    if let Some(code) = hold(&mut session, handle, args.hold, stop).await {
        return Ok(code);
    }
    let seq = session.checkin(handle);
    match answer(&mut session, seq).await {
        Answer::Released => {
            if !args.path.json {
                println!("checked in: {handle}");
            }
            Ok(ExitCode::SUCCESS)
        }
        // The seat expires on the server by itself; say so, but it is not lost.
        other => {
            let why = match other {
                Answer::Denied(reason) => reason.to_string(),
                Answer::Unreachable(why) => why,
                Answer::Interrupted => "interrupted".to_string(),
                _ => "no answer".to_string(),
            };
            eprintln!(
                "warning: checkin of {handle} failed ({why}); the seat expires when its lease runs out"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Keeps the seat with heartbeats for `hold` or until a stop signal. Returns an exit code
/// if the seat was lost on the way.
async fn hold(
    session: &mut ClientSession,
    handle: Handle,
    hold: Option<Duration>,
    stop: impl std::future::Future<Output = ()>,
) -> Option<ExitCode> {
    let until = async {
        match hold {
            Some(hold) => tokio::time::sleep(hold).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut until => return None,
            () = &mut stop => return None,
            event = session.next_event() => match event {
                ClientEvent::Lost { handle: lost } if lost == handle => {
                    eprintln!("error: seat {handle} lost: its lease ran out without an acknowledged heartbeat");
                    return Some(ExitCode::FAILURE);
                }
                ClientEvent::FailedOver { from, to } => {
                    eprintln!("note: the active server changed from {from} to {to}");
                }
                _ => {}
            },
        }
    }
}

/// What the borrowing machine keeps to return a borrow early.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BorrowRecord {
    handle: String,
    feature: String,
    client: u64,
    next_seq: u64,
    end_ms: u64,
    license_path: String,
}

fn borrows_file() -> Result<PathBuf> {
    let dir = match std::env::var_os("HAL_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").context("neither HAL_HOME nor HOME is set")?;
            PathBuf::from(home).join(".hal")
        }
    };
    Ok(dir.join("borrows.json"))
}

fn read_borrows(path: &std::path::Path) -> Result<Vec<BorrowRecord>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a borrow record file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_borrows(path: &std::path::Path, records: &[BorrowRecord]) -> Result<()> {
    let dir = path.parent().context("borrow file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bytes = serde_json::to_vec_pretty(records)?;
    hal_net::license_file::save(path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub async fn borrow(args: BorrowArgs) -> Result<ExitCode> {
    let id = random_client_id()?;
    let mut session = session(&args.path, id)?;
    let seq = session.borrow(&args.feature, args.hours);
    let granted = answer(&mut session, seq).await;
    let Answer::Granted {
        handle,
        server,
        borrow_end_ms: Some(end_ms),
        ..
    } = granted
    else {
        return Ok(refused(&granted, args.path.json));
    };
    let file = borrows_file()?;
    let mut records = read_borrows(&file)?;
    records.push(BorrowRecord {
        handle: handle.to_string(),
        feature: args.feature.clone(),
        client: id.0,
        next_seq: session.client().next_seq().0,
        end_ms,
        license_path: args.path.license_path.clone(),
    });
    write_borrows(&file, &records)?;
    let end = crate::status_cmd::format_wall(end_ms);
    if args.path.json {
        let line = json!({"result": "granted", "server": server, "handle": handle.to_string(),
            "feature": args.feature, "end": end, "end_ms": end_ms});
        println!("{line}");
    } else {
        println!(
            "borrowed: {} seat {handle} from server #{server} until {end}",
            args.feature
        );
        println!("return it early with: hal-net return {handle}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn return_borrow(args: ReturnArgs) -> Result<ExitCode> {
    let handle = parse_handle(&args.handle)?;
    let file = borrows_file()?;
    let mut records = read_borrows(&file)?;
    let Some(at) = records.iter().position(|r| r.handle == handle.to_string()) else {
        bail!(
            "no borrow with handle {handle} was made from this machine (records: {})",
            file.display()
        );
    };
    let record = records[at].clone();
    let mut session = session(&args.path, ClientId(record.client))?;
    session.resume_from(RequestSeq(record.next_seq));
    let seq = session.return_borrow(handle);
    let outcome = answer(&mut session, seq).await;
    let (result, note) = match &outcome {
        Answer::Released => ("returned", "returned"),
        // The borrow ended (or was returned) already: the record is stale.
        Answer::Denied(Denial::UnknownHandle) => ("already_ended", "already ended on the servers"),
        _ => return Ok(refused(&outcome, args.path.json)),
    };
    records.remove(at);
    write_borrows(&file, &records)?;
    if args.path.json {
        println!(
            "{}",
            json!({"result": result, "handle": handle.to_string()})
        );
    } else {
        println!("{}: seat {handle} {note}", record.feature);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_handle(text: &str) -> Result<Handle> {
    text.strip_prefix('h')
        .and_then(|n| n.parse().ok())
        .map(Handle)
        .ok_or_else(|| anyhow!("'{text}' is not a handle (handles look like h17)"))
}
