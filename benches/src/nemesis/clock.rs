//! Each server's wall clock, stepped from outside: every server runs under libfaketime
//! from its first start, reading its offset from a file of its own (`clockN.faketime`,
//! `+0` while calm) at every reading of the clock (`FAKETIME_NO_CACHE`), so writing the
//! file steps the clock at once, mid-run. Only the wall clock steps
//! (`DONT_FAKE_MONOTONIC`): hal-net's timers run on the monotonic clock
//! (hal_net::clock::SystemClock), its borrows, license dates and journal times on the
//! wall clock.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hal_core::ServerId;

use crate::netns::LIBFAKETIME;

/// The offset files of the three servers.
#[derive(Debug)]
pub struct Clocks {
    files: Vec<PathBuf>,
}

impl Clocks {
    /// Makes the files in `dir`, every offset zero.
    pub fn make(dir: &Path) -> Result<Clocks> {
        let clocks = Clocks {
            files: ServerId::ALL
                .iter()
                .map(|id| dir.join(format!("clock{}.faketime", id.get())))
                .collect(),
        };
        for id in ServerId::ALL {
            clocks.set(id, 0)?;
        }
        Ok(clocks)
    }

    /// The environment that runs server `id` under its offset file.
    pub fn env(&self, id: ServerId) -> Vec<(OsString, OsString)> {
        let file = self.files[id.index()].as_os_str();
        [
            ("LD_PRELOAD", OsString::from(LIBFAKETIME)),
            ("FAKETIME_TIMESTAMP_FILE", file.to_owned()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("DONT_FAKE_MONOTONIC", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (OsString::from(k), v))
        .collect()
    }

    /// Sets server `id`'s wall clock `offset_s` seconds off the true time. The file is
    /// replaced whole (written beside it, then renamed), so a reader never sees half.
    pub fn set(&self, id: ServerId, offset_s: i64) -> Result<()> {
        let path = &self.files[id.index()];
        let partial = path.with_extension("partial");
        fs::write(&partial, format!("{offset_s:+}\n"))
            .with_context(|| format!("cannot write {}", partial.display()))?;
        fs::rename(&partial, path).with_context(|| format!("cannot replace {}", path.display()))
    }
}
