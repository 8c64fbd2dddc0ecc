//! A scenario as a file, in the format [`super::load`] reads: how a shrunk failing
//! schedule is saved (`hal-sim sweep --shrink` writes `failing-SEED.toml`). The writers of
//! one step and one check are shared with the journal importer (`crate::import`), which
//! puts its own comments between them.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Action, Answer, Check, LivenessFrom, Scenario, ServerSpec, Step, Window};

/// A duration as the loader reads it, quoted: `"1m 30s"`.
pub(crate) fn duration(d: Duration) -> String {
    format!("\"{}\"", humantime::format_duration(d))
}

/// A signed duration in ms, quoted: `"-1m 30s"`.
pub(crate) fn signed(ms: i64) -> String {
    let d = humantime::format_duration(Duration::from_millis(ms.unsigned_abs()));
    if ms < 0 {
        format!("\"-{d}\"")
    } else {
        format!("\"{d}\"")
    }
}

/// `text` as a TOML string in double quotes.
pub(crate) fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// A multi-line literal string, or a quoted one if the text holds `'''`.
pub(crate) fn block(text: &str) -> String {
    if text.contains("'''") {
        quoted(text)
    } else {
        format!(
            "'''\n{}'''",
            if text.ends_with('\n') {
                text.to_string()
            } else {
                format!("{text}\n")
            }
        )
    }
}

/// `scenario` as the text of a scenario file.
pub fn write(scenario: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name = {}", quoted(&scenario.name));
    let _ = writeln!(out, "story = {}", block(&scenario.story));
    if let Some(seed) = scenario.seed {
        let _ = writeln!(out, "seed = {seed}");
    }
    if scenario.duration_given {
        let _ = writeln!(out, "duration = {}", duration(scenario.duration));
    }
    if let Some(at) = scenario.audit {
        let _ = writeln!(out, "audit = {}", duration(at));
    }
    if scenario.aim_crashes {
        out.push_str("aim_crashes = true\n");
    }
    match scenario.liveness {
        LivenessFrom::Auto => {}
        LivenessFrom::Never => out.push_str("liveness_from = \"never\"\n"),
        LivenessFrom::At(at) => {
            let _ = writeln!(out, "liveness_from = {}", duration(at));
        }
    }
    let _ = writeln!(out, "\n[license]\ntext = {}", block(&scenario.license_text));
    let _ = writeln!(out, "\n[timing]\nprofile = \"{}\"", scenario.profile.name());
    for (key, value) in &scenario.timing_overrides {
        let _ = writeln!(out, "{key} = {}", duration(*value));
    }
    let _ = writeln!(
        out,
        "\n[network]\nlatency = {}\njitter = {}",
        duration(scenario.latency),
        duration(scenario.jitter)
    );
    for (i, spec) in scenario.servers.iter().enumerate() {
        if *spec == ServerSpec::default() {
            continue;
        }
        let _ = writeln!(out, "\n[servers.{}]", i + 1);
        if let Some(hostid) = &spec.hostid {
            let _ = writeln!(out, "hostid = {}", quoted(hostid.as_str()));
        }
        if spec.clock_offset_ms != 0 {
            let _ = writeln!(out, "clock_offset = {}", signed(spec.clock_offset_ms));
        }
        if spec.clock_drift_ppm != 0 {
            let _ = writeln!(out, "clock_drift_ppm = {}", spec.clock_drift_ppm);
        }
        let triad: Vec<String> = spec
            .triad
            .iter()
            .map(|s| format!("\"6200@server{}\"", s.get()))
            .collect();
        let _ = writeln!(out, "triad = [{}]", triad.join(", "));
        let _ = writeln!(out, "sync_time = {}", duration(spec.sync_time));
        if let Some(n) = spec.log_entries_max {
            let _ = writeln!(out, "log_entries_max = {n}");
        }
    }
    for group in &scenario.clients {
        let _ = writeln!(out, "\n[[clients]]\nname = {}", quoted(&group.name));
        if let Some(count) = group.count {
            let _ = writeln!(out, "count = {count}");
        }
        let path: Vec<String> = group.path.iter().map(|s| s.get().to_string()).collect();
        let _ = writeln!(out, "path = [{}]", path.join(", "));
    }
    for step in &scenario.steps {
        out.push('\n');
        write_step(&mut out, step);
    }
    for check in &scenario.checks {
        out.push('\n');
        write_check(&mut out, check);
    }
    out
}

/// One `[[steps]]` table: its header, `at`, the verb and its keys, the expectations.
pub(crate) fn write_step(out: &mut String, step: &Step) {
    let _ = writeln!(out, "[[steps]]\nat = {}", duration(step.at));
    if let Action::Client { who, .. } = &step.action {
        let _ = writeln!(out, "client = {}", quoted(who));
    }
    out.push_str(&super::verbs::write_action(&step.action));
    out.push('\n');
    match &step.expect.answer {
        None => {}
        Some(Answer::Granted(by)) => {
            let _ = writeln!(
                out,
                "granted_by = {}",
                by.map_or("\"any\"".to_string(), |s| s.get().to_string())
            );
        }
        Some(Answer::Denied(reason)) => {
            let _ = writeln!(
                out,
                "denied = {}",
                quoted(reason.as_deref().unwrap_or("any"))
            );
        }
        Some(Answer::Unknown) => {
            let _ = writeln!(out, "unknown = true");
        }
    }
    if let Some(within) = step.expect.within {
        let _ = writeln!(out, "within = {}", duration(within));
    }
    if step.expect.unless_held {
        out.push_str("unless_held = true\n");
    }
    if step.expect.if_held {
        out.push_str("if_held = true\n");
    }
    if let Some(attempts) = step.expect.attempts_max {
        let _ = writeln!(out, "attempts_max = {attempts}");
    }
    if let Some(lost) = step.expect.lost {
        let _ = writeln!(out, "lost = {lost}");
    }
    if let Some(removed) = step.expect.removed {
        let _ = writeln!(out, "removed = {removed}");
    }
    if let Some(pushed) = step.expect.pushed {
        let _ = writeln!(out, "pushed = {pushed}");
    }
    if let Some(refused) = step.expect.refused {
        let _ = writeln!(out, "refused = {refused}");
    }
}

/// One `[[checks]]` table.
pub(crate) fn write_check(out: &mut String, check: &Check) {
    if let Some(window) = &check.window {
        write_window(out, check.at, window);
        return;
    }
    let _ = writeln!(out, "[[checks]]\nat = {}", duration(check.at));
    if let Some(active) = check.active {
        let _ = writeln!(
            out,
            "active = {}",
            active.map_or("\"none\"".to_string(), |s| s.get().to_string())
        );
    }
    if !check.in_use.is_empty() {
        let seats: Vec<String> = check
            .in_use
            .iter()
            .map(|(f, n)| format!("{} = {n}", quoted(f)))
            .collect();
        let _ = writeln!(out, "in_use = {{ {} }}", seats.join(", "));
    }
    if !check.holds.is_empty() {
        let holds: Vec<String> = check
            .holds
            .iter()
            .map(|(c, fs)| {
                let fs: Vec<String> = fs.iter().map(|f| quoted(f)).collect();
                format!("{c} = [{}]", fs.join(", "))
            })
            .collect();
        let _ = writeln!(out, "holds = {{ {} }}", holds.join(", "));
    }
    if !check.holders.is_empty() {
        let holders: Vec<String> = check
            .holders
            .iter()
            .map(|(c, n)| format!("{} = {n}", quoted(c)))
            .collect();
        let _ = writeln!(out, "holders = {{ {} }}", holders.join(", "));
    }
}

/// A `[[checks]]` table over the window from `window.from` to `until`.
fn write_window(out: &mut String, until: Duration, window: &Window) {
    let _ = writeln!(
        out,
        "[[checks]]\nfrom = {}\nuntil = {}",
        duration(window.from),
        duration(until)
    );
    if let Some(n) = window.active_max {
        let _ = writeln!(out, "active_max = {n}");
    }
    if let Some(n) = window.active_changes_max {
        let _ = writeln!(out, "active_changes_max = {n}");
    }
    if let Some(client) = &window.client {
        let _ = writeln!(out, "client = {}", quoted(client));
    }
    if let Some(reasons) = &window.denied_only {
        let reasons: Vec<String> = reasons.iter().map(|r| quoted(r)).collect();
        let _ = writeln!(out, "denied_only = [{}]", reasons.join(", "));
    }
    if let Some(within) = window.answered_within {
        let _ = writeln!(out, "answered_within = {}", duration(within));
    }
}
