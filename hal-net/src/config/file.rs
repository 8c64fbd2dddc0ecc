//! Writing config files: [`ConfigFile`] renders the TOML that [`super::ServerConfig::parse`]
//! reads, for `hal-net dev-cluster` and for tests.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use hal_core::HostId;
use hal_core::license::ServerPosition;
use hal_core::timing::Timing;

use super::parse::{TIMING_FIELDS, timing_field};
use super::{Security, TimingProfile};
use crate::addr::ServerAddr;

/// The contents of a config file to write. `None` leaves a key out, so the reader's
/// default applies.
///
/// [`ConfigFile::render`] writes what it is given without checking it: a triad of two
/// renders, and the server refuses it. Paths are written as given (relative ones are read
/// relative to the file's directory); a path that is not UTF-8 is written lossily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Written as `id` for a triad member; a single server gets no `id`.
    pub position: ServerPosition,
    pub listen: Option<SocketAddr>,
    /// Left out when empty.
    pub triad: Vec<ServerAddr>,
    pub data_dir: PathBuf,
    pub license: PathBuf,
    pub vendor_key: PathBuf,
    pub hostid: Option<HostId>,
    pub client_connections_max: Option<usize>,
    pub client_connections_per_address_max: Option<usize>,
    pub discovery: Option<bool>,
    pub discovery_multicast: Option<Ipv4Addr>,
    /// A `[tls]` section, or `insecure_plaintext = true`.
    pub security: Security,
    pub timing_profile: TimingProfile,
    /// The timers wanted; those that differ from `timing_profile`'s are written as
    /// overrides.
    pub timing: Timing,
    /// A `[journal]` section, written out whole; none leaves the defaults.
    pub journal: Option<super::JournalConfig>,
    /// An `[http]` section; none: no HTTP listener.
    pub http: Option<super::HttpConfig>,
}

impl ConfigFile {
    /// A single server with every optional key left out, the LAN timers, and plaintext
    /// (give it a [`Security::Tls`] for anything but a closed test network).
    pub fn single(data_dir: &Path, license: &Path, vendor_key: &Path) -> ConfigFile {
        ConfigFile {
            position: ServerPosition::Single,
            listen: None,
            triad: Vec::new(),
            data_dir: data_dir.into(),
            license: license.into(),
            vendor_key: vendor_key.into(),
            hostid: None,
            client_connections_max: None,
            client_connections_per_address_max: None,
            discovery: None,
            discovery_multicast: None,
            security: Security::InsecurePlaintext,
            timing_profile: TimingProfile::Lan,
            timing: Timing::lan(),
            journal: None,
            http: None,
        }
    }

    /// The config file of triad member `id` (whose address is `triad[id]`), otherwise as
    /// [`ConfigFile::single`].
    pub fn triad_member(
        triad: [ServerAddr; 3],
        id: hal_core::ServerId,
        data_dir: &Path,
        license: &Path,
        vendor_key: &Path,
    ) -> ConfigFile {
        ConfigFile {
            position: ServerPosition::Triad(id),
            triad: triad.into(),
            ..ConfigFile::single(data_dir, license, vendor_key)
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::from("# HAL license server configuration (see hal_net::config).\n");
        if let ServerPosition::Triad(id) = self.position {
            line(&mut out, "id", id.get());
        }
        if let Some(listen) = self.listen {
            line(&mut out, "listen", quote(&listen.to_string()));
        }
        if !self.triad.is_empty() {
            let entries: Vec<String> = self.triad.iter().map(|a| quote(&a.to_string())).collect();
            line(&mut out, "triad", format!("[{}]", entries.join(", ")));
        }
        line(&mut out, "data_dir", quote_path(&self.data_dir));
        line(&mut out, "license", quote_path(&self.license));
        line(&mut out, "vendor_key", quote_path(&self.vendor_key));
        if let Some(hostid) = &self.hostid {
            line(&mut out, "hostid", quote(hostid.as_str()));
        }
        if let Some(count) = self.client_connections_max {
            line(&mut out, "client_connections_max", count);
        }
        if let Some(count) = self.client_connections_per_address_max {
            line(&mut out, "client_connections_per_address_max", count);
        }
        if let Some(on) = self.discovery {
            line(&mut out, "discovery", on);
        }
        if let Some(group) = self.discovery_multicast {
            line(&mut out, "discovery_multicast", quote(&group.to_string()));
        }
        match &self.security {
            Security::InsecurePlaintext => line(&mut out, "insecure_plaintext", true),
            Security::Tls(files) => {
                out.push_str("\n[tls]\n");
                line(&mut out, "ca", quote_path(&files.ca));
                line(&mut out, "cert", quote_path(&files.cert));
                line(&mut out, "key", quote_path(&files.key));
            }
        }
        self.render_timing(&mut out);
        if let Some(journal) = &self.journal {
            out.push_str("\n[journal]\n");
            line(&mut out, "enabled", journal.enabled);
            line(&mut out, "file_mb", journal.limits.file_bytes >> 20);
            line(&mut out, "keep_mb", journal.limits.keep_bytes >> 20);
            line(
                &mut out,
                "keep_days",
                journal.limits.keep_age.as_secs() / (24 * 3600),
            );
            line(&mut out, "heartbeats", journal.heartbeats);
        }
        if let Some(http) = &self.http {
            out.push_str("\n[http]\n");
            line(&mut out, "listen", quote(&http.listen.to_string()));
        }
        out
    }

    fn render_timing(&self, out: &mut String) {
        out.push_str("\n[timing]\n");
        line(out, "profile", quote(self.timing_profile.name()));
        let mut preset = self.timing_profile.timing();
        let mut wanted = self.timing;
        for key in TIMING_FIELDS {
            let from_preset = timing_field(&mut preset, key).copied();
            let Some(value) = timing_field(&mut wanted, key).copied() else {
                continue;
            };
            if from_preset != Some(value) {
                let text = humantime::format_duration(value).to_string();
                line(out, key, quote(&text));
            }
        }
    }
}

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{key} = {value}");
}

/// `text` as a TOML string, escaped as TOML requires.
fn quote(text: &str) -> String {
    toml::Value::String(text.into()).to_string()
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}
