//! Text into hal-core's options-file parser. Nothing may panic; every error names a line
//! of the file (or 0, the file as a whole); a file that parses decides every question
//! asked of it without panicking.

#![no_main]

use hal_core::options::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
    match parse("fuzz.opt", text, &["cad", "cam"]) {
        Err(errors) => {
            assert!(!errors.is_empty());
            for error in &errors {
                assert!(error.line <= lines, "{error} is past the file's {lines} lines");
                let _ = error.to_string();
            }
        }
        Ok(options) => {
            for feature in ["cad", "cam", "other"] {
                let _ = options.admits(feature, "ann", "ws1");
                let _ = options.max_borrow_hours(feature);
            }
            let _ = options.rules().count();
        }
    }
});
