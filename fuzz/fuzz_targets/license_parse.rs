//! Bytes into hal-core's license parser. Nothing may panic; errors print. A license that
//! parses prints (`License::to_text`) to a text that parses to the same features, and
//! rewriting its own keys into the original text (`sign_text`, as `license sign` does)
//! gives a text that parses to the same features too.

#![no_main]

use hal_core::license::{License, canonical_bytes, parse, sign_text};
use libfuzzer_sys::fuzz_target;

fn reparsed(what: &str, text: &str) -> License {
    match parse("fuzz.lic", text.as_bytes()) {
        Ok(license) => license,
        Err(errors) => panic!("{what} does not parse:\n{errors}\n--- text ---\n{text}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let license = match parse("fuzz.lic", data) {
        Ok(license) => license,
        Err(errors) => {
            let _ = errors.to_string();
            return;
        }
    };
    let _ = license.serve_mode();
    let _ = license.serve_errors();
    for feature in &license.features {
        let _ = canonical_bytes(feature);
    }

    let printed = license.to_text();
    let again = reparsed("the printed license", &printed);
    assert_eq!(
        again.features, license.features,
        "printing keeps every feature"
    );

    // The parser accepted the bytes, so they are UTF-8.
    let text = std::str::from_utf8(data).expect("a parsed license is UTF-8");
    let signed = sign_text(text, &license);
    let again = reparsed("the license with its keys rewritten", &signed);
    assert_eq!(
        again.features, license.features,
        "sign_text keeps every feature"
    );
});
