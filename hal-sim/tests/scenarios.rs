//! Every scenario file under `scenarios/` as its own test, named by its path without
//! `.toml` (`incidents/asymmetric-cut`), so one can be run by name:
//! `cargo test -p hal-sim --test scenarios -- asymmetric-cut`. A file that does not load
//! fails its test with the loader's message; a run fails on an unmet expectation or
//! check, a violated invariant or a failed simulation, and prints the replay command.

use std::path::{Path, PathBuf};

use hal_sim::scenario;
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn play(path: &Path) -> Result<(), Failed> {
    let loaded = scenario::load(path).map_err(|e| Failed::from(e.to_string()))?;
    let seed = loaded.seed.unwrap_or(scenario::DEFAULT_SEED);
    let outcome = scenario::run(&loaded, seed, None);
    if outcome.passed() {
        return Ok(());
    }
    let mut report = format!("{} (seed {seed}): {:?}\n", loaded.name, outcome.verdict());
    for judged in outcome.judged.iter().filter(|j| !j.met) {
        report.push_str(&format!(
            "  line {}: expected {}; saw {}\n",
            judged.line, judged.expected, judged.saw
        ));
    }
    if let Some(violation) = &outcome.violation {
        report.push_str(&format!("  {violation}"));
    }
    if let Some(failure) = &outcome.failure {
        report.push_str(&format!("  {failure}\n"));
    }
    report.push_str(&format!(
        "  replay: cargo run --release -p hal-sim -- run {} --seed {seed}\n",
        path.display()
    ));
    Err(report.into())
}

fn main() {
    let args = Arguments::from_args();
    let root = root();
    let files = match scenario::files(&root) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", root.display());
            std::process::exit(2);
        }
    };
    let incidents = files
        .iter()
        .filter(|f| f.starts_with(root.join("incidents")))
        .count();
    let library = Trial::test(
        "the incident library holds at least fifteen incidents",
        move || {
            if incidents >= 15 {
                Ok(())
            } else {
                Err(format!("scenarios/incidents/ holds {incidents} scenario files").into())
            }
        },
    );
    let trials = std::iter::once(library)
        .chain(files.into_iter().map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .with_extension("")
                .display()
                .to_string();
            Trial::test(name, move || play(&path))
        }))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
