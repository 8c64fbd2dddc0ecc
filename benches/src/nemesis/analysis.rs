//! Judging a nemesis run with the simulator's tools, as subprocesses of `hal-sim`:
//!
//! 1. `hal-sim check JOURNAL_DIR...`: the HAL invariants on the servers' merged journals
//!    (exit 0 clean, 1 violations found, one `invariant violated: ...` line each on
//!    standard output; any other exit is an error);
//! 2. `hal-sim import JOURNAL_DIR... --license FILE -o RUN_DIR/incident.toml --from T
//!    --to T --verify`: a scenario file of a window around the first fault (times in
//!    wall ms since the Unix epoch), run once to compare its active servers, in order,
//!    with the field's;
//! 3. `hal-sim run RUN_DIR/incident.toml`: that scenario replayed in the simulator
//!    (exit 0: passed).
//!
//! Each step's output is kept in the run directory (`hal-sim-VERB.out`). A step that
//! cannot run, or that `hal-sim` does not know, counts as failed, never as passed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};

/// The longest a step may take.
const STEP_LIMIT: Duration = Duration::from_secs(90);

/// What a violation line of `hal-sim check` starts with.
const VIOLATION_PREFIX: &str = "invariant violated:";

/// What to judge.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub hal_sim: &'a Path,
    pub journals: &'a [PathBuf],
    pub license: &'a Path,
    pub dir: &'a Path,
    /// The import window, wall ms since the epoch.
    pub from_unix_ms: u64,
    pub to_unix_ms: u64,
}

/// The verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdicts {
    /// Violations `hal-sim check` reported; `None` if it could not say.
    pub violations: Option<usize>,
    /// Whether the import and the run of the imported scenario both passed.
    pub imported: bool,
    /// One line per step: what it did.
    pub notes: Vec<String>,
}

/// Runs the three steps.
pub async fn judge(inputs: &Inputs<'_>) -> Verdicts {
    let mut notes = Vec::new();
    let violations = check(inputs, &mut notes).await;
    let imported = import_and_run(inputs, &mut notes).await;
    Verdicts {
        violations,
        imported,
        notes,
    }
}

async fn check(inputs: &Inputs<'_>, notes: &mut Vec<String>) -> Option<usize> {
    let mut args: Vec<OsString> = vec!["check".into()];
    args.extend(inputs.journals.iter().map(|j| j.as_os_str().to_owned()));
    let step = match step(inputs, "check", &args).await {
        Ok(step) => step,
        Err(e) => {
            notes.push(format!("check: could not run: {e:#}"));
            return None;
        }
    };
    let counted = step
        .stdout
        .lines()
        .filter(|l| l.starts_with(VIOLATION_PREFIX))
        .count();
    let violations = match step.code {
        Some(0) if counted == 0 => Some(0),
        Some(1) if counted > 0 => Some(counted),
        _ => None,
    };
    notes.push(format!(
        "check: {} ({counted} violation lines){}",
        step.describe(),
        if violations.is_none() {
            "; not a verdict"
        } else {
            ""
        }
    ));
    violations
}

async fn import_and_run(inputs: &Inputs<'_>, notes: &mut Vec<String>) -> bool {
    let incident = inputs.dir.join("incident.toml");
    let mut args: Vec<OsString> = vec!["import".into()];
    args.extend(inputs.journals.iter().map(|j| j.as_os_str().to_owned()));
    args.extend([
        "--license".into(),
        inputs.license.as_os_str().to_owned(),
        "-o".into(),
        incident.as_os_str().to_owned(),
        "--from".into(),
        inputs.from_unix_ms.to_string().into(),
        "--to".into(),
        inputs.to_unix_ms.to_string().into(),
        "--verify".into(),
    ]);
    let imported = match step(inputs, "import", &args).await {
        Ok(step) => {
            notes.push(format!("import: {}", step.describe()));
            step.code == Some(0) && incident.exists()
        }
        Err(e) => {
            notes.push(format!("import: could not run: {e:#}"));
            false
        }
    };
    if !imported {
        notes.push("run: not run (no imported scenario)".to_string());
        return false;
    }
    let args = vec!["run".into(), incident.as_os_str().to_owned()];
    match step(inputs, "run", &args).await {
        Ok(step) => {
            notes.push(format!("run: {}", step.describe()));
            step.code == Some(0)
        }
        Err(e) => {
            notes.push(format!("run: could not run: {e:#}"));
            false
        }
    }
}

/// A finished step.
struct Step {
    /// The exit code (`None`: killed by a signal).
    code: Option<i32>,
    stdout: String,
    stderr: String,
    kept: PathBuf,
}

impl Step {
    /// `exit 2 (the first line of its standard error), output in FILE`.
    fn describe(&self) -> String {
        let code = self
            .code
            .map_or_else(|| "killed".to_string(), |c| format!("exit {c}"));
        let said = self.stderr.lines().find(|l| !l.trim().is_empty());
        match said {
            Some(line) if self.code != Some(0) => {
                format!(
                    "{code} ({}), output in {}",
                    line.trim(),
                    self.kept.display()
                )
            }
            _ => format!("{code}, output in {}", self.kept.display()),
        }
    }
}

/// Runs `hal-sim ARGS`, keeping its output in `hal-sim-VERB.out`.
async fn step(inputs: &Inputs<'_>, verb: &str, args: &[OsString]) -> Result<Step> {
    let child = tokio::process::Command::new(inputs.hal_sim)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", inputs.hal_sim.display()))?;
    let output = tokio::time::timeout(STEP_LIMIT, child.wait_with_output())
        .await
        .with_context(|| format!("hal-sim {verb} took longer than {STEP_LIMIT:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let kept = inputs.dir.join(format!("hal-sim-{verb}.out"));
    let command = std::iter::once(inputs.hal_sim.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let text = format!(
        "$ {command}\n{}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.status
    );
    std::fs::write(&kept, text).with_context(|| format!("cannot write {}", kept.display()))?;
    Ok(Step {
        code: output.status.code(),
        stdout,
        stderr,
        kept,
    })
}
