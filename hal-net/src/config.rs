//! The license server's configuration file (`hal-net serve --config FILE`), in TOML: where
//! the server stands in the triad, where it listens, which files it serves, and its
//! timers.
//!
//! ```toml
//! id = 1                                  # this server's position in the triad: 1, 2 or 3
//! listen = "127.0.0.1:6200"               # optional
//! triad = ["6200@lic1", "6200@lic2", "6200@lic3"]
//! data_dir = "data"
//! license = "demo.lic"
//! vendor_key = "vendor.pub"
//! hostid = "0a1b2c3d4e5f"                 # optional
//! client_connections_max = 1024           # optional
//! client_connections_per_address_max = 64 # optional
//! discovery = true                        # optional
//! discovery_multicast = "239.255.62.62"   # optional
//!
//! [tls]                                   # or insecure_plaintext = true
//! ca = "tls/ca.pem"
//! cert = "tls/server1.pem"
//! key = "tls/server1.key"
//!
//! [timing]                                # optional
//! profile = "lan"
//! election_timeout = "1s"
//!
//! [journal]                               # optional
//! enabled = true
//! file_mb = 64
//! keep_mb = 1024
//! keep_days = 90
//! heartbeats = false
//!
//! [http]                                  # optional
//! listen = "127.0.0.1:9100"
//! ```
//!
//! The keys:
//!
//! - `triad`: the servers of the HAL triad as `port@host`, in role order (DESIGN §2). It
//!   must be the same, order included, on all three servers. Leave it out, or give one
//!   entry, for a single server that serves normal network licenses.
//! - `id`: this server's position in `triad`, 1 to 3; required with a triad. A single
//!   server needs none (1 is accepted).
//! - `listen`: the IP address and port to accept clients and peers on, e.g.
//!   `"0.0.0.0:6200"` or `"[::]:6200"`. Default: all IPv4 addresses at the port of this
//!   server's `triad` entry, or at [`DEFAULT_PORT`] without one. Port 0 picks a free port
//!   (for tests).
//! - `data_dir`: the directory for the replicated state. Required.
//! - `license`: the license file to serve. Required.
//! - `vendor_key`: the vendor's public key (`vendor.pub`) that signed the license.
//!   Required.
//! - `hostid`: the HostID this server claims, overriding the one read from the machine
//!   (see [`crate::hostid`]). Optional.
//! - `client_connections_max`: the most clients connected at once, 1 to
//!   [`CLIENT_CONNECTIONS_MAX_CEILING`]. Default [`CLIENT_CONNECTIONS_MAX_DEFAULT`].
//! - `client_connections_per_address_max`: the most clients connected at once from one
//!   IP address, 1 to [`CLIENT_CONNECTIONS_MAX_CEILING`]. Default
//!   [`CLIENT_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT`], well below the global limit, so one
//!   address cannot take every connection.
//! - `discovery`: whether the server answers clients' discovery requests (UDP on the
//!   wildcard address of its own port, see [`crate::discovery`]): `true` (the default) or
//!   `false`. Anyone on the LAN then learns the triad's host names and ports, the
//!   server's slot, role and version; nothing else, as every license request still needs
//!   TLS. Turn it off where that is too much, and give clients the license path.
//! - `discovery_multicast`: an IPv4 multicast group (e.g. `"239.255.62.62"`, from the
//!   site-local 239.255.0.0/16) the server also answers on, at its own port, for networks
//!   where broadcasts do not reach it. It joins the group on the interface of its `listen`
//!   address (when it listens on all addresses: the interface the routing table picks
//!   for the group). Needs `discovery` on.
//! - `[tls]`: `ca` (the triad's CA certificate), `cert` and `key` (this server's
//!   certificate for its slot, and its key), from `hal-net tls init`. Required, unless
//!   `insecure_plaintext = true` says the triad runs without TLS (every peer's and client's
//!   word is then taken; for a closed test network only). One or the other, never both.
//! - `[timing]`: `profile` is `lan` (the default) or `wan` (DESIGN §8); any timer of
//!   [`Timing`] can then be overridden by its name (`peer_heartbeat`, `election_timeout`,
//!   `failover_delay`, `failback_hold`, `client_lease`, `client_heartbeat`,
//!   `max_clock_skew`) with a duration such as `"500ms"`, `"2s"` or `"1min 30s"`, at most
//!   [`TIMING_DURATION_MAX`]. The result must pass [`Timing::validate`].
//!
//! - `[journal]`: the server's journal (flight recorder, [`crate::journal`]) in
//!   `<data_dir>/journal/`: `enabled` (default true); a new file is started at `file_mb`
//!   MiB (default 64, at most 4096); the oldest files are removed while all of them hold
//!   more than `keep_mb` MiB (default 1024) or were last written more than `keep_days`
//!   days ago (default 90); `heartbeats = true` also journals heartbeats answered "ok"
//!   (default false: they are most of the traffic, and the seat records already say who
//!   holds what).
//! - `[http]`: `listen`, the address of the server's HTTP listener ([`crate::http`]):
//!   Prometheus metrics at `/metrics`, `/healthz` and `/readyz` for load balancers and
//!   supervisors, and a read-only status page at `/`. Without the section there is none.
//!   It is plaintext and unauthenticated, and the status page names who holds which
//!   seat: listen on loopback or a management network.
//!
//! Relative paths are relative to the config file's directory, so a config and its files
//! can move together. Unknown keys are refused with the nearest known key suggested:
//! a misspelt optional key would otherwise be silently ignored.
//!
//! Every error names the file, the line and column, the key and what is allowed, e.g.
//! `server1.toml:12:11: timing.profile: 'lam' is not a timing profile; allowed: lan, wan`.
//! This module reads the file and checks it; it opens no socket and does not look inside
//! the license or key files.

mod error;
mod file;
mod parse;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hal_core::license::ServerPosition;
use hal_core::timing::Timing;
use hal_core::{HostId, ServerId};

use crate::addr::ServerAddr;

pub use crate::toml_doc::Location;
pub use error::ConfigError;
pub use file::ConfigFile;
pub use parse::{TIMING_FIELDS, TimingSection, timing_field, timing_keys, timing_section};

/// The port a single server without a `triad` entry listens on (LM-X's usual port).
pub const DEFAULT_PORT: u16 = 6200;
/// A config file is a few hundred bytes; anything much larger is not one.
pub const CONFIG_BYTES_MAX: usize = 64 * 1024;
/// `client_connections_max` when the file does not say.
pub const CLIENT_CONNECTIONS_MAX_DEFAULT: usize = 1024;
/// `client_connections_per_address_max` when the file does not say.
pub const CLIENT_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT: usize = 64;
/// The highest `client_connections_max` accepted.
pub const CLIENT_CONNECTIONS_MAX_CEILING: usize = 100_000;
/// The longest timer accepted in `[timing]`: a week is far beyond any sensible setting,
/// and the bound keeps the protocol's sums of timers far from overflowing.
pub const TIMING_DURATION_MAX: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The preset a `[timing]` section starts from (DESIGN §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingProfile {
    /// Servers on one LAN: [`Timing::lan`].
    Lan,
    /// Servers spread over a WAN: [`Timing::wan`].
    Wan,
}

impl TimingProfile {
    /// Every profile, in the order error messages list them.
    pub const ALL: [TimingProfile; 2] = [TimingProfile::Lan, TimingProfile::Wan];

    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            TimingProfile::Lan => "lan",
            TimingProfile::Wan => "wan",
        }
    }

    /// The profile called `name`, if any.
    pub fn from_name(name: &str) -> Option<TimingProfile> {
        Self::ALL.into_iter().find(|profile| profile.name() == name)
    }

    /// The profile's timers.
    pub fn timing(self) -> Timing {
        match self {
            TimingProfile::Lan => Timing::lan(),
            TimingProfile::Wan => Timing::wan(),
        }
    }
}

/// How a server secures its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// TLS with these files (absolute paths).
    Tls(TlsFiles),
    /// Plaintext, as `insecure_plaintext = true` asks.
    InsecurePlaintext,
}

/// The files of a server's `[tls]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The triad's CA certificate.
    pub ca: PathBuf,
    /// This server's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// A server's configuration, checked, with paths made absolute and defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The file it came from, as named in messages.
    pub source_name: String,
    /// Alone, or a position in the triad.
    pub position: ServerPosition,
    /// The triad in role order (3 entries), this server's own address (1 entry), or
    /// nothing (a single server configured without one).
    pub triad: Vec<ServerAddr>,
    /// Where to accept clients and peers.
    pub listen: SocketAddr,
    /// The directory for the replicated state (absolute).
    pub data_dir: PathBuf,
    /// The license file to serve (absolute).
    pub license: PathBuf,
    /// The vendor's public key (absolute).
    pub vendor_key: PathBuf,
    /// The HostID from the file; `None` means "ask the machine".
    pub hostid: Option<HostId>,
    /// The most clients connected at once.
    pub client_connections_max: usize,
    /// The most clients connected at once from one address.
    pub client_connections_per_address_max: usize,
    /// Whether the server answers discovery requests.
    pub discovery: bool,
    /// The multicast group it also answers discovery on.
    pub discovery_multicast: Option<Ipv4Addr>,
    /// TLS files, or plaintext.
    pub security: Security,
    /// The preset `timing` started from, for logs.
    pub timing_profile: TimingProfile,
    /// The profile with the file's overrides applied; valid.
    pub timing: Timing,
    /// The journal's settings (`[journal]`).
    pub journal: JournalConfig,
    /// The HTTP listener for metrics, health checks and the status page (`[http]`), if
    /// the file asks for one.
    pub http: Option<HttpConfig>,
}

/// A server's `[http]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where to listen (`listen`, required in the section), e.g. `"127.0.0.1:9100"`.
    pub listen: SocketAddr,
}

/// The most `journal.file_mb`, `journal.keep_mb` and `journal.keep_days` accepted.
pub const JOURNAL_FILE_MB_MAX: u64 = 4096;
pub const JOURNAL_KEEP_MB_MAX: u64 = 1 << 20;
pub const JOURNAL_KEEP_DAYS_MAX: u64 = 3650;

/// A server's `[journal]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// Whether the server keeps a journal (`enabled`, default true).
    pub enabled: bool,
    /// Whether heartbeats answered "ok" are journaled (`heartbeats`, default false).
    pub heartbeats: bool,
    /// `file_mb` (default 64), `keep_mb` (default 1024), `keep_days` (default 90).
    pub limits: crate::journal::JournalLimits,
}

impl Default for JournalConfig {
    fn default() -> JournalConfig {
        JournalConfig {
            enabled: true,
            heartbeats: false,
            limits: crate::journal::JournalLimits::default(),
        }
    }
}

impl ServerConfig {
    /// Reads and checks the config file at `path`; relative paths in it are taken from
    /// the file's directory.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let source_name = path.display().to_string();
        let text = read_config(path, &source_name)?;
        let base_dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        ServerConfig::parse(&source_name, &text, base_dir)
    }

    /// Checks the config `text`, named `source_name` in messages; relative paths in it
    /// are taken from `base_dir`.
    pub fn parse(
        source_name: &str,
        text: &str,
        base_dir: &Path,
    ) -> Result<ServerConfig, ConfigError> {
        parse::parse(source_name, text, base_dir)
    }

    /// This server's own entry in the triad (or its single entry), if the file has one.
    pub fn own_addr(&self) -> Option<&ServerAddr> {
        match self.position {
            ServerPosition::Single => self.triad.first(),
            ServerPosition::Triad(id) => self.triad.get(id.index()),
        }
    }

    /// The address of triad member `id`; `None` for a single server.
    pub fn addr_of(&self, id: ServerId) -> Option<&ServerAddr> {
        match self.position {
            ServerPosition::Single => None,
            ServerPosition::Triad(_) => self.triad.get(id.index()),
        }
    }

    /// The other two members of the triad with their addresses; none for a single server.
    pub fn peers(&self) -> Vec<(ServerId, &ServerAddr)> {
        let ServerPosition::Triad(own) = self.position else {
            return Vec::new();
        };
        ServerId::ALL
            .into_iter()
            .filter(|id| *id != own)
            .filter_map(|id| Some((id, self.addr_of(id)?)))
            .collect()
    }

    /// The state machine's settings: this server's position and timers, default limits.
    pub fn core_config(&self) -> hal_core::server::Config {
        hal_core::server::Config {
            position: self.position,
            ..hal_core::server::Config::single(self.timing)
        }
    }

    /// A [`ConfigFile`] that renders to a file parsing back to this config (with
    /// absolute paths and every default written out).
    pub fn to_config_file(&self) -> ConfigFile {
        ConfigFile {
            position: self.position,
            listen: Some(self.listen),
            triad: self.triad.clone(),
            data_dir: self.data_dir.clone(),
            license: self.license.clone(),
            vendor_key: self.vendor_key.clone(),
            hostid: self.hostid.clone(),
            client_connections_max: Some(self.client_connections_max),
            client_connections_per_address_max: Some(self.client_connections_per_address_max),
            discovery: Some(self.discovery),
            discovery_multicast: self.discovery_multicast,
            security: self.security.clone(),
            timing_profile: self.timing_profile,
            timing: self.timing,
            journal: (self.journal != JournalConfig::default()).then_some(self.journal),
            http: self.http,
        }
    }

    /// The journal's directory: `journal` in the data directory.
    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }
}

/// The file's text, read with the size limit.
fn read_config(path: &Path, source_name: &str) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io {
        path: source_name.into(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // One byte past the limit is enough for `parse` to report the file as too large.
    let cap = u64::try_from(CONFIG_BYTES_MAX + 1).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes).map_err(io)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        // The valid prefix is text; the location is where the first bad byte sits.
        let prefix = String::from_utf8_lossy(bytes.get(..valid).unwrap_or_default());
        ConfigError::NotUtf8 {
            at: Location::at_byte(source_name, &prefix, valid),
        }
    })
}
