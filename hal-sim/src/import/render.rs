//! The imported scenario as text: a header and a story that sum up the journals, then
//! the scenario writer's steps and checks, each after comments that say what the field's
//! journals showed.

use std::fmt::Write as _;
use std::time::Duration;

use super::field::Field;
use super::time::{rfc3339, secs};
use super::timing::Timers;
use super::window::Window;
use super::{LicenseFile, Noted, ms, roles};
use crate::scenario::{
    Action, Check, ClientGroup, Step, block, duration, quoted, signed, write_check, write_step,
};

/// A message's least time between two machines of a LAN (the scenario format's default).
pub const LAN_LATENCY: Duration = Duration::from_micros(200);

/// Comment lines are wrapped at this width.
const COMMENT_WIDTH: usize = 92;

/// Everything the file says.
#[derive(Debug)]
pub struct Plan {
    pub header: Vec<String>,
    pub name: String,
    pub story: String,
    pub duration_ms: u64,
    pub license: LicenseFile,
    pub timers: Timers,
    /// `[network]` latency and jitter (none: the requests keep the field's order).
    pub network: (Duration, Duration),
    /// Each server's clock offset at the start (ms; 0: none), and why.
    pub offsets: [(i64, Vec<String>); 3],
    pub clients: Vec<Noted<ClientGroup>>,
    pub steps: Vec<Noted<Step>>,
    pub checks: Vec<Noted<Check>>,
    /// What could not be replayed.
    pub notes: Vec<String>,
}

/// `notes` as `#` comment lines, wrapped.
fn comment(out: &mut String, notes: &[String]) {
    for note in notes {
        let mut line = String::from("#");
        for word in note.split(' ') {
            if line.len() + 1 + word.len() > COMMENT_WIDTH && line.len() > 3 {
                let _ = writeln!(out, "{line}");
                // A continuation is indented: `#  `.
                line = String::from("# ");
            }
            line.push(' ');
            line.push_str(word);
        }
        let _ = writeln!(out, "{line}");
    }
}

impl Plan {
    pub fn render(&self) -> String {
        let mut out = String::new();
        comment(&mut out, &self.header);
        if !self.notes.is_empty() {
            out.push_str("#\n# What the replay does not show as it was:\n");
            let notes: Vec<String> = self.notes.iter().map(|n| format!("- {n}")).collect();
            comment(&mut out, &notes);
        }
        let _ = writeln!(out, "\nname = {}", quoted(&self.name));
        let _ = writeln!(out, "story = {}", block(&self.story));
        let _ = writeln!(
            out,
            "duration = {}",
            duration(Duration::from_millis(self.duration_ms))
        );
        let _ = writeln!(out, "\n[license]\n# {}", super::clean(&self.license.name));
        let _ = writeln!(out, "text = {}", block(&self.license.text));
        self.timing(&mut out);
        let (latency, jitter) = self.network;
        let _ = writeln!(
            out,
            "\n[network]\n# no jitter: the requests reach the servers in the order the field's received them\nlatency = {}\njitter = {}",
            duration(latency),
            duration(jitter)
        );
        for (i, (offset, notes)) in self.offsets.iter().enumerate() {
            if *offset != 0 {
                let _ = writeln!(out, "\n[servers.{}]", i + 1);
                comment(&mut out, notes);
                let _ = writeln!(out, "clock_offset = {}", signed(*offset));
            }
        }
        for client in &self.clients {
            out.push('\n');
            comment(&mut out, &client.notes);
            let _ = writeln!(out, "[[clients]]\nname = {}", quoted(&client.item.name));
        }
        for step in &self.steps {
            out.push('\n');
            comment(&mut out, &step.notes);
            write_step(&mut out, &step.item);
        }
        for check in &self.checks {
            out.push('\n');
            comment(&mut out, &check.notes);
            write_check(&mut out, &check.item);
        }
        out
    }

    fn timing(&self, out: &mut String) {
        let _ = writeln!(out, "\n[timing]");
        comment(
            out,
            &["the servers' timers, from their journals' meta records".to_string()],
        );
        comment(out, &self.timers.notes);
        let _ = writeln!(out, "profile = \"{}\"", self.timers.profile.name());
        for (key, value) in &self.timers.overrides {
            let _ = writeln!(out, "{key} = {}", duration(*value));
        }
    }
}

/// The file's header comment.
pub fn header(field: &Field, window: &Window, actives: &[u8]) -> Vec<String> {
    let mut lines = vec!["Written by `hal-sim import` from the journals of:".to_string()];
    for (server, source) in &field.sources {
        lines.push(format!("  #{server}: {}", source.display()));
    }
    lines.push(format!(
        "The window: {} to {}, on {}.",
        rfc3339(window.from_ms),
        rfc3339(window.to_ms),
        field.clocks.reference
    ));
    if window.cold() {
        lines.push("Simulated 0 s is the window's start, when the servers started.".into());
    } else {
        lines.push(format!(
            "The triad ran when the window opens: a lead-in of {} starts the simulated triad in the field's state (servers down, links cut, seats held), and the window starts at {}.",
            secs(window.lead_ms),
            secs(window.lead_ms)
        ));
    }
    lines.push(format!(
        "The field's active servers, in order: {}. A run replays them: `hal-sim run FILE --history run.jsonl`, or `hal-sim import --verify`.",
        roles::show(actives)
    ));
    lines
}

/// The story: what the journals show, in a few lines.
pub fn story(
    field: &Field,
    window: &Window,
    actives: &[u8],
    steps: &[Noted<crate::scenario::Step>],
) -> String {
    let servers: Vec<String> = field.servers().map(|s| format!("#{s}")).collect();
    let mut story = format!(
        "Imported from the journals of {} from {} to {}.\nActive servers, in order: {}.\n",
        servers.join(", "),
        rfc3339(window.from_ms),
        rfc3339(window.to_ms),
        roles::show(actives)
    );
    let faults: Vec<&Noted<crate::scenario::Step>> = steps
        .iter()
        .filter(|s| matches!(s.item.action, Action::Server { .. }))
        .collect();
    const SHOWN_MAX: usize = 20;
    for step in faults.iter().take(SHOWN_MAX) {
        if let Some(first) = step.notes.first() {
            story.push_str(&format!("At {}: {first}.\n", secs(ms(step.item.at))));
        }
    }
    if faults.len() > SHOWN_MAX {
        story.push_str(&format!(
            "... and {} more faults.\n",
            faults.len() - SHOWN_MAX
        ));
    }
    story
}
