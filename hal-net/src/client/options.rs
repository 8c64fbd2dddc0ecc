//! Where the servers are and how the client proves them: [`Options`].

use std::path::{Path, PathBuf};

use hal_core::client::ClientConfig;
use hal_core::timing::Timing;

use hal_core::protocol::ClientId;

use super::Error;
use crate::addr::{LICENSE_PATH_VAR, LicensePath};
use crate::clock::SystemClock;
use crate::discovery::Search;
use crate::session::Session;
use crate::tls_transport::{ClientTransport, TlsTransport};
use crate::transport::TcpTransport;

/// The variable that names the triad's CA certificate.
pub const CA_VAR: &str = "HAL_TRIAD_CA";
/// The variable that names the servers' timing profile (`lan` or `wan`).
pub const PROFILE_VAR: &str = "HAL_PROFILE";

/// The session of a client of these options.
pub(super) type ClientSession = Session<ClientTransport, SystemClock>;

/// A fresh client id, drawn at random (ids must not repeat across processes).
pub(super) fn random_client_id() -> Result<ClientId, Error> {
    getrandom::u64()
        .map(ClientId)
        .map_err(|e| Error::Config(format!("cannot draw a client id: {e}")))
}

/// How a client finds and verifies its license servers.
#[derive(Debug, Clone)]
pub struct Options {
    pub(super) path: LicensePath,
    security: Security,
    pub(super) timing: Timing,
    pub(super) user: String,
    pub(super) host: String,
}

#[derive(Debug, Clone)]
enum Security {
    /// Verify each server against the triad's CA (`ca.pem`).
    Ca(PathBuf),
    /// Plaintext, nothing verified.
    Insecure,
    /// Not chosen yet: building a client fails.
    Unset,
}

impl Options {
    /// The servers of `license_path` (`port@host` entries separated by `;` or `,`, in
    /// triad order), the LAN timing profile, and this process's user and host. Say how
    /// to verify the servers with [`Options::ca`] (or [`Options::insecure`]).
    pub fn new(license_path: &str) -> Result<Options, Error> {
        let path = LicensePath::parse(license_path)
            .map_err(|e| Error::Config(format!("license path '{license_path}': {e}")))?;
        Ok(Options {
            path,
            security: Security::Unset,
            timing: Timing::lan(),
            user: this_user(),
            host: this_host(),
        })
    }

    /// The servers that answer `search` on the LAN ([`crate::discovery`]): the one triad
    /// they describe, otherwise as [`Options::new`]. Blocks for the search's wait
    /// (half a second by default); in async code use [`Options::discover_async`].
    ///
    /// Nothing an answer says is trusted: the client verifies every server it then talks
    /// to against the triad's CA and its slot, so a forged answer pointing elsewhere ends
    /// in a refused TLS handshake. No answer, or answers from several triads (never
    /// guessed between), is an [`Error::Config`] that says so. With
    /// [`Options::insecure`] nothing is verified, so a forged answer is believed: use
    /// discovery with plaintext only on a closed test network.
    pub fn discover(search: &Search) -> Result<Options, Error> {
        let search = search.clone();
        let searching = std::thread::Builder::new()
            .name("hal-discovery".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        Error::Config(format!("discovery: cannot start a runtime: {e}"))
                    })?;
                runtime.block_on(Options::discover_async(&search))
            })
            .map_err(|e| Error::Config(format!("discovery: cannot start a thread: {e}")))?;
        searching.join().unwrap_or(Err(Error::Stopped))
    }

    /// [`Options::discover`] on the current tokio runtime.
    pub async fn discover_async(search: &Search) -> Result<Options, Error> {
        let discovery = |e: crate::discovery::DiscoveryError| Error::Config(e.to_string());
        let found = search.run().await.map_err(discovery)?;
        let path = found.license_path().map_err(discovery)?;
        Ok(Options::with_path(path))
    }

    /// The options the environment gives: `HAL_LICENSE_PATH` (the servers),
    /// `HAL_TRIAD_CA` (the triad's CA certificate) and optionally `HAL_PROFILE`
    /// (`lan`, the default, or `wan`).
    ///
    /// Without `HAL_LICENSE_PATH` the servers are discovered on the LAN
    /// ([`Options::discover`], which blocks up to half a second), with the search
    /// `HAL_DISCOVERY_PORT`, `HAL_DISCOVERY_GROUP` and `HAL_DISCOVERY_TO` describe
    /// ([`Search::from_env`]).
    pub fn from_env() -> Result<Options, Error> {
        let mut options = if std::env::var_os(LICENSE_PATH_VAR).is_some() {
            let path = LicensePath::from_env_or(None).map_err(|e| Error::Config(e.to_string()))?;
            Options::with_path(path)
        } else {
            let search = Search::from_env().map_err(|e| Error::Config(e.to_string()))?;
            Options::discover(&search)?
        };
        if let Some(ca) = std::env::var_os(CA_VAR) {
            options = options.ca(ca);
        }
        if let Some(profile) = std::env::var_os(PROFILE_VAR) {
            let profile = profile.to_string_lossy();
            options = options.profile(&profile)?;
        }
        Ok(options)
    }

    fn with_path(path: LicensePath) -> Options {
        Options {
            path,
            security: Security::Unset,
            timing: Timing::lan(),
            user: this_user(),
            host: this_host(),
        }
    }

    /// Verify each server with a certificate from the triad's CA (`ca.pem` from
    /// `hal-net tls init`) that names its place in the license path.
    pub fn ca(mut self, ca: impl AsRef<Path>) -> Options {
        self.security = Security::Ca(ca.as_ref().to_path_buf());
        self
    }

    /// Talk plaintext to servers that run with `insecure_plaintext = true`, verifying
    /// nothing: for a closed test network only.
    pub fn insecure(mut self) -> Options {
        self.security = Security::Insecure;
        self
    }

    /// The servers' timing profile by name: `lan` or `wan` (it sets how long the
    /// client waits out a failover).
    pub fn profile(mut self, name: &str) -> Result<Options, Error> {
        self.timing = match name {
            "lan" => Timing::lan(),
            "wan" => Timing::wan(),
            other => {
                return Err(Error::Config(format!(
                    "timing profile '{other}': expected lan or wan"
                )));
            }
        };
        Ok(self)
    }

    /// The servers' timing, when they run a profile of their own.
    pub fn timing(mut self, timing: Timing) -> Options {
        self.timing = timing;
        self
    }

    /// The user name the servers record for this client's seats (default: `$USER`).
    pub fn user(mut self, user: &str) -> Options {
        self.user = user.to_string();
        self
    }

    /// The host name the servers record for this client's seats (default: this
    /// machine's name).
    pub fn host(mut self, host: &str) -> Options {
        self.host = host.to_string();
        self
    }

    /// The triad's CA certificate the servers are verified with (and borrow records
    /// proved); `None` in plaintext or before one is chosen.
    pub fn ca_file(&self) -> Option<&Path> {
        match &self.security {
            Security::Ca(ca) => Some(ca),
            Security::Insecure | Security::Unset => None,
        }
    }

    /// The host name the servers record for this client's seats.
    pub fn host_name(&self) -> &str {
        &self.host
    }

    /// The license path, as written.
    pub fn license_path(&self) -> String {
        self.path.to_string()
    }

    pub(super) fn config(&self) -> ClientConfig {
        ClientConfig::new(self.timing)
    }

    /// A session with the servers as client `id` (on the current tokio runtime: its
    /// clock starts now).
    pub(super) fn session(&self, id: ClientId) -> Result<ClientSession, Error> {
        let addrs = self
            .path
            .addrs()
            .iter()
            .map(|s| s.connect_string())
            .collect();
        Ok(Session::new(
            self.transport()?,
            SystemClock::new(),
            addrs,
            id,
            &self.user,
            &self.host,
            self.config(),
        ))
    }

    /// The transport the options ask for (reads the CA file).
    pub(super) fn transport(&self) -> Result<ClientTransport, Error> {
        match &self.security {
            Security::Ca(ca) => {
                let connector = crate::tls::client_connector(ca, None)
                    .map_err(|e| Error::Config(format!("triad CA: {e}")))?;
                Ok(ClientTransport::Tls(TlsTransport::client(connector)))
            }
            Security::Insecure => Ok(ClientTransport::Insecure(TcpTransport)),
            Security::Unset => Err(Error::Config(format!(
                "no triad CA: give the triad's ca.pem (Options::ca, or {CA_VAR}), or choose plaintext for servers that run without TLS (Options::insecure)"
            ))),
        }
    }
}

/// The user this process runs as (`$USER`, else `$LOGNAME`; `unknown` if neither).
pub fn this_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// This machine's name, as the servers record it for its seats (`unknown` if it has
/// none).
pub fn this_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}
