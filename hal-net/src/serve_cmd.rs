//! `hal-net serve --config FILE [--join-empty]`: one license server, until SIGTERM or
//! Ctrl-C.
//!
//! Before it listens it checks everything an operator can get wrong, and refuses to
//! start with a message that says what and where: the config, the license (syntax,
//! signatures, HAL/normal mix, the triad size it needs), the HostID, the data directory
//! (refused if it is missing or empty, unless `--join-empty` says that is meant).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use hal_core::HostId;
use hal_core::ServerId;
use hal_core::catalog::Catalog;
use hal_core::license::{License, ServeMode, ServerPosition};
use hal_core::record::{FeatureMeta, Meta};
use hal_core::server::{Config, Licensing};
use hal_net::config::{Security, ServerConfig, TlsFiles};
use hal_net::discovery;
use hal_net::journal::{FileJournal, Journal, JournalStats};
use hal_net::node::{LicenseFileSpec, LinkTiming, Node, NodeConfig, SeenLicenses};
use hal_net::storage::{FileStorage, IfBlank, StorageError};
use hal_net::tls::ServerTls;
use hal_net::tls_transport::TlsTransport;
use hal_net::transport::{TcpTransport, Transport};
use hal_net::wire::Identity;
use tracing::{error, info, warn};

use crate::signals;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The server's TOML config file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Start even if the data directory is missing or holds no log and no snapshot,
    /// creating it: this server then joins as a blank member (no seats, term 0) and
    /// receives the state from the other servers. For a new triad's first start, or a
    /// server whose directory was emptied (or moved aside) for that. Without it such a
    /// start is refused, so a mistyped data_dir cannot start a blank server. A directory
    /// with data starts from its data either way: the flag only permits emptiness.
    #[arg(long)]
    join_empty: bool,
    /// Speak no newer protocol than N with peers and clients, as the release that speaks
    /// only N does. This build speaks 8 (hal-net 0.1.0) and 9. For a triad upgraded in
    /// steps, or to test one of mixed versions; without it, each connection speaks the
    /// newest version both ends speak.
    #[arg(long, value_name = "N")]
    protocol_version: Option<u8>,
    /// How to write the log on standard error: `text` (one line each, for people) or
    /// `json` (one JSON object each: `timestamp`, `level`, `target`, `message` and the
    /// event's fields, for journald, a file or a log shipper).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    // First of all, so that a SIGHUP (`systemctl reload`) while the server reads its
    // config and loads cannot stop it the default way; SIGTERM and Ctrl-C too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (hangup, stop) = {
        let _inside = runtime.enter();
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        (hangup, signals::stop())
    };
    if let Some(version) = args.protocol_version {
        hal_net::wire::hold_back_protocol(version)
            .map_err(|e| crate::output::Usage(format!("--protocol-version: {e}")))?;
    }
    init_logging(args.log_format);
    let config = ServerConfig::load(&args.config)?;
    let if_blank = if args.join_empty {
        IfBlank::JoinEmpty
    } else {
        IfBlank::Refuse
    };
    runtime.block_on(serve(config, if_blank, (stop, hangup)))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr as `format` says, filtered by `RUST_LOG` (default `info`); colours only
/// on a terminal.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}

async fn serve(
    config: ServerConfig,
    if_blank: IfBlank,
    (stop, hangup): (
        impl std::future::Future<Output = ()> + Send,
        std::io::Result<tokio::signal::unix::Signal>,
    ),
) -> Result<()> {
    let loaded = load_license(&config)?;
    let (license, file_license) = (&loaded.license, &loaded.file);
    let hostid = match &config.hostid {
        Some(id) => id.clone(),
        None => hal_net::hostid::this_machine()
            .context("cannot find this machine's HostID; set `hostid` in the config")?,
    };
    let catalog = catalog(&config, license, &hostid)?;
    let timing = config.timing;
    let mut core = match config.position {
        ServerPosition::Single => Config::single(timing),
        ServerPosition::Triad(id) => Config::triad(id, timing),
    };
    core.licensing = Some(Licensing {
        hostid: hostid.clone(),
        vendor_key: Some(loaded.vendor_key),
        file: Some(loaded.text.as_str().into()),
    });
    let me = core.id();
    let mut peers = BTreeMap::new();
    if let ServerPosition::Triad(_) = config.position {
        for (i, addr) in config.triad.iter().enumerate() {
            let id = hal_core::ServerId::new(u8::try_from(i + 1).unwrap_or(0));
            if let Some(id) = id.filter(|&id| id != me) {
                peers.insert(id, addr.connect_string());
            }
        }
    }
    let triad: Vec<String> = config.triad.iter().map(ToString::to_string).collect();
    // The file as read now: a SIGHUP pushes only a file that differs from every one this
    // server has read or written.
    let seen = SeenLicenses::default();
    seen.add(&hal_net::wire::license_digests(file_license).0);
    let hangups = Hangups {
        signal: hangup,
        seen: seen.clone(),
    };
    // The data directory is checked first: the journal, inside it, must not make a
    // mistyped or missing one look like a server's.
    let storage = open_storage(&config, if_blank)?;
    let file_journal = open_journal(&config, me, &catalog, &triad);
    let journal_stats = file_journal.as_ref().map(FileJournal::stats);
    let journal = match &file_journal {
        Some(file) => Journal::to(file.sink()).with_heartbeats(config.journal.heartbeats),
        None => Journal::off(),
    };
    let node_config = NodeConfig {
        core,
        listen: config.listen.to_string(),
        peers,
        // The whole file, so that peers compare files, not what each could verify.
        identity: Identity::new(triad.clone(), file_license, Some(&loaded.vendor_key)),
        client_connections_max: config.client_connections_max,
        client_connections_per_address_max: config.client_connections_per_address_max,
        certificate_expires_ms: None,
        borrow_signer: None,
        links: LinkTiming::for_timing(&timing),
        journal,
        license_file: Some(LicenseFileSpec {
            path: config.license.clone(),
            seen: seen.clone(),
        }),
    };
    let served = match &config.security {
        Security::Tls(files) => {
            let tls = load_tls(files, me)?;
            let transport = TlsTransport::server(&tls);
            let node_config = NodeConfig {
                certificate_expires_ms: Some(tls.not_after_ms()),
                borrow_signer: Some(tls.borrow_signer()),
                ..node_config
            };
            run_node(
                &config,
                node_config,
                catalog,
                (transport, storage),
                &hostid,
                (stop, hangups, journal_stats),
            )
            .await
        }
        Security::InsecurePlaintext => {
            warn!(
                "insecure_plaintext = true: connections are not encrypted, peers and servers are not authenticated; anyone on the network can join the triad or pose as a server"
            );
            run_node(
                &config,
                node_config,
                catalog,
                (TcpTransport, storage),
                &hostid,
                (stop, hangups, journal_stats),
            )
            .await
        }
    };
    if let Some(file) = file_journal {
        // Writes what is buffered and syncs the file; waits for the writer thread.
        tokio::task::spawn_blocking(move || file.close()).await?;
    }
    served
}

/// The journal's writer, if the config keeps one; a journal that cannot be started is
/// logged and the server serves without it (a journal never stops serving).
fn open_journal(
    config: &ServerConfig,
    me: ServerId,
    catalog: &Catalog,
    triad: &[String],
) -> Option<FileJournal> {
    if !config.journal.enabled {
        info!("the journal is off ([journal] enabled = false)");
        return None;
    }
    let features = catalog
        .iter()
        .map(|(name, rules)| {
            let hal = !matches!(config.position, ServerPosition::Single);
            let feature = FeatureMeta {
                count: rules.count,
                hal,
            };
            (name.to_string(), feature)
        })
        .collect();
    let t = &config.timing;
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let timing_ms = [
        ("peer_heartbeat_ms", ms(t.peer_heartbeat)),
        ("client_heartbeat_ms", ms(t.client_heartbeat)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let meta = Meta {
        server: Some(me.get()),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        triad: Some(triad.to_vec()),
        timing_ms: Some(timing_ms),
        ..Meta::new(&config.timing, features)
    };
    let dir = config.journal_dir();
    match FileJournal::open(&dir, meta, config.journal.limits) {
        Ok(file) => {
            info!(dir = %dir.display(), "journal on");
            Some(file)
        }
        Err(e) => {
            error!(dir = %dir.display(), "cannot start the journal: {e}; serving without it");
            None
        }
    }
}

/// This server's certificate, checked (the slot, the CA, the dates, the key); a warning
/// when it runs out within 30 days.
fn load_tls(files: &TlsFiles, me: ServerId) -> Result<ServerTls> {
    let now = std::time::SystemTime::now();
    let tls = ServerTls::load(&files.ca, &files.cert, &files.key, me, now)?;
    let days_left = tls.days_left(now);
    if tls.expires_soon(now) {
        warn!(
            days_left,
            cert = %files.cert.display(),
            "the server's certificate expires soon: renew it (`hal-net tls renew`) and restart the servers one at a time"
        );
    } else {
        info!(days_left, "TLS certificate loaded");
    }
    Ok(tls)
}

/// SIGHUP, watched from the server's start, and the license files it has seen.
struct Hangups {
    signal: std::io::Result<tokio::signal::unix::Signal>,
    seen: SeenLicenses,
}

async fn run_node<T: Transport>(
    config: &ServerConfig,
    node_config: NodeConfig,
    catalog: Catalog,
    (transport, storage): (T, FileStorage),
    hostid: &HostId,
    (stop, hangups, journal_stats): (
        impl std::future::Future<Output = ()> + Send,
        Hangups,
        Option<Arc<JournalStats>>,
    ),
) -> Result<()> {
    let me = node_config.core.id();
    let peers = transport.clone();
    // Before anything else listens: a taken port stops the start, naming the key.
    let http = match &config.http {
        Some(http) => Some(
            tokio::net::TcpListener::bind(http.listen)
                .await
                .with_context(|| {
                    format!(
                        "{}: http.listen: cannot listen on {}",
                        config.source_name, http.listen
                    )
                })?,
        ),
        None => None,
    };
    let hangups = tokio::spawn(reread_on_hangup(
        config.license.clone(),
        transport.clone(),
        (push_targets(config, me), me),
        hangups,
    ));
    let node = Node::bind(
        node_config,
        catalog,
        transport,
        storage,
        hal_net::clock::SystemClock::new(),
    )
    .await?;
    let node = with_discovery(config, node);
    let node = match http {
        Some(listener) => {
            let metrics = hal_net::metrics::Metrics::new();
            if let Some(stats) = journal_stats {
                metrics.journal(stats);
            }
            let servers = (me, push_targets(config, me));
            info!(listen = %config.http.map_or_else(String::new, |h| h.listen.to_string()), "http: metrics at /metrics, health at /healthz and /readyz, the status page at /");
            node.with_metrics(metrics.clone()).beside(move |view| {
                let state = hal_net::http::HttpState::new(view, metrics, servers, peers);
                hal_net::http::serve(listener, state)
            })
        }
        None => node,
    };
    info!(
        server = %me,
        listen = %node.local_addr(),
        data_dir = %config.data_dir.display(),
        hostid = %hostid,
        version = env!("CARGO_PKG_VERSION"),
        protocol = hal_net::wire::protocol_newest(),
        storage_format = hal_net::storage::FORMAT,
        "listening"
    );
    let ran = node.run(stop).await;
    hangups.abort();
    ran.map_err(|e| {
        error!("server stopped: {e}");
        anyhow::Error::new(e)
    })?;
    info!("server stopped cleanly");
    Ok(())
}

/// `node` with discovery's responder beside it, unless the config turns discovery off.
///
/// A discovery socket that cannot be bound (another program holds the UDP port without
/// sharing it, say) is logged as an error and the server runs without discovery: it is a
/// convenience for finding the servers, and clients given a license path need none of it,
/// while a license server that refused to start over it would stop every client. A
/// multicast group that cannot be joined is logged the same way; broadcasts are still
/// answered.
fn with_discovery<T: Transport, S: hal_net::storage::Storage, C: hal_net::clock::Clock>(
    config: &ServerConfig,
    node: Node<T, S, C>,
) -> Node<T, S, C> {
    if !config.discovery {
        info!("discovery is off (discovery = false): clients need the license path");
        return node;
    }
    let local = node.local_addr();
    let Ok(local) = local.parse::<SocketAddr>() else {
        error!("discovery is off: cannot read the port of the listening address {local}");
        return node;
    };
    let port = local.port();
    // The group is joined on the interface of the address the server listens on.
    let interface = match local.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => ip,
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let multicast = config.discovery_multicast.map(|group| (group, interface));
    let (socket, join_error) = match discovery::socket::server_socket(port, multicast) {
        Ok(bound) => bound,
        Err(e) => {
            error!(
                "discovery is off: cannot bind UDP 0.0.0.0:{port}: {e}; clients must be given the license path"
            );
            return node;
        }
    };
    if let (Some(e), Some(group)) = (join_error, config.discovery_multicast) {
        error!(
            "discovery: cannot join the multicast group {group} on {interface}: {e}; answering broadcasts only"
        );
    }
    info!(
        port,
        group = ?config.discovery_multicast.map(|g| g.to_string()),
        "discovery: answering on UDP 0.0.0.0:{port}"
    );
    let slot = match config.position {
        ServerPosition::Single => None,
        ServerPosition::Triad(id) => Some(id),
    };
    let responder = discovery::Responder::new(config.triad.clone(), slot);
    node.beside(move |view| async move {
        responder.run(socket, view).await;
    })
}

/// The data directory, opened and locked; a blank one is refused, unless `if_blank`
/// allows it, with what the operator may do about it.
fn open_storage(config: &ServerConfig, if_blank: IfBlank) -> Result<FileStorage> {
    match FileStorage::open(&config.data_dir, if_blank) {
        Ok(storage) => Ok(storage),
        Err(blank @ StorageError::Blank { .. }) => bail!(
            "{blank}. If this is a new triad's first start, or you emptied the directory (or moved it aside) to receive the state from the other two servers, start with --join-empty; if the path is mistyped, fix data_dir in {}",
            config.source_name
        ),
        Err(error) => Err(error.into()),
    }
}

/// The license file as read, and what of it this server serves.
struct Loaded {
    /// The features with a valid signature.
    license: License,
    /// The whole file, parsed.
    file: License,
    /// The whole file's text.
    text: String,
    vendor_key: ed25519_dalek::VerifyingKey,
}

/// Where a license push from this server goes: the triad's servers, or the server
/// itself (on loopback when it listens on every address).
fn push_targets(config: &ServerConfig, me: ServerId) -> Vec<(String, ServerId)> {
    if config.triad.len() == 3 {
        return config
            .triad
            .iter()
            .zip(ServerId::ALL)
            .map(|(addr, id)| (addr.connect_string(), id))
            .collect();
    }
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    vec![(addr.to_string(), me)]
}

/// On each SIGHUP: rereads the license file and, if it has other terms than the license
/// in force, pushes it through the active server (with this server's certificate), so
/// that all three servers switch to it. A file that does not load is logged and nothing
/// changes; the server never stops for a SIGHUP.
async fn reread_on_hangup<T: Transport>(
    path: PathBuf,
    transport: T,
    (servers, me): (Vec<(String, ServerId)>, ServerId),
    hangups: Hangups,
) {
    let Hangups { signal, seen } = hangups;
    let mut hangup = match signal {
        Ok(hangup) => hangup,
        Err(e) => {
            warn!(
                "cannot watch for SIGHUP ({e}); push license changes with `hal-net license push`"
            );
            return;
        }
    };
    let mut pushes: u64 = 0;
    while hangup.recv().await.is_some() {
        info!(file = %path.display(), "SIGHUP: rereading the license file");
        let loaded = match hal_net::license_file::load(&path) {
            Ok(loaded) => loaded,
            Err(e) => {
                error!("SIGHUP: the license file does not load, nothing pushed: {e:#}");
                continue;
            }
        };
        let digest = hal_net::wire::license_digests(&loaded.license).0;
        if seen.contains(&digest) {
            info!(
                digest = %digest.get(..12).unwrap_or(&digest),
                "SIGHUP: the license file has not changed since this server read or wrote it; nothing to push (edit the file on this server, then send SIGHUP to it)"
            );
            continue;
        }
        pushes = pushes.wrapping_add(1);
        // A fresh request id per push (the server remembers one answer per client).
        let id = hal_core::protocol::ClientId(
            getrandom::u64().unwrap_or_else(|_| u64::from(me.get()) << 56 | pushes),
        );
        let by: std::sync::Arc<str> = format!("SIGHUP to server {me}").into();
        let text = loaded.text.as_str().into();
        let limit = std::time::Duration::from_secs(10);
        match hal_net::admin::push_license(&transport, &servers, (text, by), id, limit).await {
            Ok(hal_net::admin::Push::Pushed {
                index,
                changed: true,
                by,
            }) => {
                info!(index, active = %by, "SIGHUP: pushed the license file; it is in force from index {index}")
            }
            Ok(hal_net::admin::Push::Pushed { index, .. }) => info!(
                index,
                "SIGHUP: the license file has the terms of the license in force (since index {index}); nothing to push"
            ),
            Ok(hal_net::admin::Push::Refused { reason, by }) => error!(
                active = %by,
                "SIGHUP: the active server refused the license file, the license in force is unchanged: {reason}"
            ),
            Err(e) => error!("SIGHUP: cannot push the license file: {e}"),
        }
    }
}

/// The license to serve and the license file as read. Features with a bad signature are
/// not served (each is logged); a license with none left, or one this server's position
/// cannot serve, is refused.
fn load_license(config: &ServerConfig) -> Result<Loaded> {
    let loaded = hal_net::license_file::load(&config.license)?;
    let public = hal_net::keys::read_verifying_key(&config.vendor_key)?;
    let mut license = loaded.license;
    let mode = license.serve_mode().map_err(anyhow::Error::new)?;
    match (mode, config.position) {
        (ServeMode::Hal, ServerPosition::Single) => bail!(
            "{}: the license has HAL features (HAL_SERVERS = 3), which need a triad: list three servers in `triad`",
            license.source_name
        ),
        (ServeMode::Single, ServerPosition::Triad(_)) => bail!(
            "{}: the license has normal network features (no HAL_SERVERS), which one server serves: give `triad` one entry, or none",
            license.source_name
        ),
        _ => {}
    }
    let verdicts: Vec<(String, u32, Option<String>)> = license
        .verify(&public)
        .into_iter()
        .map(|(f, v)| {
            (
                f.name.to_string(),
                f.origin.line,
                v.err().map(|e| e.to_string()),
            )
        })
        .collect();
    let bad: Vec<&String> = verdicts
        .iter()
        .filter_map(|(name, line, why)| {
            let why = why.as_ref()?;
            error!(
                "{}:{line}: FEATURE {name} is not served: {why}",
                license.source_name
            );
            Some(name)
        })
        .collect();
    if bad.len() == license.features.len() {
        bail!(
            "{}: no feature carries a valid signature by the vendor key {}",
            license.source_name,
            config.vendor_key.display()
        );
    }
    let file = license.clone();
    license
        .features
        .retain(|f| !bad.iter().any(|b| **b == f.name.as_str()));
    Ok(Loaded {
        license,
        file,
        text: loaded.text,
        vendor_key: public,
    })
}

/// The rules this server applies; features locked to another machine are logged.
fn catalog(config: &ServerConfig, license: &License, hostid: &HostId) -> Result<Catalog> {
    for feature in &license.features {
        if let Err(error) = feature.check_hostid(config.position, hostid) {
            warn!("{error}; this server refuses it (hostid_mismatch)");
        }
    }
    Ok(Catalog::new(license, config.position, hostid))
}
