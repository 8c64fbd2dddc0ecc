//! Bytes (as UTF-8 where they are) into hal-net's server config parser. Nothing may
//! panic, and an error's message prints. A config that parses renders
//! (`to_config_file().render()`) to a file that parses back to the same config.

#![no_main]

use std::path::Path;

use hal_net::config::ServerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base_dir = Path::new("/etc/hal");
    let config = match ServerConfig::parse("fuzz.toml", text, base_dir) {
        Ok(config) => config,
        Err(error) => {
            let _ = error.to_string();
            let _ = error.location();
            return;
        }
    };
    let _ = config.own_addr();
    let _ = config.peers();
    let _ = config.core_config();
    let rendered = config.to_config_file().render();
    match ServerConfig::parse("fuzz.toml", &rendered, base_dir) {
        Ok(again) => assert_eq!(again, config, "rendered:\n{rendered}"),
        Err(error) => panic!("the rendered config does not parse: {error}\n{rendered}"),
    }
});
