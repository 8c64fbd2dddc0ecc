//! The `hal-sim import` verb: reads the journals and the license, writes the scenario,
//! and with `--verify` runs it once and compares its active servers with the field's.
//!
//! Exit codes: 0 written (and, with `--verify`, replayed as in the field); 1 the file
//! could not be written, or `--verify` found the replay different; 2 an argument, a
//! journal or the license is wrong (the message names the file and line, or the
//! argument).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{ImportError, LicenseFile, Options, import, roles, time};

/// `hal-sim import JOURNAL... --license FILE -o FILE`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Each server's journal: its journal directory (`data_dir/journal`), its data
    /// directory, or journal files.
    #[arg(required = true)]
    pub journals: Vec<PathBuf>,
    /// The license file the servers served (embedded in the scenario).
    #[arg(long)]
    pub license: PathBuf,
    /// Where to write the scenario file.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Start of the window: Unix ms, RFC 3339 (`2026-12-05T09:05:00Z`) or a date
    /// (`2026-12-05`, midnight UTC), on the reference clock (#1's, or the majority's).
    /// Default: the first record.
    #[arg(long, value_parser = time::parse_time)]
    pub from: Option<u64>,
    /// End of the window, the same way. Default: the last record (or the triad's
    /// shutdown, if every server stopped at the end).
    #[arg(long, value_parser = time::parse_time)]
    pub to: Option<u64>,
    /// Also run the scenario once (its seed) and check that it passes and that its active
    /// servers are the field's.
    #[arg(long)]
    pub verify: bool,
}

/// `println!` that does not panic when the reader has gone away.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Runs the verb.
pub fn main(args: &ImportArgs) -> ExitCode {
    let result = hal_net::journal::read::read(&args.journals)
        .map_err(ImportError::from)
        .and_then(|journals| {
            let license = LicenseFile::read(&args.license)?;
            let options = Options {
                from_ms: args.from,
                to_ms: args.to,
            };
            import(&journals, &license, &options)
        });
    let imported = match result {
        Ok(imported) => imported,
        Err(error @ ImportError::Generated(_)) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = std::fs::write(&args.out, &imported.text) {
        eprintln!("error: cannot write {}: {error}", args.out.display());
        return ExitCode::FAILURE;
    }
    for note in &imported.notes {
        out!("note: {note}");
    }
    out!(
        "wrote {}: {} clients, {} steps, {} checks; the field's active servers: {}",
        args.out.display(),
        imported.clients,
        imported.steps,
        imported.checks,
        roles::show(&imported.field_actives)
    );
    if !args.verify {
        out!("run it: hal-sim run {}", args.out.display());
        return ExitCode::SUCCESS;
    }
    verify(&args.out, &imported.field_actives)
}

/// Runs the file once and compares its active servers with the field's.
fn verify(path: &Path, field: &[u8]) -> ExitCode {
    let scenario = match crate::scenario::load(path) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let seed = scenario.seed.unwrap_or(crate::scenario::DEFAULT_SEED);
    let outcome = crate::scenario::run(&scenario, seed, None);
    let replayed = roles::history_sequence(&outcome.history);
    let same = replayed == field;
    out!(
        "replayed (seed {seed}): {:?}; active servers {}{}",
        outcome.verdict(),
        roles::show(&replayed),
        if same {
            " as in the field"
        } else {
            ", NOT as in the field"
        }
    );
    for unmet in outcome.unmet() {
        out!("  {unmet}");
    }
    if outcome.passed() && same {
        ExitCode::SUCCESS
    } else {
        out!("  replay: hal-sim run {} --seed {seed}", path.display());
        ExitCode::FAILURE
    }
}
