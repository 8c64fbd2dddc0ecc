//! Sweeps past one machine: a seed range split into shards, each shard's result written
//! as a JSON summary, and the summaries merged into the result one unsharded run gives
//! (the same seeds counted, the same failing seeds with the same reports).
//!
//! A shard is `K/N` with K counting from 0 (a Kubernetes Indexed Job's completion index
//! is used as it is): shard K runs the K-th of N contiguous, near-equal slices of the
//! range, so which seeds a shard ran is plain from its summary, and a shard that failed
//! can be run again alone.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::storage::DiskCounts;

/// The `format` of every summary this version writes and reads.
pub const FORMAT: &str = "hal-sim-sweep-summary/1";
/// The most shards a range may be split into.
pub const SHARDS_MAX: u64 = 1_000_000;
/// The largest summary file `merge` reads (a summary with a violation per seed of a
/// big shard is a few MiB).
pub const SUMMARY_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// One shard of N: the `index`-th (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parses `K/N` (K from 0, below N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not a shard like 0/4 (K/N, K counting from 0)"))?;
        let index: u64 = k
            .trim()
            .parse()
            .map_err(|_| format!("'{k}' in '{text}' is not a shard number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' in '{text}' is not a number of shards"))?;
        if count == 0 || count > SHARDS_MAX {
            return Err(format!(
                "'{text}': the number of shards must be 1 to {SHARDS_MAX}"
            ));
        }
        if index >= count {
            return Err(format!(
                "'{text}': shards count from 0, so K must be below N ({} is the last of {count})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The seeds of `range` this shard runs: the `index`-th of `count` contiguous slices,
    /// their lengths differing by at most one. A shard may be empty when there are more
    /// shards than seeds.
    pub fn seeds(self, range: &Range<u64>) -> Range<u64> {
        let len = u128::from(range.end.saturating_sub(range.start));
        let at = |i: u64| -> u64 {
            // i <= count, so the quotient is at most len, which fits in u64.
            let offset = len * u128::from(i) / u128::from(self.count.max(1));
            range
                .start
                .saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
        };
        at(self.index)..at(self.index.saturating_add(1))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The world every seed of a sweep ran: what must agree between shards to merge them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepWorld {
    /// Simulated time per seed, as humantime writes it (`2m`).
    pub duration: String,
    pub profile: String,
    pub clients: usize,
    /// The planted bug, if any.
    pub plant: Option<String>,
}

/// A range of seeds, `start..end` (end excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeds {
    pub start: u64,
    pub end: u64,
}

impl Seeds {
    pub fn len(self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl From<&Range<u64>> for Seeds {
    fn from(range: &Range<u64>) -> Seeds {
        Seeds {
            start: range.start,
            end: range.end,
        }
    }
}

impl fmt::Display for Seeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// One violating seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub seed: u64,
    /// The violation report as the sweep prints it.
    pub report: String,
    /// The command that replays it.
    pub replay: String,
}

/// What a sweep (or one shard of it, or a merge of all its shards) found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`FORMAT`].
    pub format: String,
    /// The whole range the sweep was asked for (the same in every shard).
    pub seeds: Seeds,
    /// Which shard this is; absent for an unsharded run and a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The seeds this summary covers (a shard's slice; the whole range otherwise).
    pub ran: Seeds,
    pub world: SweepWorld,
    /// The violating seeds, in seed order.
    pub violations: Vec<Failed>,
    /// Simulated seconds run.
    pub sim_s: f64,
    /// Wall-clock seconds: the run's, or for a merge the sum of its shards'.
    pub wall_s: f64,
    /// What the servers' disks went through in all the seeds (summaries written before
    /// 2026-12-07 have none: zeros).
    #[serde(default)]
    pub disks: DiskCounts,
    /// The seeds where recovery ran, to replay one.
    #[serde(default)]
    pub recovery: Recovery,
}

/// The seeds (in seed order) where a server's recovery from a crash did more than read
/// back a clean log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recovery {
    /// A load cut a torn log tail off.
    pub torn_tails_truncated: Vec<u64>,
    /// A load finished a compaction a crash interrupted between its renames.
    pub compactions_finished: Vec<u64>,
}

impl Recovery {
    /// Notes seed `seed`, whose disks saw `disks`.
    pub fn note(&mut self, seed: u64, disks: &DiskCounts) {
        if disks.torn_tails_truncated > 0 {
            self.torn_tails_truncated.push(seed);
        }
        if disks.compactions_finished > 0 {
            self.compactions_finished.push(seed);
        }
    }

    fn extend(&mut self, other: &Recovery) {
        self.torn_tails_truncated
            .extend(&other.torn_tails_truncated);
        self.compactions_finished
            .extend(&other.compactions_finished);
    }

    /// In seed order.
    pub fn sort(&mut self) {
        self.torn_tails_truncated.sort_unstable();
        self.compactions_finished.sort_unstable();
    }
}

impl Summary {
    /// The summary line a sweep ends with.
    pub fn line(&self) -> String {
        format!(
            "seeds={} violations={} sim_s={:.0} wall_s={:.1} speed={:.0}",
            self.ran.len(),
            self.violations.len(),
            self.sim_s,
            self.wall_s,
            self.sim_s / self.wall_s.max(1e-9)
        )
    }

    /// `self` without its wall time: what a sharded sweep and an unsharded one must agree
    /// on.
    pub fn verdicts(&self) -> Summary {
        Summary {
            wall_s: 0.0,
            ..self.clone()
        }
    }

    /// Reads a summary file, checking its format.
    pub fn read(path: &Path) -> Result<Summary, MergeError> {
        let at = || path.to_path_buf();
        let size = std::fs::metadata(path)
            .map_err(|e| MergeError::Read(at(), e.to_string()))?
            .len();
        if size > SUMMARY_BYTES_MAX {
            return Err(MergeError::Read(
                at(),
                format!("{size} bytes, more than the {SUMMARY_BYTES_MAX} a summary may have"),
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| MergeError::Read(at(), e.to_string()))?;
        let summary: Summary =
            serde_json::from_str(&text).map_err(|e| MergeError::Parse(at(), e.to_string()))?;
        if summary.format != FORMAT {
            return Err(MergeError::Parse(
                at(),
                format!(
                    "format is '{}', this hal-sim reads '{FORMAT}'",
                    summary.format
                ),
            ));
        }
        Ok(summary)
    }

    /// Writes the summary as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(path, text)
    }
}

/// Why shard summaries cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("nothing to merge: give the summary file of every shard")]
    Nothing,
    #[error("{0}: cannot read: {1}")]
    Read(PathBuf, String),
    #[error("{0}: not a sweep summary: {1}")]
    Parse(PathBuf, String),
    #[error(
        "{0}: not a shard (it has no `shard`): merge takes the summaries of `sweep --shard K/N`"
    )]
    NotAShard(PathBuf),
    #[error("{0}: {1} differs from {2}'s ({3} there, {4} here); shards of one sweep share it")]
    Mismatch(PathBuf, &'static str, PathBuf, String, String),
    #[error("{0}: shard {1} again (also {2})")]
    Duplicate(PathBuf, Shard, PathBuf),
    #[error("shard {0} of {1} is missing (seeds {2})")]
    Missing(u64, u64, Seeds),
    #[error("{0}: shard {1} says it ran {2}, but shard {1} of {3} is {4}")]
    WrongSlice(PathBuf, Shard, Seeds, Seeds, Seeds),
    #[error("{0}: seed {1} is reported, but shard {2} ran {3}")]
    ForeignSeed(PathBuf, u64, Shard, Seeds),
}

/// Merges the summaries of every shard of one sweep (read from the files named beside
/// them) into the summary an unsharded run of the whole range gives; the wall time is
/// the sum of the shards'. Every shard must be present once, and all must agree on the
/// range, the number of shards and the world.
pub fn merge(parts: &[(PathBuf, Summary)]) -> Result<Summary, MergeError> {
    let Some((first_path, first)) = parts.first() else {
        return Err(MergeError::Nothing);
    };
    let Some(first_shard) = first.shard else {
        return Err(MergeError::NotAShard(first_path.clone()));
    };
    let count = first_shard.count;
    let mut seen: std::collections::BTreeMap<u64, &PathBuf> = std::collections::BTreeMap::new();
    let mut violations = Vec::new();
    let (mut sim_s, mut wall_s) = (0.0, 0.0);
    let (mut disks, mut recovery) = (DiskCounts::default(), Recovery::default());
    for (path, part) in parts {
        let Some(shard) = part.shard else {
            return Err(MergeError::NotAShard(path.clone()));
        };
        let mismatch = |what: &'static str, theirs: String, ours: String| {
            MergeError::Mismatch(path.clone(), what, first_path.clone(), theirs, ours)
        };
        if part.seeds != first.seeds {
            return Err(mismatch(
                "the seed range",
                first.seeds.to_string(),
                part.seeds.to_string(),
            ));
        }
        if shard.count != count {
            return Err(mismatch(
                "the number of shards",
                count.to_string(),
                shard.count.to_string(),
            ));
        }
        if part.world != first.world {
            return Err(mismatch(
                "the world (duration, profile, clients, plant)",
                format!("{:?}", first.world),
                format!("{:?}", part.world),
            ));
        }
        if let Some(other) = seen.insert(shard.index, path) {
            return Err(MergeError::Duplicate(path.clone(), shard, other.clone()));
        }
        let range = first.seeds.start..first.seeds.end;
        let slice = Seeds::from(&shard.seeds(&range));
        if part.ran != slice {
            return Err(MergeError::WrongSlice(
                path.clone(),
                shard,
                part.ran,
                first.seeds,
                slice,
            ));
        }
        if let Some(foreign) = part
            .violations
            .iter()
            .find(|v| v.seed < slice.start || v.seed >= slice.end)
        {
            return Err(MergeError::ForeignSeed(
                path.clone(),
                foreign.seed,
                shard,
                slice,
            ));
        }
        violations.extend(part.violations.iter().cloned());
        sim_s += part.sim_s;
        wall_s += part.wall_s;
        disks = disks.plus(part.disks);
        recovery.extend(&part.recovery);
    }
    if let Some(missing) = (0..count).find(|k| !seen.contains_key(k)) {
        let range = first.seeds.start..first.seeds.end;
        let shard = Shard {
            index: missing,
            count,
        };
        return Err(MergeError::Missing(
            missing,
            count,
            Seeds::from(&shard.seeds(&range)),
        ));
    }
    violations.sort_by_key(|v| v.seed);
    recovery.sort();
    Ok(Summary {
        format: FORMAT.to_string(),
        seeds: first.seeds,
        shard: None,
        ran: first.seeds,
        world: first.world.clone(),
        violations,
        sim_s,
        wall_s,
        disks,
        recovery,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn shards_split_a_range_into_contiguous_slices_covering_it_once() {
        for (range, count) in [(0..10u64, 3u64), (5..6, 4), (100..1100, 7), (0..3, 3)] {
            let mut next = range.start;
            for index in 0..count {
                let slice = Shard { index, count }.seeds(&range);
                assert_eq!(slice.start, next, "{range:?} {index}/{count}");
                let len = slice.end - slice.start;
                let even = (range.end - range.start) / count;
                assert!(
                    len == even || len == even + 1,
                    "{range:?} {index}/{count}: {len}"
                );
                next = slice.end;
            }
            assert_eq!(next, range.end);
        }
        let top = u64::MAX - 10..u64::MAX;
        assert_eq!(
            Shard { index: 1, count: 2 }.seeds(&top),
            u64::MAX - 5..u64::MAX
        );
    }

    #[test]
    fn a_bad_shard_says_what_is_wrong() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("4/4").unwrap_err().contains("count from 0"));
        assert!(Shard::parse("0/0").unwrap_err().contains("1 to"));
        assert!(Shard::parse("3").unwrap_err().contains("like 0/4"));
        assert!(Shard::parse("a/4").unwrap_err().contains("'a'"));
        assert!(Shard::parse("-1/4").is_err());
    }

    fn part(index: u64, count: u64, failing: &[u64]) -> (PathBuf, Summary) {
        let range = 0..10;
        let shard = Shard { index, count };
        let ran = Seeds::from(&shard.seeds(&range));
        let summary = Summary {
            format: FORMAT.to_string(),
            seeds: Seeds::from(&range),
            shard: Some(shard),
            ran,
            world: SweepWorld {
                duration: "30s".into(),
                profile: "lan".into(),
                clients: 5,
                plant: None,
            },
            violations: failing
                .iter()
                .map(|&seed| Failed {
                    seed,
                    report: format!("r{seed}"),
                    replay: format!("p{seed}"),
                })
                .collect(),
            sim_s: 30.0 * ran.len() as f64,
            wall_s: 1.0,
            disks: DiskCounts {
                boots: 3,
                torn_tails_truncated: u64::from(index == 1),
                ..DiskCounts::default()
            },
            recovery: Recovery {
                torn_tails_truncated: if index == 1 { vec![ran.start] } else { vec![] },
                compactions_finished: vec![],
            },
        };
        (PathBuf::from(format!("shard-{index}.json")), summary)
    }

    #[test]
    fn merging_every_shard_gives_the_whole_range_in_seed_order() {
        let merged = merge(&[part(2, 3, &[8]), part(0, 3, &[1, 2]), part(1, 3, &[])]).unwrap();
        assert_eq!(merged.ran, Seeds { start: 0, end: 10 });
        assert_eq!(merged.shard, None);
        let seeds: Vec<u64> = merged.violations.iter().map(|v| v.seed).collect();
        assert_eq!(seeds, [1, 2, 8]);
        assert_eq!(merged.sim_s, 300.0);
        assert_eq!(merged.wall_s, 3.0);
        assert_eq!(merged.disks.boots, 9);
        assert_eq!(merged.disks.torn_tails_truncated, 1);
        assert_eq!(merged.recovery.torn_tails_truncated, [3]);
    }

    #[test]
    fn a_merge_refuses_missing_doubled_foreign_and_mismatched_shards() {
        assert!(matches!(
            merge(&[part(0, 3, &[]), part(2, 3, &[])]),
            Err(MergeError::Missing(1, 3, Seeds { start: 3, end: 6 }))
        ));
        assert!(matches!(
            merge(&[part(0, 2, &[]), part(0, 2, &[]), part(1, 2, &[])]),
            Err(MergeError::Duplicate(..))
        ));
        assert!(matches!(
            merge(&[part(0, 2, &[7]), part(1, 2, &[])]),
            Err(MergeError::ForeignSeed(_, 7, _, _))
        ));
        assert!(matches!(
            merge(&[part(0, 2, &[]), part(1, 3, &[])]),
            Err(MergeError::Mismatch(_, "the number of shards", ..))
        ));
        let mut other = part(1, 2, &[]);
        other.1.world.profile = "wan".into();
        assert!(matches!(
            merge(&[part(0, 2, &[]), other]),
            Err(MergeError::Mismatch(
                _,
                "the world (duration, profile, clients, plant)",
                ..
            ))
        ));
        let mut whole = part(0, 1, &[]);
        whole.1.shard = None;
        assert!(matches!(merge(&[whole]), Err(MergeError::NotAShard(_))));
        assert_eq!(merge(&[]), Err(MergeError::Nothing));
    }
}
