//! The report as one CSV in long form: `section,feature,subject,metric,value`, one row
//! per figure. One file and one header for every section, with no empty columns, and a
//! header that does not change when a figure is added; a spreadsheet's pivot table or
//! `pandas.pivot` turns a section into a table (`subject` by `metric`).
//!
//! Sections (`subject` in brackets): `window`; `clock` [empty for the reference, which
//! every time counts on; a server's number for its clock's offset from it];
//! `feature`; `user` and `host` [the name];
//! `denial` [the reason]; `borrow` [the seat's handle]; `server` [its number];
//! `failover` and `gap` [1, 2, … in time order]; `triad`; `note` [1, 2, …]. Times are
//! Unix ms on the reference clock, hours decimal. Fields are quoted as RFC 4180 says (lines end with `\n`); a
//! text field that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
//! leading `'`, so that a user or host name chosen by a client cannot run as a
//! spreadsheet formula.

use std::fmt::Display;

use hal_net::report::{ActiveEnd, Ended, FeatureReport, Report, SeenBy, TriadReport, Usage};

/// The header line.
pub const HEADER: &str = "section,feature,subject,metric,value";

/// One field, quoted if it must be, defused if a spreadsheet would run it.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The rows being written.
struct Rows(String);

impl Rows {
    fn row(
        &mut self,
        section: &str,
        feature: &str,
        subject: &str,
        metric: &str,
        value: impl Display,
    ) {
        let value = value.to_string();
        let fields = [section, feature, subject, metric, &value].map(field);
        self.0.push_str(&fields.join(","));
        self.0.push('\n');
    }
}

fn optional(value: Option<u64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn usages(rows: &mut Rows, section: &str, feature: &str, usages: &[Usage]) {
    for u in usages {
        rows.row(section, feature, &u.name, "seats", u.seats);
        rows.row(section, feature, &u.name, "seat_ms", u.seat_ms);
        rows.row(section, feature, &u.name, "seat_hours", u.seat_hours);
        rows.row(section, feature, &u.name, "held_at_end", u.held_at_end);
    }
}

fn ended(ended: Ended) -> &'static str {
    match ended {
        Ended::Released => "released",
        Ended::Returned => "returned",
        Ended::Expired => "expired",
        Ended::Removed => "removed",
        Ended::Held => "held",
    }
}

fn feature(rows: &mut Rows, f: &FeatureReport) {
    let name = f.feature.as_str();
    let mut figure = |metric: &str, value: String| rows.row("feature", name, "", metric, value);
    figure("count", f.count.map(|c| c.to_string()).unwrap_or_default());
    figure("peak_seats", f.peak.seats.to_string());
    figure("peak_first_at_ms", optional(f.peak.first_at_ms));
    figure("checkouts", f.checkouts.to_string());
    figure("borrows", f.borrows.to_string());
    figure("seat_ms", f.seat_ms.to_string());
    figure("seat_hours", f.seat_hours.to_string());
    figure("held_at_end", f.held_at_end.to_string());
    figure("borrow_ms", f.borrow_ms.to_string());
    figure("borrow_hours", f.borrow_hours.to_string());
    figure("denied_requests", f.denied_requests.to_string());
    usages(rows, "user", name, &f.by_user);
    usages(rows, "host", name, &f.by_host);
    for (reason, requests) in &f.denials {
        rows.row("denial", name, reason, "requests", requests);
    }
    for b in &f.borrowed {
        let h = b.handle.as_str();
        rows.row("borrow", name, h, "client", &b.client);
        rows.row("borrow", name, h, "user", &b.user);
        rows.row("borrow", name, h, "host", &b.host);
        rows.row("borrow", name, h, "start_ms", b.start_ms);
        rows.row("borrow", name, h, "end_ms", b.end_ms);
        rows.row(
            "borrow",
            name,
            h,
            "borrow_end_ms",
            optional(b.planned_end_ms),
        );
        rows.row("borrow", name, h, "ended", ended(b.ended));
        rows.row("borrow", name, h, "ms", b.ms);
        rows.row("borrow", name, h, "hours", b.hours);
    }
}

fn triad(rows: &mut Rows, t: &TriadReport) {
    for s in &t.servers {
        let n = s.server.to_string();
        rows.row("server", "", &n, "starts", s.starts);
        rows.row("server", "", &n, "stops", s.stops);
        rows.row("server", "", &n, "kills", s.kills);
        rows.row("server", "", &n, "active_ms", s.active_ms);
    }
    rows.row("triad", "", "", "failovers", t.failovers);
    rows.row("triad", "", "", "no_active_ms", t.no_active_ms);
    for (i, c) in t.changes.iter().enumerate() {
        let n = (i + 1).to_string();
        rows.row("failover", "", &n, "at_ms", c.at_ms);
        rows.row("failover", "", &n, "from_server", c.from_server);
        rows.row("failover", "", &n, "to_server", c.to_server);
        rows.row("failover", "", &n, "gap_ms", c.gap_ms);
    }
    for (i, g) in t.gaps.iter().enumerate() {
        let n = (i + 1).to_string();
        let cause = match g.cause {
            ActiveEnd::Standby => "standby",
            ActiveEnd::Stop => "stop",
            ActiveEnd::Killed => "killed",
        };
        let seen_by = match g.seen_by {
            SeenBy::Role => "role",
            SeenBy::Stop => "stop",
            SeenBy::PeerLinkDown => "peer_link_down",
            SeenBy::LastRecord => "last_record",
        };
        rows.row("gap", "", &n, "from_ms", g.from_ms);
        rows.row("gap", "", &n, "to_ms", g.to_ms);
        rows.row("gap", "", &n, "ms", g.ms);
        rows.row("gap", "", &n, "after_server", g.after_server);
        rows.row("gap", "", &n, "cause", cause);
        rows.row("gap", "", &n, "seen_by", seen_by);
        rows.row("gap", "", &n, "open", g.open);
    }
}

/// The report as CSV, header first (lines end with `\n`; readers take it as RFC 4180's
/// CRLF).
pub fn render(report: &Report) -> String {
    let mut rows = Rows(format!("{HEADER}\n"));
    let w = &report.window;
    rows.row("window", "", "", "from_ms", w.from_ms);
    rows.row("window", "", "", "to_ms", w.to_ms);
    rows.row("window", "", "", "journals_from_ms", w.journals_from_ms);
    rows.row("window", "", "", "journals_to_ms", w.journals_to_ms);
    rows.row("clock", "", "", "reference", &report.clock.reference);
    for offset in &report.clock.offsets {
        let server = offset.server.to_string();
        let offset_ms = offset.offset_ms.map(|o| o.to_string()).unwrap_or_default();
        rows.row("clock", "", &server, "offset_ms", offset_ms);
    }
    for f in &report.features {
        feature(&mut rows, f);
    }
    triad(&mut rows, &report.triad);
    for (i, note) in report.notes.iter().enumerate() {
        rows.row("note", "", &(i + 1).to_string(), "text", note);
    }
    rows.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("alice"), "alice");
        assert_eq!(field("smith, j"), "\"smith, j\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@host"), "'@host");
        assert_eq!(field("3.25"), "3.25");
    }
}
