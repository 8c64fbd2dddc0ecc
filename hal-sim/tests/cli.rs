//! The `hal-sim` binary as a user runs it: a sweep's summary line, a violation's replay
//! command that reproduces it, histories that do not depend on `--jobs`.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use std::process::Command;

const HAL_SIM: &str = env!("CARGO_BIN_EXE_hal-sim");

fn hal_sim(args: &[&str]) -> (i32, String) {
    let out = Command::new(HAL_SIM).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn a_sweep_ends_with_its_summary_line() {
    let (code, out) = hal_sim(&[
        "sweep",
        "--seeds",
        "0..3",
        "--duration",
        "12s",
        "--jobs",
        "2",
    ]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("seeds=3 violations=0 sim_s=36 wall_s="),
        "{last}"
    );
    assert!(last.contains(" speed="), "{last}");
}

#[test]
fn a_violation_prints_the_replay_command_that_reproduces_it() {
    let args = [
        "sweep",
        "--seeds",
        "0..2",
        "--duration",
        "12s",
        "--clients",
        "12",
        "--plant",
        "double-count",
    ];
    let (code, out) = hal_sim(&args);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("violations=2"), "{out}");
    let replay = out.lines().find(|l| l.starts_with("replay: ")).unwrap();
    assert_eq!(
        replay,
        "replay: hal-sim replay --seed 0 --duration 12s --profile lan --clients 12 --plant double-count"
    );
    let first = out
        .lines()
        .find(|l| l.starts_with("seed 0: invariant violated"))
        .unwrap();
    let command: Vec<&str> = replay
        .trim_start_matches("replay: hal-sim ")
        .split(' ')
        .collect();
    let (code, again) = hal_sim(&command);
    assert_eq!(code, 1);
    assert!(
        again.contains(first),
        "the replay gave another verdict:\n{again}"
    );
}

#[test]
fn histories_do_not_depend_on_the_number_of_jobs() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    for (dir, jobs) in [(&one, "1"), (&two, "2")] {
        let path = dir.path().to_str().unwrap();
        let (code, out) = hal_sim(&[
            "sweep",
            "--seeds",
            "4..7",
            "--duration",
            "9s",
            "--jobs",
            jobs,
            "--history-dir",
            path,
        ]);
        assert_eq!(code, 0, "{out}");
    }
    for seed in 4..7 {
        let name = format!("seed-{seed}.jsonl");
        let a = std::fs::read(one.path().join(&name)).unwrap();
        let b = std::fs::read(two.path().join(&name)).unwrap();
        assert!(a.len() > 1000, "{name} is nearly empty");
        assert!(a == b, "{name} differs between --jobs 1 and --jobs 2");
    }
}

/// A scenario that passes, one with an unmet expectation, and one that does not load.
fn scenario_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let head = "name = \"NAME\"\nstory = \"a test\"\n\n[license]\ntext = \"\"\"\nFEATURE cad\n{\n  VENDOR = acme\n  COUNT = 2\n  HAL_SERVERS = 3\n}\n\"\"\"\n\n[[clients]]\nname = \"alice\"\n\n[[steps]]\nat = \"2s\"\ncrash = 1\n\n[[steps]]\nat = \"4s\"\nclient = \"alice\"\ncheckout = \"cad\"\n";
    let good = format!(
        "{}granted_by = 2\nwithin = \"3s\"\n",
        head.replace("NAME", "good")
    );
    let unmet = format!("{}granted_by = 1\n", head.replace("NAME", "unmet"));
    std::fs::write(dir.path().join("a-good.toml"), good).unwrap();
    std::fs::write(dir.path().join("b-unmet.toml"), unmet).unwrap();
    dir
}

#[test]
fn run_on_one_file_prints_its_timeline_and_verdict() {
    let dir = scenario_dir();
    let file = dir.path().join("a-good.toml");
    let (code, out) = hal_sim(&["run", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("FAULT  crash #1"), "{out}");
    assert!(
        out.contains("[met]     line 22: alice checkout: granted by #2 within 3s"),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with("good: passed (1/1"),
        "{out}"
    );

    let file = dir.path().join("b-unmet.toml");
    let (code, out) = hal_sim(&["run", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[NOT MET] line 22: alice checkout: granted by #1"),
        "{out}"
    );
    let replay = out
        .lines()
        .find(|l| l.trim_start().starts_with("replay: "))
        .unwrap();
    assert_eq!(
        replay.trim(),
        format!("replay: hal-sim run {} --seed 1", file.display())
    );
}

#[test]
fn run_on_a_folder_prints_a_table_and_fails_if_any_run_fails() {
    let dir = scenario_dir();
    let (code, out) = hal_sim(&["run", dir.path().to_str().unwrap(), "--seeds", "3..5"]);
    assert_eq!(code, 1, "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.contains(".toml  ")).collect();
    assert_eq!(rows.len(), 4, "two files, two seeds each: {out}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.ends_with("passed (1/1 expectations and checks met)"))
            .count(),
        2,
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("runs=4 failed=2 bad_files=0"),
        "{out}"
    );

    std::fs::write(
        dir.path().join("c-bad.toml"),
        "name = \"x\"\nstory = \"y\"\nfoo = 1\n",
    )
    .unwrap();
    let out = Command::new(HAL_SIM)
        .args(["run", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("c-bad.toml:3:1: foo: unknown key at the top level"),
        "{stderr}"
    );
}

/// `run --json`: one document a tool can read, with the same verdicts, the unmet
/// expectation's line, the replay command, and each problem of a refused file.
#[test]
fn run_json_gives_every_run_and_every_refused_file() {
    let dir = scenario_dir();
    std::fs::write(
        dir.path().join("c-bad.toml"),
        "name = \"x\"\nstory = \"y\"\nfoo = 1\nseed = -1\n",
    )
    .unwrap();
    let (code, out) = hal_sim(&["run", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(code, 1, "{out}");
    let document: serde_json::Value = serde_json::from_str(&out).unwrap();
    let runs = document["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{out}");
    assert_eq!(runs[0]["verdict"], "passed");
    assert_eq!(runs[0]["judged"][0]["line"], 22);
    assert_eq!(runs[1]["verdict"], "unmet");
    assert_eq!(runs[1]["unmet"], 1);
    assert_eq!(runs[1]["judged"][0]["met"], false);
    let replay = runs[1]["replay"].as_str().unwrap();
    assert!(replay.ends_with("b-unmet.toml --seed 1"), "{replay}");
    assert_eq!(document["failed"], 1);
    let refused = document["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{out}");
    let errors = refused[0]["errors"].as_array().unwrap();
    let lines: Vec<Option<u64>> = errors.iter().map(|e| e["line"].as_u64()).collect();
    // The file as a whole (it has no [license]) first, then the keys in file order.
    assert_eq!(lines, [None, Some(3), Some(4)], "{out}");
    let problem = errors[0]["problem"].as_str().unwrap();
    assert!(problem.starts_with("missing [license]"), "{problem}");
    assert_eq!(errors[1]["key"], "foo");
    assert_eq!(errors[2]["key"], "seed");
}

/// `sweep --shrink` from the command line: twelve clients on servers that count twice the
/// seats (a planted bug) overuse; the seed is shrunk to a file that `run` replays to the
/// same violation with the bug planted, and that passes without it.
#[test]
fn sweep_shrink_writes_a_file_that_run_replays() {
    let dir = tempfile::tempdir().unwrap();
    let shrink_dir = dir.path().to_str().unwrap();
    let (code, out) = hal_sim(&[
        "sweep",
        "--seeds",
        "0..1",
        "--duration",
        "12s",
        "--clients",
        "12",
        "--plant",
        "double-count",
        "--shrink",
        "--shrink-dir",
        shrink_dir,
    ]);
    assert_eq!(code, 1, "{out}");
    let shrunk = out
        .lines()
        .find(|l| l.starts_with("shrink seed 0: "))
        .unwrap();
    assert!(
        shrunk.starts_with("shrink seed 0: 1 no overuse with "),
        "{shrunk}"
    );
    let file = dir.path().join("failing-0.toml");
    assert!(
        shrunk.ends_with(&format!("wrote {}", file.display())),
        "{shrunk}"
    );
    let replay = format!(
        "replay: hal-sim run {} --seed 0 --plant double-count",
        file.display()
    );
    assert!(out.lines().any(|l| l == replay), "{out}");

    let file = file.to_str().unwrap();
    let (code, out) = hal_sim(&["run", file, "--plant", "double-count"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("invariant violated: 1 no overuse"), "{out}");
    let (code, out) = hal_sim(&["run", file]);
    assert_eq!(code, 0, "the file passes without the planted bug: {out}");
}

/// `HAL_SIM_LOG` shows the servers' own log lines, stamped with simulated time and the
/// server's span; a filter that does not parse is a usage error naming the variable.
#[test]
fn hal_sim_log_shows_the_servers_logs_in_simulated_time() {
    let out = Command::new(HAL_SIM)
        .args(["replay", "--seed", "3", "--duration", "5s"])
        .env("HAL_SIM_LOG", "hal_net=info")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8(out.stderr).unwrap();
    let active = log
        .lines()
        .find(|l| l.contains("became active"))
        .unwrap_or_else(|| panic!("{log}"));
    let stamp: f64 = active
        .split_whitespace()
        .next()
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{active}"));
    assert!((0.5..5.0).contains(&stamp), "{active}");
    assert!(active.contains("node{id=#1}"), "{active}");

    let quiet = Command::new(HAL_SIM)
        .args(["replay", "--seed", "3", "--duration", "2s"])
        .env_remove("HAL_SIM_LOG")
        .output()
        .unwrap();
    assert!(quiet.stderr.is_empty(), "{quiet:?}");

    let bad = Command::new(HAL_SIM)
        .args(["replay", "--seed", "3", "--duration", "2s"])
        .env("HAL_SIM_LOG", "hal_net=loud")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let error = String::from_utf8(bad.stderr).unwrap();
    assert!(error.starts_with("error: HAL_SIM_LOG: "), "{error}");
}

/// A sweep split into shards, each writing its summary, merges into exactly the result
/// of the unsharded sweep: the same seeds, the same failing seeds, the same reports and
/// replay commands.
#[test]
fn shards_merged_give_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let world = [
        "--seeds",
        "0..8",
        "--duration",
        "30s",
        "--plant",
        "double-count",
        "--jobs",
        "2",
    ];
    let whole = dir.path().join("whole.json");
    let mut args = vec!["sweep", "--summary", whole.to_str().unwrap()];
    args.extend(world);
    let (code, whole_out) = hal_sim(&args);
    assert_eq!(code, 1, "{whole_out}");
    let mut parts = Vec::new();
    for k in 0..3 {
        let path = dir.path().join(format!("shard-{k}.json"));
        let shard = format!("{k}/3");
        let mut args = vec![
            "sweep",
            "--shard",
            &shard,
            "--summary",
            path.to_str().unwrap(),
        ];
        args.extend(world);
        let (code, out) = hal_sim(&args);
        assert!(code == 0 || code == 1, "{out}");
        parts.push(path);
    }
    let merged = dir.path().join("merged.json");
    // Shards in any order.
    let (code, out) = hal_sim(&[
        "merge",
        parts[2].to_str().unwrap(),
        parts[0].to_str().unwrap(),
        parts[1].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let read = |p: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("wall_s");
        v
    };
    let (whole_json, merged_json) = (read(&whole), read(&merged));
    assert_eq!(merged_json, whole_json);
    // What the disks went through is summed over the shards too.
    let boots = whole_json["disks"]["boots"].as_u64().unwrap();
    assert!(boots >= 8 * 3, "{whole_json}");
    assert!(whole_json["recovery"]["torn_tails_truncated"].is_array());
    let failing = whole_json["violations"].as_array().unwrap().len();
    assert!(failing > 0 && failing < 8, "a mix of seeds: {whole_json}");
    // The printed reports and counts agree too, wall time aside.
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("merged "))
            .map(|l| l.split(" wall_s=").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(strip(&out), strip(&whole_out));
    // A missing shard is named with its seeds.
    let out = Command::new(HAL_SIM)
        .args([
            "merge",
            parts[0].to_str().unwrap(),
            parts[2].to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("shard 1 of 3 is missing (seeds 2..5)"),
        "{err}"
    );
    // A shard past N is refused on the command line.
    let out = Command::new(HAL_SIM)
        .args(["sweep", "--seeds", "0..8", "--shard", "3/3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("count from 0")
    );
}

/// The number after `marker` in `text` (up to the first character that is not a digit).
fn number_after(text: &str, marker: &str) -> u64 {
    let at = text.find(marker).unwrap_or_else(|| panic!("no '{marker}'")) + marker.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after '{marker}'"))
}

/// The shard files in `deploy/` stay consistent: the Indexed Job runs as many completions
/// as the N of its `--shard`, and the Actions matrix lists shards 0..N; the sweep command
/// they run is one hal-sim accepts.
#[test]
fn the_deploy_files_run_every_shard_once() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let job = std::fs::read_to_string(root.join("deploy/hal-sim-sweep-job.yaml")).unwrap();
    let n = number_after(&job, "--shard \"$JOB_COMPLETION_INDEX/");
    assert_eq!(number_after(&job, "\n  completions: "), n);
    assert!(job.contains("completionMode: Indexed"));
    assert!(job.contains("--summary \"/results/shard-$JOB_COMPLETION_INDEX.json\""));
    let actions = std::fs::read_to_string(root.join("deploy/github-sweep.yml")).unwrap();
    let n = number_after(&actions, "--shard ${{ matrix.shard }}/");
    let matrix = actions
        .lines()
        .find_map(|l| l.trim().strip_prefix("shard: ["))
        .unwrap();
    let listed: Vec<u64> = matrix
        .trim_end_matches(']')
        .split(',')
        .map(|k| k.trim().parse().unwrap())
        .collect();
    assert_eq!(listed, (0..n).collect::<Vec<_>>());
    // The job's sweep, on its last shard, is a command line hal-sim accepts (checked
    // with --help after it, so nothing runs).
    let out = Command::new(HAL_SIM)
        .args([
            "sweep",
            "--seeds",
            "0..2000",
            "--duration",
            "2m",
            "--profile",
            "lan",
            "--shard",
            "19/20",
            "--jobs",
            "2",
            "--summary",
            "/tmp/x.json",
            "--help",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// A bug planted in hal-core's code needs the `plant` feature: a build without it says so
/// (and which bugs it can plant), rather than running without the bug. (A build with the
/// feature plants them all; `plants.rs` covers it.)
#[cfg(not(feature = "plant"))]
#[test]
fn a_core_plant_without_the_feature_is_refused_with_how_to_get_it() {
    let out = Command::new(HAL_SIM)
        .args(["replay", "--seed", "1", "--plant", "no-step-down"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--features plant"), "{err}");
    let out = Command::new(HAL_SIM)
        .args(["replay", "--plant", "no-such-bug"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("double-count, no-failback, trust-hello, lost-fsync"),
        "{err}"
    );
}
