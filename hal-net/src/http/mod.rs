//! A server's HTTP listener (`[http] listen` in its config): Prometheus metrics at
//! `/metrics`, `/healthz` and `/readyz` for supervisors and load balancers, and a
//! read-only status page at `/` (its data at `/status.json`).
//!
//! It is plaintext and unauthenticated, read-only, and names who holds which seat:
//! operators listen on loopback or a management network. It never holds up serving: it
//! sees the node through a [`NodeView`] (a question the core loop's queue has no room for
//! is not asked), asks the peers for their status at most once a second however often it
//! is asked, and bounds its connections ([`CONNECTIONS_MAX`]), their headers' time
//! ([`HEADER_TIMEOUT`]) and their life ([`CONNECTION_TIME_MAX`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hal_core::ServerId;
use hal_core::server::Role;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};
use tracing::{debug, warn};

use crate::metrics::Metrics;
use crate::node::NodeView;
use crate::transport::Transport;
use crate::triad_view::{self, Probe};
use crate::wire::StatusReport;

/// The most HTTP connections open at once; more wait to be accepted.
pub const CONNECTIONS_MAX: usize = 32;
/// The most HTTP connections open at once from one address; more are closed at once, so
/// one party cannot hold every slot (and fail a supervisor's `/healthz`).
pub const CONNECTIONS_PER_ADDRESS_MAX: usize = 4;
/// How long a request's headers may take to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may stay open.
pub const CONNECTION_TIME_MAX: Duration = Duration::from_secs(30);
/// How long the node's own status may take.
const STATUS_WAIT: Duration = Duration::from_secs(1);
/// How long a peer's status may take.
const PEER_WAIT: Duration = Duration::from_secs(1);
/// How long the triad's status is reused.
const TRIAD_REUSE: Duration = Duration::from_secs(1);

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// What the listener serves from.
#[derive(Debug)]
pub struct HttpState<T: Transport> {
    view: NodeView,
    metrics: Metrics,
    me: ServerId,
    /// Every server of the triad (or the single server), address and slot, in order.
    servers: Vec<(String, ServerId)>,
    /// The host names a request may name besides IP addresses and `localhost`: the
    /// triad's (so that a page of another site, its name pointed at this address, cannot
    /// read the status: DNS rebinding).
    names: Vec<String>,
    /// How to ask the peers: as this server, which they let ask for status.
    transport: T,
    /// The triad's status, and when it was put together.
    triad: Mutex<Option<(Instant, Value)>>,
}

impl<T: Transport> HttpState<T> {
    /// The listener of server `me` of `servers`, seeing it through `view`.
    pub fn new(
        view: NodeView,
        metrics: Metrics,
        (me, servers): (ServerId, Vec<(String, ServerId)>),
        transport: T,
    ) -> HttpState<T> {
        let names = servers
            .iter()
            .filter_map(|(addr, _)| host_of(addr))
            .map(str::to_ascii_lowercase)
            .collect();
        HttpState {
            view,
            metrics,
            me,
            servers,
            names,
            transport,
            triad: Mutex::new(None),
        }
    }
}

/// Serves `listener` until the node stops.
pub async fn serve<T: Transport>(listener: TcpListener, state: HttpState<T>) {
    let state = Arc::new(state);
    let connections = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let per_address: Arc<std::sync::Mutex<std::collections::BTreeMap<std::net::IpAddr, usize>>> =
        Arc::default();
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            () = state.view.stopped() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, from) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!("http: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = AddressSlot::take(&per_address, from.ip()) else {
            debug!(%from, "http: {CONNECTIONS_PER_ADDRESS_MAX} connections from one address already; closed");
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, &request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIME_MAX, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => debug!("http: connection ended: {error}"),
                Err(_) => debug!("http: connection open too long; closed"),
            }
            drop((permit, slot));
        });
    }
}

/// One of an address's connections, given back when dropped.
struct AddressSlot {
    counts: Arc<std::sync::Mutex<std::collections::BTreeMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl AddressSlot {
    /// A slot for a connection from `ip`, unless it has [`CONNECTIONS_PER_ADDRESS_MAX`].
    fn take(
        counts: &Arc<std::sync::Mutex<std::collections::BTreeMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
    ) -> Option<AddressSlot> {
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(ip).or_insert(0);
        if *count >= CONNECTIONS_PER_ADDRESS_MAX {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The host of `host:port` (`[v6]:port` too), without the port.
fn host_of(addr: &str) -> Option<&str> {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map(|(host, _)| host);
    }
    Some(addr.rsplit_once(':').map_or(addr, |(host, _)| host))
}

/// Whether a request naming `host` (its Host header) is for this server: an IP address,
/// `localhost`, or one of the triad's names.
fn host_allowed(host: &str, names: &[String]) -> bool {
    let Some(name) = host_of(host) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" || names.contains(&name)
}

/// The answer to `request`.
async fn respond<T: Transport>(
    state: &HttpState<T>,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
    }
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    // The status page and its data name who holds which seat: a browser may fetch them
    // only by a name of this server. Metrics and health checks say nothing of anyone,
    // and a scraper or a probe may know the server by any name.
    let personal = matches!(request.uri().path(), "/" | "/status.json" | "/status.js");
    if personal && !host_allowed(host, &state.names) {
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers requests for its IP address, localhost or a name in its \
             triad list only (a guard against DNS rebinding)\n"
                .into(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            let report = state.view.status(STATUS_WAIT).await;
            let mut response = text(StatusCode::OK, state.metrics.scrape(report.as_ref()));
            set(
                &mut response,
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            );
            response
        }
        "/healthz" => match state.view.status(STATUS_WAIT).await {
            Some(_) => text(StatusCode::OK, "ok\n".into()),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server's core loop did not answer within a second\n".into(),
            ),
        },
        "/readyz" => {
            let report = state.view.status(STATUS_WAIT).await;
            match readiness(report.as_ref(), state.me) {
                Ok(why) => text(StatusCode::OK, format!("ready: {why}\n")),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            }
        }
        "/status.json" => {
            let value = triad(state).await;
            let mut response = plain(StatusCode::OK, value.to_string());
            set(&mut response, CONTENT_TYPE, "application/json");
            response
        }
        "/" => page(PAGE, "text/html; charset=utf-8"),
        "/status.js" => page(SCRIPT, "text/javascript; charset=utf-8"),
        "/status.css" => page(STYLE, "text/css; charset=utf-8"),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Whether this server is part of a majority that serves: active with a peer (or a
/// single server), or following an active server it is linked to. `Ok` says how, `Err`
/// why not.
pub fn readiness(report: Option<&StatusReport>, me: ServerId) -> Result<String, String> {
    let Some(report) = report else {
        return Err("the server's core loop did not answer within a second".into());
    };
    let linked = |id: ServerId| report.peers.iter().any(|p| p.id == id && p.connected);
    match (report.role, report.leader) {
        (Role::Active, _) if !report.triad => Ok("active (a single server)".into()),
        (Role::Active, _) if report.peers.iter().any(|p| p.connected) => {
            Ok(format!("active (server {me}, with a majority)"))
        }
        (Role::Active, _) => Err("active, but linked to no peer: no majority".into()),
        (Role::Standby, Some(leader)) if leader != me && linked(leader) => {
            Ok(format!("standby, following the active server {leader}"))
        }
        (Role::Standby, Some(leader)) => Err(format!(
            "standby, and not linked to the active server {leader}"
        )),
        (Role::Standby, None) => Err("no active server known (no majority)".into()),
    }
}

/// The triad's status as `hal-net status --json` prints it: this server's own report
/// and each peer's, asked over the peer links' transport; put together at most once per
/// [`TRIAD_REUSE`].
async fn triad<T: Transport>(state: &HttpState<T>) -> Value {
    let mut cached = state.triad.lock().await;
    if let Some((at, value)) = cached.as_ref()
        && at.elapsed() < TRIAD_REUSE
    {
        return value.clone();
    }
    let own = state.view.status(STATUS_WAIT).await;
    let peers: Vec<(String, ServerId)> = state
        .servers
        .iter()
        .filter(|(_, id)| *id != state.me)
        .cloned()
        .collect();
    let mut asked = triad_view::probe_all(&state.transport, &peers, PEER_WAIT).await;
    let mut probes: Vec<Probe> = Vec::new();
    for (addr, id) in &state.servers {
        if *id == state.me {
            probes.push(Probe {
                addr: addr.clone(),
                report: own
                    .clone()
                    .ok_or_else(|| "its core loop did not answer within a second".to_string()),
            });
        } else if !asked.is_empty() {
            probes.push(asked.remove(0));
        }
    }
    let mut value = triad_view::json(&probes);
    value["from"] = Value::from(state.me.get());
    *cached = Some((Instant::now(), value.clone()));
    value
}

fn page(body: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::OK, body.to_string());
    set(&mut response, CONTENT_TYPE, content_type);
    set(
        &mut response,
        hyper::header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = plain(status, body);
    set(&mut response, CONTENT_TYPE, "text/plain; charset=utf-8");
    response
}

/// A response with the headers every answer carries: nothing is cached, nothing sniffed.
fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    set(&mut response, CACHE_CONTROL, "no-store");
    set(
        &mut response,
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        "nosniff",
    );
    response
}

fn set(response: &mut Response<Full<Bytes>>, name: hyper::header::HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

#[cfg(test)]
mod tests;
