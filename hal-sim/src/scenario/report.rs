//! A scenario run as JSON (`hal-sim run --json`), for tools and CI: the file, the seed,
//! the verdict, every expectation and check judged, the violation or the harness failure
//! (its kind and message), and the command that replays it; and a refused file's
//! problems, one object each with its line, column and key. The text output says the
//! same for people.

use serde_json::{Value, json};

use super::{Outcome, Scenario, ScenarioError, ScenarioErrors, Verdict};

/// One run of `scenario`, read from `file`.
pub fn run_json(file: &str, scenario: &Scenario, outcome: &Outcome, replay: &str) -> Value {
    let (verdict, unmet) = match outcome.verdict() {
        Verdict::Passed => ("passed", 0),
        Verdict::Unmet(n) => ("unmet", n),
        Verdict::Violation => ("violation", 0),
        Verdict::Failed => ("failed", 0),
    };
    let judged: Vec<Value> = outcome
        .judged
        .iter()
        .map(|j| {
            json!({
                "t_ms": j.t_ms,
                "line": j.line,
                "met": j.met,
                "expected": j.expected,
                "saw": j.saw,
            })
        })
        .collect();
    let violation = outcome.violation.as_ref().map(|v| {
        json!({
            "invariant": v.invariant,
            "t_ms": v.t_ms,
            "what": v.what,
            "evidence": v.evidence,
        })
    });
    json!({
        "file": file,
        "name": scenario.name,
        "seed": outcome.seed,
        "warnings": scenario.warnings,
        "verdict": verdict,
        "passed": outcome.passed(),
        "unmet": unmet,
        "judged": judged,
        "violation": violation,
        "failure": outcome.failure.as_ref().map(|f| json!({
            "kind": f.kind(),
            "message": f.to_string(),
        })),
        "replay": replay,
    })
}

/// A file that was refused, with each of its problems.
pub fn refused_json(file: &str, errors: &ScenarioErrors) -> Value {
    let problems: Vec<Value> = errors.all().iter().map(problem_json).collect();
    json!({ "file": file, "errors": problems })
}

fn problem_json(error: &ScenarioError) -> Value {
    match error {
        ScenarioError::At(problem) => json!({
            "line": problem.at.line,
            "column": problem.at.column,
            "key": problem.key,
            "problem": problem.problem,
            "message": error.to_string(),
        }),
        ScenarioError::File { problem, .. } | ScenarioError::Whole { problem, .. } => json!({
            "line": null,
            "column": null,
            "key": null,
            "problem": problem,
            "message": error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HarnessError;

    #[test]
    fn a_harness_failure_is_failed_with_its_kind_not_a_violation() {
        let text = "name = \"n\"\nstory = \"s\"\n[license]\ntext = \"\"\"\nFEATURE cad\n{\n  VENDOR = v\n  COUNT = 1\n  HAL_SERVERS = 3\n}\n\"\"\"\n";
        let scenario = super::super::parse("t.toml", text, std::path::Path::new("."))
            .expect("a valid scenario");
        let outcome = Outcome {
            seed: 3,
            history: Vec::new(),
            violation: None,
            failure: Some(HarnessError::NoEffect(
                crate::effects::NoEffect::CutCrossed {
                    from: hal_core::ServerId::PRIMARY,
                    to: hal_core::ServerId::SECONDARY,
                    start: 1_000,
                    end: 2_000,
                    through: 1,
                    sent: 19,
                    first_sent: 1_200,
                },
            )),
            judged: Vec::new(),
            journals: Vec::new(),
            disks: Default::default(),
        };
        let json = run_json("t.toml", &scenario, &outcome, "hal-sim run t.toml --seed 3");
        assert_eq!(json["verdict"], "failed");
        assert_eq!(json["violation"], Value::Null);
        assert_eq!(json["failure"]["kind"], "no_effect");
        assert_eq!(
            json["failure"]["message"],
            "harness: the cut of #1→#2 from 1000 ms to 2000 ms let 1 of 19 probes through (the first sent at 1200 ms)"
        );
    }
}
