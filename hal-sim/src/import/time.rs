//! Times as the importer reads and writes them: `--from`/`--to` as Unix ms or RFC 3339,
//! field times as RFC 3339 in comments, simulated times as durations.

pub use hal_net::journal::time::{parse_time, rfc3339};

/// A simulated time or a length for a reader: `12.345 s`.
pub fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_keep_their_milliseconds() {
        assert_eq!(secs(12_045), "12.045 s");
        assert_eq!(secs(0), "0.000 s");
    }
}
