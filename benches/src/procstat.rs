//! A process's resident memory (now and at its peak) and CPU time, read from Linux's
//! `/proc`.

use std::time::Duration;

/// What a process used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// CPU time so far, user + system.
    pub cpu: Duration,
}

/// A process's resident memory now and at its peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// The most it has been since the process started (`VmHWM`), KiB.
    pub peak_kib: u64,
}

/// One `kB` figure of a `/proc/<pid>/status` text (`field` with its colon: `VmRSS:`).
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The memory of process `pid`, or `None` when it is gone or `/proc` cannot be read.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Memory {
        rss_kib: status_kib(&status, "VmRSS:")?,
        peak_kib: status_kib(&status, "VmHWM:")?,
    })
}

/// The usage of process `pid`, or `None` when it is gone or `/proc` cannot be read.
pub fn usage(pid: u32) -> Option<Usage> {
    let rss_kib = memory(pid)?.rss_kib;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, so split after its ')').
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)?;
    Some(Usage {
        rss_kib,
        cpu: Duration::from_micros(ticks * 1_000_000 / per_s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        // Burn 50 ms of CPU, as the kernel's own account (getrusage) counts it, so the
        // figure cannot be zero: 50 ms of wall clock would not do on a busy machine, where
        // this thread may get almost none of it.
        use nix::sys::resource::{UsageWho, getrusage};
        use nix::sys::time::TimeValLike;
        let burnt = || {
            let own = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
            let us = own.user_time().num_microseconds() + own.system_time().num_microseconds();
            Duration::from_micros(u64::try_from(us).unwrap_or(0))
        };
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while burnt() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no 50 ms of CPU in 60 s"
            );
        }
        let own = usage(std::process::id()).expect("own /proc entry");
        assert!(own.rss_kib > 100, "{own:?} {x}");
        assert!(own.cpu >= Duration::from_millis(10), "{own:?}");
        assert_eq!(usage(u32::MAX), None);
        let now = memory(std::process::id()).expect("own /proc entry");
        assert!(now.peak_kib >= now.rss_kib && now.rss_kib > 100, "{now:?}");
        assert_eq!(memory(u32::MAX), None);
    }
}
