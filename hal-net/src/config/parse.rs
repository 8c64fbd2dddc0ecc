//! Reading a config file's TOML into a [`ServerConfig`]: a walk over toml's spanned
//! document tree, so that every message can name the key and point at its line and
//! column. (Serde's derive would report a misspelt key as "unknown field" without a
//! suggestion, and a bad value without the key.)

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hal_core::license::ServerPosition;
use hal_core::timing::Timing;
use hal_core::{HostId, ServerId};
use toml::de::{DeTable, DeValue};

use super::error::unknown_key_hint;
use super::{
    CLIENT_CONNECTIONS_MAX_CEILING, CLIENT_CONNECTIONS_MAX_DEFAULT,
    CLIENT_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT, CONFIG_BYTES_MAX, ConfigError, DEFAULT_PORT,
    HttpConfig, JOURNAL_FILE_MB_MAX, JOURNAL_KEEP_DAYS_MAX, JOURNAL_KEEP_MB_MAX, JournalConfig,
    Security, ServerConfig, TIMING_DURATION_MAX, TimingProfile, TlsFiles,
};
use crate::addr::ServerAddr;
use crate::toml_doc::{self, Problem};

/// The keys allowed at the top level, in the order the documentation lists them.
pub(super) const TOP_KEYS: &[&str] = &[
    "triad",
    "id",
    "listen",
    "data_dir",
    "license",
    "vendor_key",
    "hostid",
    "client_connections_max",
    "client_connections_per_address_max",
    "discovery",
    "discovery_multicast",
    "insecure_plaintext",
    "tls",
    "timing",
    "journal",
    "http",
];

/// The keys of `[http]`.
const HTTP_KEYS: &[&str] = &["listen"];

/// The keys of `[journal]`, with each number's range.
const JOURNAL_KEYS: &[&str] = &["enabled", "file_mb", "keep_mb", "keep_days", "heartbeats"];

/// The keys of `[tls]`.
const TLS_KEYS: &[&str] = &["ca", "cert", "key"];

/// The timers of [`Timing`] that `[timing]` can override, by key.
pub const TIMING_FIELDS: &[&str] = &[
    "peer_heartbeat",
    "election_timeout",
    "failover_delay",
    "failback_hold",
    "client_lease",
    "client_heartbeat",
    "max_clock_skew",
];

/// The timer of `timing` called `key`.
pub fn timing_field<'t>(timing: &'t mut Timing, key: &str) -> Option<&'t mut Duration> {
    Some(match key {
        "peer_heartbeat" => &mut timing.peer_heartbeat,
        "election_timeout" => &mut timing.election_timeout,
        "failover_delay" => &mut timing.failover_delay,
        "failback_hold" => &mut timing.failback_hold,
        "client_lease" => &mut timing.client_lease,
        "client_heartbeat" => &mut timing.client_heartbeat,
        "max_clock_skew" => &mut timing.max_clock_skew,
        _ => return None,
    })
}

use crate::toml_doc::Value;

pub(super) fn parse(
    source_name: &str,
    text: &str,
    base_dir: &Path,
) -> Result<ServerConfig, ConfigError> {
    if text.len() > CONFIG_BYTES_MAX {
        return Err(ConfigError::TooLarge {
            source_name: source_name.into(),
        });
    }
    let doc = Doc {
        toml: toml_doc::Doc::new(source_name, text),
    };
    let root = doc.toml.parse().map_err(|problem| ConfigError::Syntax {
        at: problem.at,
        message: problem.problem,
    })?;
    let root = root.get_ref();
    doc.check_keys(root, TOP_KEYS, "at the top level", TIMING_FIELDS)?;
    let triad = doc.triad(root)?;
    let position = doc.position(root, &triad)?;
    let own_port = match position {
        ServerPosition::Single => triad.first(),
        ServerPosition::Triad(id) => triad.get(id.index()),
    }
    .map_or(DEFAULT_PORT, ServerAddr::port);
    let (timing_profile, timing) = doc.timing(root)?;
    let (discovery, discovery_multicast) = doc.discovery(root)?;
    let journal = doc.journal(root)?;
    let http = doc.http(root)?;
    Ok(ServerConfig {
        source_name: source_name.into(),
        position,
        listen: doc.listen(root, own_port)?,
        data_dir: doc.path(root, "data_dir", base_dir)?,
        license: doc.path(root, "license", base_dir)?,
        vendor_key: doc.path(root, "vendor_key", base_dir)?,
        hostid: doc.hostid(root)?,
        client_connections_max: doc.connections_max(
            root,
            "client_connections_max",
            CLIENT_CONNECTIONS_MAX_DEFAULT,
        )?,
        client_connections_per_address_max: doc.connections_max(
            root,
            "client_connections_per_address_max",
            CLIENT_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT,
        )?,
        discovery,
        discovery_multicast,
        security: doc.security(root, base_dir)?,
        triad,
        timing_profile,
        timing,
        journal,
        http,
    })
}

/// The text being read: the shared reader, and the config's own errors.
struct Doc<'a> {
    toml: toml_doc::Doc<'a>,
}

impl Doc<'_> {
    fn invalid(&self, span: Range<usize>, key: &str, problem: impl Into<String>) -> ConfigError {
        self.toml.problem(span, key, problem).into()
    }

    fn missing(&self, key: &'static str, what: &'static str) -> ConfigError {
        ConfigError::Missing {
            source_name: self.toml.source_name.into(),
            key,
            what,
        }
    }

    /// Refuses the first key (in file order) of `table` that is not `allowed`.
    /// `misplaced` are keys that belong in another table.
    fn check_keys(
        &self,
        table: &DeTable<'_>,
        allowed: &[&str],
        table_name: &'static str,
        misplaced: &[&str],
    ) -> Result<(), ConfigError> {
        match self.toml.unknown_keys(table, allowed).into_iter().next() {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::UnknownKey {
                hint: unknown_key_hint(&unknown.key, allowed, misplaced),
                at: unknown.at,
                key: unknown.key,
                table: table_name,
            }),
        }
    }

    /// The value as a string; `expected` says what kind of string, for the message.
    fn string<'v>(
        &self,
        key: &str,
        value: &'v Value<'_>,
        expected: &str,
    ) -> Result<&'v str, ConfigError> {
        Ok(self.toml.string(key, value, expected)?)
    }

    fn integer(&self, key: &str, value: &Value<'_>) -> Result<i64, ConfigError> {
        Ok(self.toml.integer(key, value)?)
    }

    fn triad(&self, root: &DeTable<'_>) -> Result<Vec<ServerAddr>, ConfigError> {
        let Some(value) = root.get("triad") else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = value.get_ref() else {
            let found = value.get_ref().type_str();
            let problem = format!(
                "expected a list such as [\"6200@lic1\", \"6200@lic2\", \"6200@lic3\"], found {found}"
            );
            return Err(self.invalid(value.span(), "triad", problem));
        };
        if !matches!(items.len(), 1 | 3) {
            let problem = format!(
                "has {} entries; a HAL triad has 3 (in role order, the same on all three \
                 servers), a single server 1 or none",
                items.len()
            );
            return Err(self.invalid(value.span(), "triad", problem));
        }
        let mut addrs: Vec<ServerAddr> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let number = index + 1;
            let addr = self.triad_entry(number, item)?;
            if let Some(same) = addrs.iter().position(|a| a.same_server(&addr)) {
                let problem = format!("entries {} and {number} are both {addr}", same + 1);
                return Err(self.invalid(item.span(), "triad", problem));
            }
            addrs.push(addr);
        }
        Ok(addrs)
    }

    fn triad_entry(&self, number: usize, item: &Value<'_>) -> Result<ServerAddr, ConfigError> {
        let key = format!("triad entry {number}");
        let text = self.string(&key, item, "a server address such as \"6200@lic1\"")?;
        ServerAddr::parse(text).map_err(|error| self.invalid(item.span(), &key, error.to_string()))
    }

    fn position(
        &self,
        root: &DeTable<'_>,
        triad: &[ServerAddr],
    ) -> Result<ServerPosition, ConfigError> {
        let Some(value) = root.get("id") else {
            return match triad.len() {
                3 => Err(self.missing("id", "this server's position in the triad: 1, 2 or 3")),
                _ => Ok(ServerPosition::Single),
            };
        };
        let id = self.integer("id", value)?;
        if triad.len() != 3 {
            return match id {
                1 => Ok(ServerPosition::Single),
                _ => Err(self.invalid(
                    value.span(),
                    "id",
                    format!("{id}: a single server (no triad of 3) can only be 1"),
                )),
            };
        }
        let server = u8::try_from(id).ok().and_then(ServerId::new);
        server.map(ServerPosition::Triad).ok_or_else(|| {
            let problem = format!("{id} is not a position in the triad; allowed: 1, 2, 3");
            self.invalid(value.span(), "id", problem)
        })
    }

    fn listen(&self, root: &DeTable<'_>, own_port: u16) -> Result<SocketAddr, ConfigError> {
        let Some(value) = root.get("listen") else {
            return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, own_port)));
        };
        let example = "an IP address and port such as \"0.0.0.0:6200\" or \"[::]:6200\"";
        let text = self.string("listen", value, example)?;
        text.parse().map_err(|_| {
            let problem = format!("'{text}' is not {example}");
            self.invalid(value.span(), "listen", problem)
        })
    }

    /// A required path, made absolute from `base_dir`.
    fn path(
        &self,
        root: &DeTable<'_>,
        key: &'static str,
        base_dir: &Path,
    ) -> Result<PathBuf, ConfigError> {
        let Some(value) = root.get(key) else {
            return Err(self.missing(key, path_hint(key)));
        };
        let text = self.string(key, value, "a path in quotes")?;
        if text.is_empty() {
            return Err(self.invalid(value.span(), key, "the path is empty"));
        }
        std::path::absolute(base_dir.join(text)).map_err(|error| {
            self.invalid(
                value.span(),
                key,
                format!("cannot make '{text}' absolute: {error}"),
            )
        })
    }

    fn hostid(&self, root: &DeTable<'_>) -> Result<Option<HostId>, ConfigError> {
        let Some(value) = root.get("hostid") else {
            return Ok(None);
        };
        let text = self.string(
            "hostid",
            value,
            "a HostID in quotes such as \"0a1b2c3d4e5f\"",
        )?;
        HostId::parse(text)
            .map(Some)
            .map_err(|why| self.invalid(value.span(), "hostid", format!("'{text}': {why}")))
    }

    /// `discovery` (default on) and `discovery_multicast` (an IPv4 multicast group,
    /// only with discovery on).
    fn discovery(&self, root: &DeTable<'_>) -> Result<(bool, Option<Ipv4Addr>), ConfigError> {
        let on = match root.get("discovery") {
            None => true,
            Some(value) => match value.get_ref() {
                DeValue::Boolean(on) => *on,
                other => {
                    let problem = format!("expected true or false, found {}", other.type_str());
                    return Err(self.invalid(value.span(), "discovery", problem));
                }
            },
        };
        let Some(value) = root.get("discovery_multicast") else {
            return Ok((on, None));
        };
        let key = "discovery_multicast";
        let text = self.string(
            key,
            value,
            "an IPv4 multicast address such as \"239.255.62.62\"",
        )?;
        let group = crate::discovery::client::parse_group(text)
            .map_err(|problem| self.invalid(value.span(), key, problem))?;
        if !on {
            let problem = "set, but discovery = false: the server answers no discovery at all; keep one of the two";
            return Err(self.invalid(value.span(), key, problem));
        }
        Ok((on, Some(group)))
    }

    /// `[tls]` or `insecure_plaintext = true`: exactly one.
    fn security(&self, root: &DeTable<'_>, base_dir: &Path) -> Result<Security, ConfigError> {
        let plaintext = match root.get("insecure_plaintext") {
            None => false,
            Some(value) => match value.get_ref() {
                DeValue::Boolean(yes) => *yes,
                other => {
                    let problem = format!("expected true or false, found {}", other.type_str());
                    return Err(self.invalid(value.span(), "insecure_plaintext", problem));
                }
            },
        };
        match (root.get("tls"), plaintext) {
            (Some(value), true) => Err(self.invalid(
                value.span(),
                "tls",
                "a [tls] section and insecure_plaintext = true contradict each other; keep one",
            )),
            (None, true) => Ok(Security::InsecurePlaintext),
            (None, false) => Err(self.missing(
                "tls",
                "the server's TLS files: a [tls] section with ca, cert and key (make them with `hal-net tls init`), or insecure_plaintext = true for a triad without TLS on a closed network",
            )),
            (Some(value), false) => {
                let DeValue::Table(table) = value.get_ref() else {
                    let problem = "expected a section: write [tls] on a line of its own, then ca, cert and key below it";
                    return Err(self.invalid(value.span(), "tls", problem));
                };
                self.check_keys(table, TLS_KEYS, "in [tls]", &[])?;
                let file = |key: &'static str| self.tls_path(value, table, key, base_dir);
                Ok(Security::Tls(TlsFiles {
                    ca: file("ca")?,
                    cert: file("cert")?,
                    key: file("key")?,
                }))
            }
        }
    }

    fn tls_path(
        &self,
        section: &Value<'_>,
        table: &DeTable<'_>,
        key: &'static str,
        base_dir: &Path,
    ) -> Result<PathBuf, ConfigError> {
        let name = format!("tls.{key}");
        let Some(value) = table.get(key) else {
            let problem = format!("missing {key}: [tls] needs ca, cert and key");
            return Err(self.invalid(section.span(), &name, problem));
        };
        let text = self.string(&name, value, "a path in quotes")?;
        if text.is_empty() {
            return Err(self.invalid(value.span(), &name, "the path is empty"));
        }
        std::path::absolute(base_dir.join(text)).map_err(|error| {
            self.invalid(
                value.span(),
                &name,
                format!("cannot make '{text}' absolute: {error}"),
            )
        })
    }

    fn connections_max(
        &self,
        root: &DeTable<'_>,
        key: &str,
        default: usize,
    ) -> Result<usize, ConfigError> {
        let Some(value) = root.get(key) else {
            return Ok(default);
        };
        let count = self.integer(key, value)?;
        usize::try_from(count)
            .ok()
            .filter(|count| (1..=CLIENT_CONNECTIONS_MAX_CEILING).contains(count))
            .ok_or_else(|| {
                let problem = format!("{count} is not from 1 to {CLIENT_CONNECTIONS_MAX_CEILING}");
                self.invalid(value.span(), key, problem)
            })
    }

    /// The `[http]` section: where the metrics, health checks and status page listen.
    fn http(&self, root: &DeTable<'_>) -> Result<Option<HttpConfig>, ConfigError> {
        let Some(value) = root.get("http") else {
            return Ok(None);
        };
        let DeValue::Table(table) = value.get_ref() else {
            let problem = "expected a section: write [http] on a line of its own, then                            listen = \"127.0.0.1:9100\"";
            return Err(self.invalid(value.span(), "http", problem));
        };
        self.check_keys(table, HTTP_KEYS, "in [http]", &[])?;
        let Some(listen) = table.get("listen") else {
            return Err(self.missing(
                "http.listen",
                "an IP address and port such as \"127.0.0.1:9100\"",
            ));
        };
        let example = "an IP address and port such as \"127.0.0.1:9100\"";
        let text = self.string("http.listen", listen, example)?;
        let listen = text.parse().map_err(|_| {
            let problem = format!("'{text}' is not {example}");
            self.invalid(listen.span(), "http.listen", problem)
        })?;
        Ok(Some(HttpConfig { listen }))
    }

    /// The `[journal]` section, every key optional.
    fn journal(&self, root: &DeTable<'_>) -> Result<JournalConfig, ConfigError> {
        let mut journal = JournalConfig::default();
        let Some(value) = root.get("journal") else {
            return Ok(journal);
        };
        let DeValue::Table(table) = value.get_ref() else {
            let problem = "expected a section: write [journal] on a line of its own, the \
                           settings below it";
            return Err(self.invalid(value.span(), "journal", problem));
        };
        self.check_keys(table, JOURNAL_KEYS, "in [journal]", &[])?;
        let flag = |key: &str| -> Result<Option<bool>, ConfigError> {
            let Some(value) = table.get(key) else {
                return Ok(None);
            };
            value.get_ref().as_bool().map(Some).ok_or_else(|| {
                let found = value.get_ref().type_str();
                let key = format!("journal.{key}");
                self.invalid(
                    value.span(),
                    &key,
                    format!("expected true or false, found {found}"),
                )
            })
        };
        let number = |key: &str, max: u64| -> Result<Option<u64>, ConfigError> {
            let Some(value) = table.get(key) else {
                return Ok(None);
            };
            let key = format!("journal.{key}");
            let n = self.integer(&key, value)?;
            u64::try_from(n)
                .ok()
                .filter(|n| (1..=max).contains(n))
                .map(Some)
                .ok_or_else(|| {
                    self.invalid(value.span(), &key, format!("{n} is not from 1 to {max}"))
                })
        };
        if let Some(on) = flag("enabled")? {
            journal.enabled = on;
        }
        if let Some(on) = flag("heartbeats")? {
            journal.heartbeats = on;
        }
        if let Some(mb) = number("file_mb", JOURNAL_FILE_MB_MAX)? {
            journal.limits.file_bytes = mb << 20;
        }
        if let Some(mb) = number("keep_mb", JOURNAL_KEEP_MB_MAX)? {
            journal.limits.keep_bytes = mb << 20;
        }
        if let Some(days) = number("keep_days", JOURNAL_KEEP_DAYS_MAX)? {
            journal.limits.keep_age = Duration::from_secs(days * 24 * 3600);
        }
        if journal.limits.keep_bytes < journal.limits.file_bytes {
            let problem = "keep_mb is smaller than file_mb: not even one whole file would be kept";
            return Err(self.invalid(value.span(), "[journal]", problem));
        }
        Ok(journal)
    }

    fn timing(&self, root: &DeTable<'_>) -> Result<(TimingProfile, Timing), ConfigError> {
        let Some(value) = root.get("timing") else {
            return Ok((TimingProfile::Lan, Timing::lan()));
        };
        let DeValue::Table(table) = value.get_ref() else {
            let problem = "expected a section: write [timing] on a line of its own, the \
                           settings below it";
            return Err(self.invalid(value.span(), "timing", problem));
        };
        self.check_keys(table, &timing_keys(), "in [timing]", &[])?;
        let section = timing_section(&self.toml, value, table)?;
        Ok((section.profile, section.timing))
    }
}

/// A `[timing]` section as read: the profile, the timers after the overrides, and the
/// overrides the file made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingSection {
    pub profile: TimingProfile,
    pub timing: Timing,
    /// In [`TIMING_FIELDS`] order.
    pub overrides: Vec<(String, Duration)>,
}

/// The keys a `[timing]` section allows: `profile` and the timers.
pub fn timing_keys() -> Vec<&'static str> {
    std::iter::once("profile")
        .chain(TIMING_FIELDS.iter().copied())
        .collect()
}

/// Reads `[timing]` (`value`, the table `table`, whose keys the caller has checked): the
/// profile (default lan), each timer given, and whether they work together. The config
/// file and the simulator's scenario files both read their `[timing]` with it.
pub fn timing_section(
    doc: &toml_doc::Doc<'_>,
    value: &Value<'_>,
    table: &DeTable<'_>,
) -> Result<TimingSection, Problem> {
    let profile = match table.get("profile") {
        None => TimingProfile::Lan,
        Some(value) => {
            let names: Vec<&str> = TimingProfile::ALL.iter().map(|p| p.name()).collect();
            let allowed = names.join(", ");
            let text = doc.string("timing.profile", value, &format!("one of {allowed}"))?;
            TimingProfile::from_name(text).ok_or_else(|| {
                let problem = format!("'{text}' is not a timing profile; allowed: {allowed}");
                doc.problem(value.span(), "timing.profile", problem)
            })?
        }
    };
    let mut timing = profile.timing();
    let mut overrides = Vec::new();
    for key in TIMING_FIELDS {
        if let Some(value) = table.get(*key) {
            let duration = doc.duration(
                &format!("timing.{key}"),
                value,
                TIMING_DURATION_MAX,
                "the 7 days allowed",
            )?;
            if let Some(field) = timing_field(&mut timing, key) {
                *field = duration;
            }
            overrides.push((key.to_string(), duration));
        }
    }
    timing.validate().map_err(|why| {
        let problem = format!(
            "{why} (after the overrides to the '{}' profile)",
            profile.name()
        );
        doc.problem(value.span(), "[timing]", problem)
    })?;
    Ok(TimingSection {
        profile,
        timing,
        overrides,
    })
}

/// What each required path is for, for the message when it is missing.
fn path_hint(key: &str) -> &'static str {
    match key {
        "data_dir" => "the directory for the server's replicated state, e.g. data_dir = \"data\"",
        "license" => "the license file to serve, e.g. license = \"demo.lic\"",
        _ => "the vendor's public key that signed the license, e.g. vendor_key = \"vendor.pub\"",
    }
}
