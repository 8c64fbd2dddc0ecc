//! The license client verbs of the `hal-net` binary: `checkout`, `borrow`, `return` and
//! `borrowed`.
//!
//! Exit codes: 0 done; 1 failed otherwise (a seat lost while held, an unreadable borrow
//! record); 2 the request was denied (the reason is printed); 3 no server could be reached.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use hal_core::protocol::{Denial, Handle};
use hal_net::addr::LicensePath;
use hal_net::client::{
    AsyncClient, BorrowStore, Error, Event, Events, Options, RequestId, Returned, parse_handle,
};
use hal_net::tls_transport::{ClientTransport, TlsTransport};
use hal_net::transport::TcpTransport;
use serde_json::json;

use crate::{output, signals};

/// Where the servers are, and how they are timed.
#[derive(Debug, Clone, Args)]
pub struct PathArgs {
    /// The license servers: `port@host` entries separated by `;` or `,`, in triad order.
    /// Without it, the servers are discovered on the LAN (`hal-net discover`; the search
    /// as HAL_DISCOVERY_PORT, HAL_DISCOVERY_GROUP and HAL_DISCOVERY_TO say).
    #[arg(long = "license-path", env = "HAL_LICENSE_PATH", value_name = "PATH")]
    license_path: Option<String>,
    /// The servers' timing profile (sets how long to wait for a failover).
    #[arg(long, default_value = "lan", value_parser = ["lan", "wan"])]
    profile: String,
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
        Ok(match self.choice()? {
            Some(ca) => {
                let connector = hal_net::tls::client_connector(ca, None)?;
                ClientTransport::Tls(TlsTransport::client(connector))
            }
            None => ClientTransport::Insecure(TcpTransport),
        })
    }

    /// The client library's options verified as these options ask.
    fn apply(&self, options: Options) -> Result<Options> {
        Ok(match self.choice()? {
            Some(ca) => options.ca(ca),
            None => options.insecure(),
        })
    }

    /// The transport these options ask for, presenting the admin certificate `admin`
    /// (its certificate and key files) to the servers when they run TLS.
    pub fn admin_transport(&self, admin: Option<(&Path, &Path)>) -> Result<ClientTransport> {
        Ok(match (self.choice()?, admin) {
            (Some(ca), Some(admin)) => {
                let connector = hal_net::tls::client_connector(ca, Some(admin))?;
                ClientTransport::Tls(TlsTransport::client(connector))
            }
            (Some(_), None) => bail!(
                "an administrative verb needs the admin certificate: pass --cert admin.pem --key admin.key (from the triad's TLS directory), or set HAL_ADMIN_CERT and HAL_ADMIN_KEY"
            ),
            (None, _) => ClientTransport::Insecure(TcpTransport),
        })
    }

    /// The CA to verify the servers against, or `None` for plaintext (with a warning).
    fn choice(&self) -> Result<Option<&PathBuf>> {
        match (&self.ca, self.insecure) {
            (_, true) => {
                eprintln!(
                    "warning: --insecure: the servers are not verified and the connection is not encrypted"
                );
                Ok(None)
            }
            (Some(ca), false) => Ok(Some(ca)),
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
    /// When every seat is in use, wait up to this long (`30s`, `10m`) in the feature's
    /// queue for one, instead of being refused at once. The queue is first come, first
    /// served, and a failover keeps it.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    wait: Option<Duration>,
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

#[derive(Debug, Args)]
pub struct BorrowedArgs {
    /// Only this feature: exit 0 if it has a current borrow that proves itself, 1 if not.
    feature: Option<String>,
    /// The triad's CA certificate (`ca.pem`): each record must carry a signature of a
    /// server it certified.
    #[arg(long, env = "HAL_TRIAD_CA", value_name = "FILE")]
    ca: PathBuf,
}

/// Why a request got nothing.
enum Answer {
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

/// The library's options for these arguments.
async fn options(path: &PathArgs) -> Result<Options> {
    let options = match &path.license_path {
        Some(license_path) => {
            LicensePath::parse(license_path)
                .map_err(|e| output::Usage(format!("--license-path '{license_path}': {e}")))?;
            Options::new(license_path)?
        }
        None => {
            let search = hal_net::discovery::Search::from_env()?;
            Options::discover_async(&search)
                .await
                .context("no --license-path or HAL_LICENSE_PATH, and discovery found no triad")?
        }
    };
    path.security.apply(options.profile(&path.profile)?)
}

async fn client(path: &PathArgs) -> Result<AsyncClient> {
    Ok(AsyncClient::new(options(path).await?)?)
}

/// Prints what the servers' events say on the way.
fn note(event: &Event) {
    match event {
        Event::FailedOver { from, to } => {
            eprintln!("note: the active server changed from {from} to {to}");
        }
        Event::Queued {
            feature,
            position,
            used,
            count,
        } => {
            eprintln!(
                "waiting: {feature}, number {position} in the queue ({used} of {count} seats in use)"
            );
        }
        _ => {}
    }
}

/// Waits for `request`, printing notes, unless Ctrl-C or SIGTERM comes first. When no
/// server answered in time, lets the library settle the request for up to
/// [`SETTLE_FOR`] and says what it found.
async fn answer<T>(
    request: impl std::future::Future<Output = Result<T, Error>>,
    events: &mut Events,
) -> Result<Result<T, Answer>> {
    let stop = signals::stop();
    tokio::pin!(stop);
    tokio::pin!(request);
    let result = loop {
        tokio::select! {
            () = &mut stop => return Ok(Err(Answer::Interrupted)),
            result = &mut request => break result,
            Some(event) = events.next() => note(&event),
        }
    };
    let error = match result {
        Ok(value) => return Ok(Ok(value)),
        Err(error) => error,
    };
    Ok(Err(match error {
        Error::Denied(reason) => Answer::Denied(reason),
        Error::Unreachable(why) => Answer::Unreachable(why),
        Error::NoAnswer { why, request } => {
            let settled = tokio::select! {
                () = &mut stop => None,
                settled = settle(events, request) => settled,
            };
            Answer::Unknown { why, settled }
        }
        other => return Err(other.into()),
    }))
}

/// Waits up to [`SETTLE_FOR`] for the library to settle `request`: the seat it turned
/// out to have produced, now released, or nothing.
async fn settle(events: &mut Events, request: RequestId) -> Option<Option<Handle>> {
    let settled = async {
        loop {
            match events.next().await {
                Some(Event::Settled {
                    request: r,
                    released,
                }) if r == request => return Some(released),
                Some(event) => note(&event),
                None => return None,
            }
        }
    };
    tokio::time::timeout(SETTLE_FOR, settled)
        .await
        .ok()
        .flatten()
}

/// Prints a refusal and gives its exit code.
fn refused(answer: &Answer, json: bool) -> ExitCode {
    match answer {
        Answer::Denied(reason) => {
            if json {
                let fields = json!({"result": "denied", "reason": reason.name()});
                output::fail(true, output::DENIED, &reason.to_string(), fields)
            } else {
                eprintln!("denied: {reason}");
                ExitCode::from(output::DENIED)
            }
        }
        Answer::Unreachable(why) => output::fail(
            json,
            output::UNREACHABLE,
            &format!("no license server could be reached ({why})"),
            json!({"result": "unreachable"}),
        ),
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
            output::fail(
                json,
                output::UNREACHABLE,
                &format!("the license servers did not answer in time ({why}); {text}"),
                json!({"result": "unreachable", "outcome": outcome, "released": released}),
            )
        }
        Answer::Interrupted => output::fail(
            json,
            output::FAILED,
            "interrupted before the servers answered",
            json!({"result": "interrupted"}),
        ),
    }
}

pub async fn checkout(args: CheckoutArgs, json: bool) -> Result<ExitCode> {
    // Installed before the seat is taken, so a stop signal always checks it in.
    let stop = signals::stop();
    let client = client(&args.path).await?;
    let mut events = client.events();
    let asked = async {
        match args.wait {
            Some(wait) => client.checkout_wait(&args.feature, wait).await,
            None => client.checkout(&args.feature).await,
        }
    };
    let seat = match answer(asked, &mut events).await? {
        Ok(seat) => seat,
        Err(refusal) => {
            client.close().await;
            return Ok(refused(&refusal, json));
        }
    };
    let handle = seat.handle();
    let server = seat.server().get();
    if json {
        let line = json!({"result": "granted", "server": server, "handle": handle.to_string(),
            "feature": args.feature, "granted_by": seat.granted().granted_by.get()});
        println!("{line}");
    } else {
        println!(
            "granted: {} seat {handle} by server #{server}",
            args.feature
        );
    }
    if let Some(code) = hold(&mut events, handle, (args.hold, json), stop).await {
        return Ok(code);
    }
    let code = match answer(seat.checkin(), &mut events).await? {
        Ok(()) => {
            // With --json the grant was the one object; exit 0 says it was checked in.
            if !json {
                println!("checked in: {handle}");
            }
            ExitCode::SUCCESS
        }
        // The seat expires on the server by itself; say so, but it is not lost.
        Err(other) => {
            let why = match other {
                Answer::Denied(reason) => reason.to_string(),
                Answer::Unreachable(why) => why,
                Answer::Interrupted => "interrupted".to_string(),
                _ => "no answer".to_string(),
            };
            let message = format!(
                "checkin of {handle} failed ({why}); the seat expires when its lease runs out"
            );
            if json {
                let fields = json!({"result": "checkin_failed", "handle": handle.to_string()});
                output::fail(true, output::FAILED, &message, fields)
            } else {
                eprintln!("warning: {message}");
                ExitCode::FAILURE
            }
        }
    };
    client.close().await;
    Ok(code)
}

/// Keeps the seat for `hold` or until a stop signal (the library heartbeats it). Returns
/// an exit code if the seat was lost on the way.
async fn hold(
    events: &mut Events,
    handle: Handle,
    (hold, json): (Option<Duration>, bool),
    stop: impl std::future::Future<Output = ()>,
) -> Option<ExitCode> {
    let lost = |result: &str, message: String| {
        let fields = json!({"result": result, "handle": handle.to_string()});
        Some(output::fail(json, output::FAILED, &message, fields))
    };
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
            Some(event) = events.next() => match event {
                Event::Lost { handle: gone, .. } if gone == handle => {
                    return lost("lost", format!("seat {handle} lost: its lease ran out without an acknowledged heartbeat"));
                }
                Event::Removed { handle: removed, .. } if removed == handle => {
                    return lost("removed", format!("seat {handle} was removed by an administrator (hal-net remove)"));
                }
                other => note(&other),
            },
        }
    }
}

pub async fn borrow(args: BorrowArgs, json: bool) -> Result<ExitCode> {
    let client = client(&args.path).await?;
    let mut events = client.events();
    let outcome = answer(client.borrow(&args.feature, args.hours), &mut events).await?;
    client.close().await;
    let record = match outcome {
        Ok(record) => record,
        Err(Answer::Denied(reason @ (Denial::BorrowNotAllowed | Denial::BorrowOverMax))) => {
            let longest = longest_borrow(&args.path, &args.feature).await;
            return Ok(too_long(
                &reason,
                (&args.feature, args.hours),
                longest,
                json,
            ));
        }
        Err(refusal) => return Ok(refused(&refusal, json)),
    };
    let store = BorrowStore::default_location()?;
    store.add(record.clone())?;
    let handle = record.handle()?;
    let end = crate::status_cmd::format_wall(record.end_ms);
    if json {
        let line = json!({"result": "granted", "server": record.server, "handle": handle.to_string(),
            "feature": args.feature, "borrow_end": end, "borrow_end_ms": record.end_ms,
            "signed": record.proof.is_some()});
        println!("{line}");
    } else {
        println!(
            "borrowed: {} seat {handle} from server #{} until {end}",
            args.feature, record.server
        );
        if record.proof.is_none() {
            println!("the record is unsigned (a plaintext triad): nothing proves it offline");
        }
        println!("return it early with: hal-net return {handle}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The longest borrow of `feature` the servers allow, as the first server of the path to
/// answer a status query says: `Some(None)` when it may not be borrowed, `None` when no
/// server said.
async fn longest_borrow(path: &PathArgs, feature: &str) -> Option<Option<u32>> {
    let options = options(path).await.ok()?;
    let transport = path.security.transport().ok()?;
    let license_path = LicensePath::parse(&options.license_path()).ok()?;
    let count = license_path.addrs().len();
    for (i, entry) in license_path.addrs().iter().enumerate() {
        let server = hal_net::transport::slot_in_path(count, i);
        let limit = Duration::from_secs(2);
        let Ok(report) =
            hal_net::admin::status(&transport, &entry.connect_string(), server, limit).await
        else {
            continue;
        };
        // A server of protocol 8 does not say.
        report.software.as_ref()?;
        return report
            .features
            .iter()
            .find(|f| f.name == feature)
            .map(|f| f.borrow_hours_max);
    }
    None
}

/// A borrow refused for its length (or for borrowing at all), with the longest allowed
/// when the servers said.
fn too_long(
    reason: &Denial,
    (feature, hours): (&str, u32),
    longest: Option<Option<u32>>,
    json: bool,
) -> ExitCode {
    let why = match (reason, longest) {
        (_, Some(None)) => format!("{feature} may not be borrowed (its license has no BORROW)"),
        (Denial::BorrowOverMax, Some(Some(most))) => format!(
            "{feature} may be borrowed for at most {most} hours (MAX_BORROW_HOURS in the options); {hours} asked"
        ),
        (_, Some(Some(most))) => {
            format!("{feature} may be borrowed for at most {most} hours; {hours} asked")
        }
        (_, None) => format!("{feature} may not be borrowed for {hours} hours"),
    };
    if json {
        let fields = json!({"result": "denied", "reason": reason.name(),
            "borrow_hours_max": longest.flatten()});
        output::fail(true, output::DENIED, &format!("{reason}: {why}"), fields)
    } else {
        eprintln!("denied: {reason}: {why}");
        ExitCode::from(output::DENIED)
    }
}

/// `hal-net borrowed`: this machine's borrow records, each proved offline against the
/// CA (no server is asked).
pub fn borrowed(args: &BorrowedArgs, json: bool) -> Result<ExitCode> {
    let store = BorrowStore::default_location()?;
    let now = std::time::SystemTime::now();
    let host = hal_net::client::this_host();
    let mut found = false;
    let records = store.list()?;
    let mut listed = Vec::new();
    for record in records
        .iter()
        .filter(|r| args.feature.as_ref().is_none_or(|f| *f == r.feature))
    {
        let end = crate::status_cmd::format_wall(record.end_ms);
        let (state, why, signer) = match record.verify(&args.ca) {
            Ok(proved) if proved.host != host => (
                "refused",
                format!("borrowed on host {}, and this is {host}", proved.host),
                None,
            ),
            Ok(proved) if proved.is_current(now) => {
                found = true;
                let signer = proved.signer;
                (
                    "valid",
                    format!("signed by server {signer}"),
                    Some(signer.get()),
                )
            }
            Ok(_) => ("ended", String::new(), None),
            Err(Error::Record(why)) => ("refused", why, None),
            Err(e) => return Err(e.into()),
        };
        if json {
            let error = (state == "refused").then(|| why.clone());
            listed.push(json!({"handle": record.handle, "feature": record.feature,
                "borrow_end": end, "borrow_end_ms": record.end_ms, "state": state,
                "signed_by": signer, "error": error}));
        } else {
            let (handle, feature) = (&record.handle, &record.feature);
            match state {
                "valid" => println!("{handle} {feature}: borrowed, valid until {end} ({why})"),
                "ended" => println!("{handle} {feature}: ended at {end}"),
                _ if why.starts_with(handle.as_str()) => println!("NOT VALID: {why}"),
                _ => println!("NOT VALID: {handle} ({feature}): {why}"),
            }
        }
    }
    let records_at = store.path().display().to_string();
    let value = json!({"borrows": listed, "records": records_at, "found": found});
    if let Some(feature) = args.feature.as_deref().filter(|_| !found) {
        let message =
            format!("no current borrow of {feature} proves itself (records: {records_at})");
        return Ok(output::fail(json, output::FAILED, &message, value));
    }
    if json {
        println!("{value}");
    }
    if records.is_empty() && !json {
        println!("no borrowed seats (records: {records_at})");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn return_borrow(args: ReturnArgs, json: bool) -> Result<ExitCode> {
    let handle = parse_handle(&args.handle).map_err(|e| output::Usage(e.to_string()))?;
    let store = BorrowStore::default_location()?;
    let Some(record) = store.find(handle)? else {
        bail!(
            "no borrow with handle {handle} was made from this machine (records: {})",
            store.path().display()
        );
    };
    let client = client(&args.path).await?;
    let mut events = client.events();
    let outcome = answer(client.return_borrow(&record), &mut events).await?;
    client.close().await;
    let (result, note) = match outcome {
        Ok(Returned::Returned) => ("returned", "returned"),
        // The borrow ended (or was returned) already: the record is stale.
        Ok(Returned::AlreadyEnded) => ("already_ended", "already ended on the servers"),
        Err(refusal) => return Ok(refused(&refusal, json)),
    };
    store.remove(handle)?;
    output::print(
        json,
        &format!("{}: seat {handle} {note}\n", record.feature),
        &json!({"result": result, "handle": handle.to_string(), "feature": record.feature}),
    );
    Ok(ExitCode::SUCCESS)
}
