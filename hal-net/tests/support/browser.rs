//! The headless browser of the page tests (a server's status page, the simulator's
//! timeline): `HAL_CHROMIUM`, else the first of Chromium's usual names on the PATH.
//! Without one the tests fail, never skip.

#![allow(dead_code)] // each test file uses a different part

use std::path::PathBuf;

/// The browser's executable; panics, saying how to get one, when there is none.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("HAL_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium found: the page tests need one. Install it (`apt-get install -y \\
         chromium` on Debian, as .ci/run does), or set HAL_CHROMIUM to a Chromium or \\
         Chrome binary"
    );
}
