//! The license a node serves, as the shell sees it: what status shows, what the log says
//! about a change, and the license file on disk, which follows the license in force so
//! that a restart (or an operator reading it) finds the license the triad serves.
//!
//! The file is written when a license takes effect (a push, a first leader's file, a
//! snapshot that carries one): atomically, beside the old one, synced, then renamed over
//! it, off the core loop. An old file with other terms is kept as `<file>.previous`. At a
//! restart the file is only compared, for the license in the snapshot and for every
//! entry that was on disk already as it is replayed: an operator who edited it meant to
//! change the license, so it is not overwritten, and status and the log say how to push
//! it. Every file read at the start or written is remembered ([`SeenLicenses`]), so that a
//! SIGHUP pushes only a file that changed since.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hal_core::protocol::LogIndex;
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use super::{LicenseFileSpec, SeenLicenses};
use crate::wire::{LicenseStatus, license_digests};

/// The license in force and the file that mirrors it.
#[derive(Debug)]
pub(super) struct LicenseKeeper {
    status: LicenseStatus,
    file: Option<Arc<LicenseFile>>,
    /// The last log index on disk at the start: licenses up to it are replayed, not new.
    replayed_until: u64,
}

/// A license file the node keeps in step with the license in force.
#[derive(Debug)]
struct LicenseFile {
    path: PathBuf,
    seen: SeenLicenses,
    /// The index of the newest license written (so that writes finishing out of order
    /// never leave an older one), and what status says about the file.
    state: Mutex<FileState>,
}

#[derive(Debug, Default)]
struct FileState {
    written: u64,
    differs: Option<String>,
}

/// The digest of a license text: its canonical terms when it parses, else its bytes.
fn digest_of(text: &str) -> String {
    match hal_core::license::parse("license", text.as_bytes()) {
        Ok(license) => license_digests(&license).0,
        Err(_) => hex::encode(Sha256::digest(text.as_bytes())),
    }
}

/// `name=COUNT` of each feature of `text`, for a log line.
fn counts_of(text: &str) -> String {
    match hal_core::license::parse("license", text.as_bytes()) {
        Ok(license) => license
            .features
            .iter()
            .map(|f| match f.count {
                Some(count) => format!("{}={count}", f.name),
                None => f.name.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => "?".to_string(),
    }
}

impl LicenseKeeper {
    /// A node serving its own license file at `path` (digest `digest`) until one is in
    /// the log.
    pub(super) fn new(
        file: Option<LicenseFileSpec>,
        digest: String,
        replayed_until: u64,
    ) -> LicenseKeeper {
        LicenseKeeper {
            status: LicenseStatus {
                digest,
                index: 0,
                by: None,
                problems: Vec::new(),
                file_differs: None,
            },
            file: file.map(|spec| {
                Arc::new(LicenseFile {
                    path: spec.path,
                    seen: spec.seen,
                    state: Mutex::new(FileState::default()),
                })
            }),
            replayed_until,
        }
    }

    /// What status shows.
    pub(super) fn status(&self) -> LicenseStatus {
        let mut status = self.status.clone();
        if let Some(file) = &self.file {
            status.file_differs = file.lock().differs.clone();
        }
        status
    }

    /// The license in force is `text`, from `index` (by `by`); `serving` says what this
    /// server cannot serve of it. `restart`: reported as the server started.
    pub(super) fn changed(
        &mut self,
        (index, text, by): (LogIndex, Arc<str>, Arc<str>),
        serving: Result<Vec<String>, String>,
        restart: bool,
    ) {
        let restart = restart || index.0 <= self.replayed_until;
        let digest = digest_of(&text);
        let short = digest.get(..12).unwrap_or(&digest).to_string();
        let counts = counts_of(&text);
        if restart {
            info!(index = index.0, %by, digest = %short, features = %counts, "serving the license in force since index {}", index.0);
        } else {
            info!(index = index.0, %by, digest = %short, features = %counts, "the license in force changed");
        }
        let problems = match serving {
            Ok(problems) => {
                for problem in &problems {
                    warn!(index = index.0, "license in force: {problem}");
                }
                problems
            }
            Err(why) => {
                error!(
                    index = index.0,
                    "this server cannot serve the license in force: {why}; it keeps the rules it had"
                );
                vec![why]
            }
        };
        self.status = LicenseStatus {
            digest: digest.clone(),
            index: index.0,
            by: Some(by.to_string()),
            problems,
            file_differs: None,
        };
        let Some(file) = self.file.clone() else {
            return;
        };
        let described = format!("index {}, by {by}", index.0);
        tokio::task::spawn_blocking(move || {
            if restart {
                file.compare(&text, &digest, &described);
            } else {
                file.write(index, &text, &digest);
            }
        });
    }
}

impl LicenseFile {
    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The digest of the file as it is on disk, if it can be read.
    fn digest_on_disk(&self) -> Option<(String, String)> {
        let loaded = crate::license_file::load(&self.path).ok()?;
        Some((digest_of(&loaded.text), loaded.text))
    }

    /// At a restart: says so if the file holds other terms than the license in force.
    fn compare(&self, _text: &str, digest: &str, described: &str) {
        let on_disk = self.digest_on_disk().map(|(d, _)| d);
        if on_disk.as_deref() == Some(digest) {
            return;
        }
        let note = format!(
            "the license file {} differs from the license in force ({described}): this server serves the license in force; push the file to serve it (`hal-net license push {}`, or SIGHUP to this server)",
            self.path.display(),
            self.path.display()
        );
        warn!("{note}");
        self.lock().differs = Some(note);
    }

    /// Writes the license that took effect at `index`, unless a newer one was written
    /// or the file holds it already.
    fn write(&self, index: LogIndex, text: &str, digest: &str) {
        let mut state = self.lock();
        if state.written > index.0 {
            return;
        }
        state.written = index.0;
        state.differs = None;
        let old = self.digest_on_disk();
        if old.as_ref().is_some_and(|(_, t)| t == text) {
            self.seen.add(digest);
            return;
        }
        if let Some((old_digest, old_text)) = old
            && old_digest != digest
        {
            let previous = previous_path(&self.path);
            match crate::license_file::save(&previous, old_text.as_bytes()) {
                Ok(_) => warn!(
                    file = %self.path.display(),
                    kept = %previous.display(),
                    "the license file held other terms than the license in force: kept as {}",
                    previous.display()
                ),
                Err(e) => error!("cannot keep the old license file: {e}"),
            }
        }
        match crate::license_file::save(&self.path, text.as_bytes()) {
            Ok(written) => {
                self.seen.add(digest);
                info!(
                index = index.0,
                file = %written.display(),
                    "wrote the license in force to the license file"
                );
            }
            Err(e) => {
                let note = format!(
                    "cannot write the license in force (index {}) to {}: {e}; a restart serves it from the log all the same",
                    index.0,
                    self.path.display()
                );
                error!("{note}");
                state.differs = Some(note);
            }
        }
    }
}

/// `<file>.previous`, beside `path`.
fn previous_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".previous");
    path.with_file_name(name)
}
