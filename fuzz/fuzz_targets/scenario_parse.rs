//! Text into the simulator's scenario file reader. Nothing may panic, and an error's
//! message prints.
//!
//! A scenario may name a license or key file by path (relative to the base directory, or
//! absolute); the base directory is one that does not exist, so relative paths fail to
//! read and only absolute ones the fuzzer spells out are read.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match hal_sim::scenario::parse("fuzz.toml", text, Path::new("/tmp/hal-fuzz-no-such-dir")) {
        Ok(scenario) => {
            let _ = format!("{scenario:?}");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
