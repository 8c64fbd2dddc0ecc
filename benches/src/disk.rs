//! The disk under the triad: what one small record written and `fdatasync`ed costs in a
//! directory, with several writers at once (three servers on one machine share its
//! disk) and, if asked, threads that keep CPUs busy (as the load generator and the
//! servers do under load). Each writer overwrites a file written ahead with zeros, as
//! the servers' logs are, so a sync writes data alone.
//!
//! On a virtual machine whose disk is emulated by host threads sharing its CPUs, this
//! shows what `load` only hints at: syncs that stall for many milliseconds while every
//! CPU is busy, and not while one is free.

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;

use crate::load::{histogram, micros};

/// Bytes written ahead in each writer's file; the records go round in it.
const FILE_BYTES: u64 = 1 << 20;

/// A sync slower than this is a stall.
pub const STALL: Duration = Duration::from_millis(5);

/// What to measure.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// Where the writers' files go (made if absent; the files are removed at the end).
    pub dir: PathBuf,
    /// Threads each writing and syncing their own file, all at once.
    pub writers: usize,
    /// Threads that only spin, keeping that many CPUs busy meanwhile.
    pub busy_threads: usize,
    /// Bytes per record (one write, one `fdatasync`).
    pub record_bytes: usize,
    /// Syncs per second, all writers together (`None`: each as fast as it can).
    pub rate: Option<f64>,
    pub duration: Duration,
}

/// What the writers measured together.
#[derive(Debug)]
pub struct DiskReport {
    pub options: DiskOptions,
    pub syncs: u64,
    pub elapsed: Duration,
    /// Write + `fdatasync` of one record, µs.
    pub sync_us: Histogram<u64>,
    /// Syncs slower than [`STALL`].
    pub stalls: u64,
}

impl DiskReport {
    /// One line of `key=value` figures.
    pub fn line(&self) -> String {
        let ms = |q: f64| self.sync_us.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "disk: writers={} busy_threads={} record_bytes={} rate={} syncs={} syncs_per_s={:.0} sync_p50_ms={:.3} \
             sync_p99_ms={:.3} sync_p999_ms={:.3} sync_max_ms={:.3} stalls_over_{}ms={}",
            self.options.writers,
            self.options.busy_threads,
            self.options.record_bytes,
            self.options
                .rate
                .map_or_else(|| "max".to_string(), |r| format!("{r:.0}")),
            self.syncs,
            self.syncs as f64 / self.elapsed.as_secs_f64().max(1e-9),
            ms(0.5),
            ms(0.99),
            ms(0.999),
            self.sync_us.max() as f64 / 1000.0,
            STALL.as_millis(),
            self.stalls,
        )
    }
}

/// Runs the writers (and the busy threads) for `duration`; blocks meanwhile.
pub fn run(options: DiskOptions) -> Result<DiskReport> {
    if options.writers == 0 {
        bail!("--writers must be at least 1");
    }
    if options.record_bytes == 0 || options.record_bytes as u64 > FILE_BYTES / 2 {
        bail!(
            "--record-bytes must be between 1 and {} (got {})",
            FILE_BYTES / 2,
            options.record_bytes
        );
    }
    if options.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of syncs per second");
    }
    // Each writer's pause between the starts of its syncs.
    let every = options
        .rate
        .map(|r| Duration::from_secs_f64(options.writers as f64 / r));
    fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    let mut files = Vec::new();
    for n in 0..options.writers {
        let path = options
            .dir
            .join(format!("disk-probe-{}-{n}", std::process::id()));
        match prepare(&path) {
            Ok(file) => files.push((path, file)),
            Err(e) => {
                let _ = fs::remove_file(&path);
                remove(&files);
                return Err(e).with_context(|| format!("cannot prepare {}", path.display()));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..options.busy_threads)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || spin(&stop))
        })
        .collect();
    let started = Instant::now();
    let end = started + options.duration;
    let writers: Vec<_> = files
        .iter()
        .map(|(path, file)| {
            let (path, file) = (path.clone(), file.try_clone());
            let record = vec![0x5a_u8; options.record_bytes];
            thread::spawn(move || write_until(&path, file, &record, every, end))
        })
        .collect();
    let mut report = DiskReport {
        options: options.clone(),
        syncs: 0,
        elapsed: Duration::ZERO,
        sync_us: histogram(),
        stalls: 0,
    };
    let mut failure = None;
    for writer in writers {
        match writer.join() {
            Ok(Ok(measured)) => {
                report.syncs += measured.len();
                report.stalls += stalls(&measured);
                // Same bounds on both sides, so adding cannot fail.
                let _ = report.sync_us.add(&measured);
            }
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(anyhow::anyhow!("a writer panicked"))),
        }
    }
    report.elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for thread in busy {
        let _ = thread.join();
    }
    remove(&files);
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Removes the writers' files (best effort: the run's figures matter more).
fn remove(files: &[(PathBuf, File)]) {
    for (path, _) in files {
        let _ = fs::remove_file(path);
    }
}

/// Creates `path` written ahead with zeros, synced.
fn prepare(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all_at(&vec![0; FILE_BYTES as usize], 0)?;
    file.sync_all()?;
    Ok(file)
}

/// Writes and syncs `record` after the last one (round the file) until `end`, starting
/// one every `every` if given.
fn write_until(
    path: &Path,
    file: std::io::Result<File>,
    record: &[u8],
    every: Option<Duration>,
    end: Instant,
) -> Result<Histogram<u64>> {
    let file = file.with_context(|| format!("cannot open {}", path.display()))?;
    let mut measured = histogram();
    let mut offset = 0u64;
    let mut due = Instant::now();
    while Instant::now() < end {
        if let Some(every) = every {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            due += every;
        }
        let started = Instant::now();
        file.write_all_at(record, offset)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write and sync {}", path.display()))?;
        let _ = measured.record(micros(started.elapsed()));
        offset = (offset + record.len() as u64) % (FILE_BYTES - record.len() as u64);
    }
    Ok(measured)
}

/// How many of the recorded syncs took longer than [`STALL`].
fn stalls(measured: &Histogram<u64>) -> u64 {
    let limit = micros(STALL);
    measured
        .iter_recorded()
        .filter(|v| v.value_iterated_to() > limit)
        .map(|v| v.count_at_value())
        .sum()
}

fn spin(stop: &AtomicBool) {
    let mut x = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_count_only_the_syncs_over_the_limit() {
        let mut h = histogram();
        for us in [100, 200, 4_000, 6_000, 20_000] {
            h.record(us).unwrap();
        }
        assert_eq!(stalls(&h), 2);
    }
}
