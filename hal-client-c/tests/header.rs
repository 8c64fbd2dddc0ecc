//! `include/hal.h` is what cbindgen makes of `src/lib.rs` now: a change to the C API
//! that is not in the committed header fails here. `HAL_BLESS=1` rewrites the header.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::path::Path;

#[test]
fn the_committed_header_is_generated_from_the_source() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .unwrap()
        .write(&mut generated);
    let header = crate_dir.join("include").join("hal.h");
    if std::env::var_os("HAL_BLESS").is_some() {
        std::fs::write(&header, &generated).unwrap();
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not what cbindgen makes of src/lib.rs: regenerate it with \
         HAL_BLESS=1 cargo test -p hal-client-c --test header, and commit it",
        header.display()
    );
}
