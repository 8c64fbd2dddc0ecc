//! Inputs shared by the benchmarks in `benches/`: generated license files of a chosen
//! size, and an in-memory cluster driver ([`cluster`]), so every benchmark measures the
//! same work. Also what `hal-load` runs against real `hal-net serve` processes: the
//! load, failover and soak measurements, and the [`nemesis`] on a network of namespaces.

pub mod cli;
pub mod cluster;
pub mod delay_proxy;
pub mod disk;
pub mod failover;
pub mod floor;
pub mod hal;
pub mod load;
pub mod nemesis;
pub mod netns;
pub mod procstat;
pub mod proxy;
pub mod push;
pub mod queue;
pub mod report;
pub mod rolling;
pub mod servers;
pub mod soak;
pub mod triad;

use std::fmt::Write;

use ed25519_dalek::SigningKey;
use hal_core::license::{License, parse};

/// A fixed vendor key: benchmarks must not depend on randomness.
pub fn vendor_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// The text of an unsigned HAL license with `features` features, each with the
/// directives a real vendor file carries.
pub fn license_text(features: usize) -> String {
    let mut text = String::from("# generated for benchmarks\n");
    for i in 0..features {
        let _ = write!(
            text,
            "FEATURE feature_{i}\n{{\n  VENDOR = acme\n  VERSION = 2.{i}\n  COUNT = {}\n  \
             HAL_SERVERS = 3\n  BORROW = 168   # a week\n  HOSTID = 0a1b2c 3d4e5f 6a7b8c\n  \
             START = 2026-01-01\n  END = 2030-12-31\n  LICENSEE = \"Example Corp\"\n}}\n\n",
            i % 500 + 1
        );
    }
    text
}

/// The same license, parsed and signed with [`vendor_key`].
pub fn signed_license(features: usize) -> License {
    let text = license_text(features);
    let mut license = match parse("bench.lic", text.as_bytes()) {
        Ok(license) => license,
        Err(errors) => panic!("the generated license must parse: {errors}"),
    };
    license.sign(&vendor_key());
    license
}
