//! What the tests of `hal-load` share: the other executables of this build.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The executable `bin` of package `package`, beside `hal_load` (the `hal-load` under
/// test), built first if it is missing (when this package's tests run alone).
pub fn sibling(hal_load: &str, package: &str, bin: &str) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    let path = PathBuf::from(hal_load).with_file_name(bin);
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", package, "--bin", bin]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {bin} failed"
        );
    }
    path
}
