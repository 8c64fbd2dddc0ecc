//! The report as text for a terminal: a heading per feature with its figures and its
//! tables (users, hosts, borrows), the triad's servers, failovers and gaps, then the
//! notes. Times are RFC 3339 UTC on the reference clock, which the first lines name with
//! each server's offset from it; names are shown with control characters escaped.

use std::fmt::Write;

use hal_net::report::{ActiveEnd, Clock, Ended, FeatureReport, Report, SeenBy, TriadReport, Usage};

use crate::status_cmd::{format_wall, shown};

/// A duration for people: `850 ms`, `4.2 s`, `12m 5s`, `3h 20m 5s`.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", f64::from(u32::try_from(ms).unwrap_or(0)) / 1e3),
        _ => humantime::format_duration(std::time::Duration::from_secs(ms / 1_000)).to_string(),
    }
}

/// `1 gap`, `2 gaps`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Columns padded to their widest cell, two spaces apart; `right` columns right-aligned.
fn table(out: &mut String, headers: &[&str], right: &[bool], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from("  ");
        for (i, cell) in cells.enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str("  ");
            if right.get(i) == Some(&true) {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &mut headers.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

fn usage_rows(usages: &[Usage]) -> Vec<Vec<String>> {
    usages
        .iter()
        .map(|u| {
            vec![
                shown(&u.name).into_owned(),
                u.seats.to_string(),
                format!("{:.3}", u.seat_hours),
                u.held_at_end.to_string(),
            ]
        })
        .collect()
}

fn ended(ended: Ended) -> &'static str {
    match ended {
        Ended::Released => "released",
        Ended::Returned => "returned",
        Ended::Expired => "expired",
        Ended::Removed => "removed by an administrator",
        Ended::Held => "still held",
    }
}

fn feature(out: &mut String, f: &FeatureReport) {
    let count = f
        .count
        .map(|c| format!(" ({c} seats licensed)"))
        .unwrap_or_default();
    let _ = writeln!(out, "\nFeature {}{count}", shown(&f.feature));
    let peak = match f.peak.first_at_ms {
        Some(at) => format!("{} seats, first at {}", f.peak.seats, format_wall(at)),
        None => "no seat in use".to_string(),
    };
    let _ = writeln!(out, "  peak in use    {peak}");
    let _ = writeln!(
        out,
        "  granted        {} checkouts, {} borrows",
        f.checkouts, f.borrows
    );
    let held = match f.held_at_end {
        0 => String::new(),
        n => format!(" ({n} still held at the window's end, counted up to it)"),
    };
    let _ = writeln!(out, "  seat-hours     {:.3}{held}", f.seat_hours);
    let reasons: Vec<String> = f.denials.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let denied = match f.denied_requests {
        0 => "none".to_string(),
        n => format!("{n} requests: {}", reasons.join(", ")),
    };
    let _ = writeln!(out, "  denied         {denied}");
    let right = [false, true, true, true];
    if !f.by_user.is_empty() {
        out.push('\n');
        let headers = ["user", "seats", "seat-hours", "held at end"];
        table(out, &headers, &right, &usage_rows(&f.by_user));
        out.push('\n');
        let headers = ["host", "seats", "seat-hours", "held at end"];
        table(out, &headers, &right, &usage_rows(&f.by_host));
    }
    if !f.borrowed.is_empty() {
        let _ = writeln!(
            out,
            "\n  borrowed seats: {}, {:.3} hours",
            f.borrowed.len(),
            f.borrow_hours
        );
        let rows: Vec<Vec<String>> = f
            .borrowed
            .iter()
            .map(|b| {
                vec![
                    b.handle.clone(),
                    shown(&b.user).into_owned(),
                    shown(&b.host).into_owned(),
                    format_wall(b.start_ms),
                    format_wall(b.end_ms),
                    ended(b.ended).to_string(),
                    format!("{:.3}", b.hours),
                ]
            })
            .collect();
        let headers = ["seat", "user", "host", "from", "to", "ended", "hours"];
        let right = [false, false, false, false, false, false, true];
        table(out, &headers, &right, &rows);
    }
}

fn cause(gap: &hal_net::report::Gap) -> String {
    let how = match gap.cause {
        ActiveEnd::Standby => "went standby",
        ActiveEnd::Stop => "stopped",
        ActiveEnd::Killed => "killed (no stop record)",
    };
    let seen = match gap.seen_by {
        SeenBy::PeerLinkDown => ", dated by a peer's link going down",
        SeenBy::LastRecord => ", dated by its last record",
        SeenBy::Role | SeenBy::Stop => "",
    };
    let open = if gap.open {
        "; none active at the window's end"
    } else {
        ""
    };
    format!("#{} {how}{seen}{open}", gap.after_server)
}

fn triad(out: &mut String, t: &TriadReport) {
    out.push_str("\nTriad\n");
    let rows: Vec<Vec<String>> = t
        .servers
        .iter()
        .map(|s| {
            vec![
                format!("#{}", s.server),
                s.starts.to_string(),
                s.stops.to_string(),
                s.kills.to_string(),
                duration(s.active_ms),
            ]
        })
        .collect();
    let headers = ["server", "starts", "stops", "kills", "active"];
    table(out, &headers, &[false, true, true, true, true], &rows);
    let _ = writeln!(out, "\n  failovers      {}", t.failovers);
    for change in &t.changes {
        let _ = writeln!(
            out,
            "    {}  #{} -> #{} after {} without an active server",
            format_wall(change.at_ms),
            change.from_server,
            change.to_server,
            duration(change.gap_ms)
        );
    }
    let _ = writeln!(
        out,
        "  no active      {} in {}",
        duration(t.no_active_ms),
        plural(t.gaps.len(), "gap")
    );
    for gap in &t.gaps {
        let _ = writeln!(
            out,
            "    {} to {}  {}  {}",
            format_wall(gap.from_ms),
            format_wall(gap.to_ms),
            duration(gap.ms),
            cause(gap)
        );
    }
}

/// Which clock the times are on, and each server's clock against it.
fn clock(out: &mut String, clock: &Clock) {
    let _ = writeln!(out, "Times on {}", clock.reference);
    for offset in &clock.offsets {
        if let Some(offset_ms) = offset.offset_ms {
            let _ = writeln!(
                out,
                "  #{}'s clock: {offset_ms:+} ms from it",
                offset.server
            );
        }
    }
}

/// The report as text.
pub fn render(report: &Report) -> String {
    let w = &report.window;
    let servers: Vec<String> = report
        .servers_read
        .iter()
        .map(|s| format!("#{s}"))
        .collect();
    let mut out = format!(
        "Usage from {} to {} ({}), journals of {} {}\n",
        format_wall(w.from_ms),
        format_wall(w.to_ms),
        duration(w.to_ms.saturating_sub(w.from_ms)),
        if servers.len() == 1 {
            "server"
        } else {
            "servers"
        },
        servers.join(", ")
    );
    clock(&mut out, &report.clock);
    for f in &report.features {
        feature(&mut out, f);
    }
    triad(&mut out, &report.triad);
    if !report.notes.is_empty() {
        out.push_str("\nNotes\n");
        for note in &report.notes {
            let _ = writeln!(out, "  - {}", shown(note));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(4_240), "4.2 s");
        assert_eq!(duration(725_000), "12m 5s");
        assert_eq!(duration(12_005_000), "3h 20m 5s");
    }

    #[test]
    fn a_table_pads_its_columns() {
        let mut out = String::new();
        let rows = vec![vec!["alice".to_string(), "12".to_string()]];
        table(&mut out, &["user", "seats"], &[false, true], &rows);
        assert_eq!(out, "    user   seats\n    alice     12\n");
    }
}
