//! The chart taken from small histories, and the page's escaping.

use hal_core::record::{Entry, Record};

use super::chart::{Bar, Chart, MARKS_PER_LANE_MAX};
use super::page;
use crate::check::Violation;

const META: &str = r#"{"kind":"meta","schema":2,"seed":7,"features":{"cad":{"count":2,"hal":true}},"lease_ms":10000,"election_timeout_ms":1000,"failover_delay_ms":500,"failback_hold_ms":10000,"max_clock_skew_ms":100}"#;

fn records(lines: &[&str]) -> Vec<Record> {
    lines
        .iter()
        .map(|line| {
            serde_json::from_str::<Entry>(line)
                .map(|e| e.record)
                .unwrap_or_else(|e| panic!("{line}: {e}"))
        })
        .collect()
}

fn chart(lines: &[&str]) -> Chart {
    let mut all = vec![META];
    all.extend_from_slice(lines);
    Chart::new(&records(&all), None)
}

/// A bar as (from, to, kind).
type Span<'a> = (u64, u64, &'a str);

fn spans(bars: &[Bar]) -> Vec<Span<'_>> {
    bars.iter().map(|b| (b.from_ms, b.to_ms, b.kind)).collect()
}

#[test]
fn a_server_lane_has_a_band_per_role_until_the_next() {
    let chart = chart(&[
        r#"{"kind":"role","t_ms":100,"server":1,"role":"active","term":1}"#,
        r#"{"kind":"role","t_ms":5000,"server":1,"role":"down","term":0}"#,
        r#"{"kind":"role","t_ms":6500,"server":2,"role":"active","term":2}"#,
        r#"{"kind":"end","t_ms":9000}"#,
    ]);
    assert_eq!(chart.title, "seed 7");
    assert_eq!(chart.end_ms, 9000);
    assert_eq!(
        spans(&chart.servers[0].bars),
        [
            (0, 100, "standby"),
            (100, 5000, "active"),
            (5000, 9000, "down")
        ]
    );
    // Every server starts as a standby, until its first role record.
    assert_eq!(
        spans(&chart.servers[1].bars),
        [(0, 6500, "standby"), (6500, 9000, "active")]
    );
    assert_eq!(chart.servers[1].bars[0].label, "starting");
    assert_eq!(chart.servers[1].bars[1].label, "active (term 2)");
    assert_eq!(spans(&chart.servers[2].bars), [(0, 9000, "standby")]);
}

/// A restarted server runs as a standby until a role record says otherwise (the
/// history writes none for its start); a stopped one is down until then.
#[test]
fn a_server_stopped_or_crashed_is_down_until_its_restart_then_a_standby() {
    let chart = chart(&[
        r#"{"kind":"role","t_ms":100,"server":1,"role":"active","term":1}"#,
        r#"{"kind":"fault","t_ms":5000,"fault":"stop","a":[3],"b":[]}"#,
        r#"{"kind":"role","t_ms":5000,"server":3,"role":"down","term":0}"#,
        r#"{"kind":"fault","t_ms":8000,"fault":"restart","a":[3],"b":[]}"#,
        r#"{"kind":"role","t_ms":9000,"server":1,"role":"down","term":0}"#,
        r#"{"kind":"role","t_ms":10500,"server":3,"role":"standby","term":2}"#,
        r#"{"kind":"end","t_ms":12000}"#,
    ]);
    assert_eq!(
        spans(&chart.servers[2].bars),
        [
            (0, 5000, "standby"),
            (5000, 8000, "down"),
            (8000, 10500, "standby"),
            (10500, 12000, "standby")
        ]
    );
    assert_eq!(chart.servers[2].bars[2].label, "restarted");
    // A restart of a server that runs (no down band) changes nothing of its band.
    assert_eq!(
        spans(&chart.servers[0].bars),
        [
            (0, 100, "standby"),
            (100, 9000, "active"),
            (9000, 12000, "down")
        ]
    );
    let stop_row = chart.faults.iter().find(|row| row.name == "stop #3");
    assert_eq!(
        stop_row.map(|row| spans(&row.bars)),
        Some(vec![(5000, 8000, "crash")])
    );
}

#[test]
fn a_fault_is_a_bar_from_its_start_to_its_repair_in_its_own_row() {
    let chart = chart(&[
        r#"{"kind":"fault","t_ms":1000,"fault":"partition","a":[1],"b":[2,3]}"#,
        r#"{"kind":"fault","t_ms":1500,"fault":"link","a":[2],"b":[3],"state":"slow","latency_ms":300}"#,
        r#"{"kind":"fault","t_ms":3000,"fault":"repair","a":[1],"b":[2,3]}"#,
        r#"{"kind":"fault","t_ms":4000,"fault":"crash","a":[3],"b":[]}"#,
        r#"{"kind":"fault","t_ms":4000,"fault":"crash","a":[3],"b":[]}"#,
        r#"{"kind":"fault","t_ms":4200,"fault":"link","a":[2],"b":[3],"state":"normal"}"#,
        r#"{"kind":"fault","t_ms":4500,"fault":"clock","a":[2],"b":[],"offset_ms":300,"drift_ppm":0}"#,
        r#"{"kind":"fault","t_ms":6000,"fault":"restart","a":[3],"b":[]}"#,
        r#"{"kind":"end","t_ms":8000}"#,
    ]);
    let rows: Vec<(&str, Vec<Span>)> = chart
        .faults
        .iter()
        .map(|row| (row.name.as_str(), spans(&row.bars)))
        .collect();
    assert_eq!(
        rows,
        [
            ("cut #1 | #2 #3", vec![(1000, 3000, "cut")]),
            ("slow #2 | #3", vec![(1500, 4200, "slow")]),
            ("crash #3", vec![(4000, 6000, "crash")]),
            ("clock #2", vec![(4500, 8000, "clock")]),
        ]
    );
    assert_eq!(
        chart.faults[1].bars[0].label,
        "link #2 | #3 slow latency=300 ms"
    );
}

const GRANTED: &str = r#"{"kind":"client","t_ms":210,"client":"c4","event":"granted","req":12,"feature":"cad","handle":"h1","server":1,"attempts":2}"#;

#[test]
fn a_client_lane_has_its_seat_as_a_bar_and_its_sends_as_marks() {
    let chart = chart(&[
        r#"{"kind":"request","t_ms":100,"client":"c4","req":12,"op":"checkout","server":2,"feature":"cad"}"#,
        r#"{"kind":"reply","t_ms":102,"client":"c4","req":12,"server":2,"result":"denied","reason":"not_active"}"#,
        r#"{"kind":"request","t_ms":103,"client":"c4","req":12,"op":"checkout","server":1,"feature":"cad"}"#,
        r#"{"kind":"reply","t_ms":200,"client":"c4","req":12,"server":1,"result":"granted","handle":"h1","lease_ms":10000,"granted_by":1}"#,
        GRANTED,
        r#"{"kind":"request","t_ms":3000,"client":"c4","req":13,"op":"heartbeat","server":1}"#,
        r#"{"kind":"request","t_ms":5000,"client":"c4","req":14,"op":"checkin","server":1,"handle":"h1"}"#,
        r#"{"kind":"request","t_ms":6200,"client":"c4","req":14,"op":"checkin","server":2,"handle":"h1"}"#,
        r#"{"kind":"client","t_ms":7000,"client":"c5","event":"denied","req":1,"reason":"all_in_use","attempts":1}"#,
        r#"{"kind":"end","t_ms":8000}"#,
    ]);
    let names: Vec<&str> = chart.clients.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["c4", "c5"]);
    let c4 = &chart.clients[0];
    assert_eq!(spans(&c4.bars), [(210, 5000, "seat")]);
    assert_eq!(
        c4.bars[0].label,
        "h1 cad granted by #1 (request 12, 2 sends)"
    );
    let marks: Vec<(u64, &str)> = c4.marks.iter().map(|m| (m.t_ms, m.kind)).collect();
    assert_eq!(
        marks,
        [
            (100, "request"),
            (103, "redirect"),
            (5000, "request"),
            (6200, "retry")
        ]
    );
    assert_eq!(c4.marks[1].label, "c4 checkout 12 redirected by #2 to #1");
    assert_eq!(chart.clients[1].marks[0].kind, "denied");
    // The tooltip's record is the typed record, as JSON.
    let r = c4.marks[1].r.unwrap_or(usize::MAX);
    assert!(
        chart.records[r].contains(r#""server":1"#),
        "{}",
        chart.records[r]
    );
    assert!(
        chart
            .notes
            .iter()
            .any(|n| n.starts_with("1 heartbeats are not drawn"))
    );
}

#[test]
fn seats_in_use_step_up_at_a_grant_and_down_at_the_checkin() {
    let chart = chart(&[
        r#"{"kind":"request","t_ms":100,"client":"c4","req":12,"op":"checkout","server":1,"feature":"cad"}"#,
        r#"{"kind":"reply","t_ms":200,"client":"c4","req":12,"server":1,"result":"granted","handle":"h1","lease_ms":10000,"granted_by":1}"#,
        GRANTED,
        r#"{"kind":"request","t_ms":5000,"client":"c4","req":14,"op":"checkin","server":1,"handle":"h1"}"#,
        r#"{"kind":"end","t_ms":8000}"#,
    ]);
    let seats = &chart.seats[0];
    assert_eq!((seats.feature.as_str(), seats.count), ("cad", 2));
    assert_eq!(seats.steps, [(0, 0), (210, 1), (5000, 0)]);
}

#[test]
fn expectations_are_marks_met_or_not_and_the_violation_is_kept() {
    let lines = [
        META,
        r##"{"kind":"expect","t_ms":3000,"line":12,"met":true,"expected":"active #1","saw":"#1"}"##,
        r#"{"kind":"expect","t_ms":4000,"line":20,"met":false,"expected":"granted by #2","saw":"denied"}"#,
    ];
    let violation = Violation {
        invariant: "1 no overuse",
        t_ms: 3500,
        what: "3 seats of cad held at once; COUNT is 2".to_string(),
        evidence: vec!["{}".to_string()],
    };
    let chart = Chart::new(&records(&lines), Some(&violation));
    let marks: Vec<(&str, &str)> = chart
        .expects
        .marks
        .iter()
        .map(|m| (m.kind, m.label.as_str()))
        .collect();
    assert_eq!(
        marks,
        [
            ("met", "met: line 12: active #1 — #1"),
            ("unmet", "NOT MET: line 20: granted by #2 — denied")
        ]
    );
    let shown = chart
        .violation
        .as_ref()
        .map(|v| (v.t_ms, v.invariant.as_str()));
    assert_eq!(shown, Some((3500, "1 no overuse")));
}

#[test]
fn a_lane_keeps_at_most_its_limit_of_marks_and_says_so() {
    let lines: Vec<String> = (0..MARKS_PER_LANE_MAX as u64 + 5)
        .map(|i| {
            format!(
                r#"{{"kind":"client","t_ms":{i},"client":"c1","event":"denied","req":{i},"reason":"all_in_use","attempts":1}}"#
            )
        })
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let chart = chart(&lines);
    assert_eq!(chart.clients[0].marks.len(), MARKS_PER_LANE_MAX);
    assert_eq!(chart.clients[0].dropped, 5);
    assert_eq!(
        chart.records.len(),
        MARKS_PER_LANE_MAX,
        "no record kept for a dropped mark"
    );
    assert!(
        chart.notes.iter().any(|n| n.starts_with("lane c1: 5 more")),
        "{:?}",
        chart.notes
    );
}

#[test]
fn many_clients_share_a_lane_per_group_and_a_restarted_one_its_first_lane() {
    let mut lines = Vec::new();
    for i in 0..50 {
        lines.push(format!(
            r#"{{"kind":"client","t_ms":1,"client":"eng{i}","event":"frozen","handle":null}}"#
        ));
    }
    lines.push(
        r#"{"kind":"client","t_ms":2,"client":"eng3.1","event":"thawed","handle":null}"#
            .to_string(),
    );
    lines.push(
        r#"{"kind":"client","t_ms":2,"client":"maria","event":"thawed","handle":null}"#.to_string(),
    );
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let grouped = chart(&lines);
    let names: Vec<&str> = grouped.clients.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["eng", "maria"]);
    assert_eq!(grouped.clients[0].marks.len(), 51);

    let few = chart(&[
        r#"{"kind":"client","t_ms":1,"client":"c4","event":"frozen","handle":null}"#,
        r#"{"kind":"client","t_ms":2,"client":"c4.1","event":"thawed","handle":null}"#,
    ]);
    let names: Vec<&str> = few.clients.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["c4"]);
}

/// A client named to break out of the page: its name must reach the page as data only.
const EVIL: &str = r#"</script><script>alert(1)</script><!--"#;

#[test]
fn record_text_cannot_close_the_data_element_or_add_markup() {
    let name = serde_json::to_string(EVIL).unwrap_or_default();
    let scenario = serde_json::to_string("<b>&'\"").unwrap_or_default();
    let lines = [
        META.replace(r#""seed":7"#, &format!(r#""seed":7,"scenario":{scenario}"#)),
        format!(
            r#"{{"kind":"client","t_ms":10,"client":{name},"event":"denied","req":1,"reason":"all_in_use","attempts":1}}"#
        ),
    ];
    let html = page(&lines, None, Some("<img src=x onerror=alert(2)>"));
    // Our own two script elements, and nothing else that opens or closes one.
    assert_eq!(html.matches("<script").count(), 2, "{html}");
    assert_eq!(html.matches("</script>").count(), 2, "{html}");
    assert!(!html.contains("<!--"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(html.contains("<title>&lt;b&gt;&amp;&#39;&quot; (seed 7) — HAL timeline</title>"));
    // The data still holds the name, escaped as JSON.
    assert!(html.contains(r#"\u003c/script>\u003cscript>alert(1)\u003c/script>\u003c!--"#));
}

#[test]
fn the_data_read_back_gives_the_name_as_it_was() {
    let name = serde_json::to_string(EVIL).unwrap_or_default();
    let lines = [
        META.to_string(),
        format!(r#"{{"kind":"client","t_ms":10,"client":{name},"event":"frozen","handle":null}}"#),
    ];
    let html = page(&lines, None, None);
    let start = html
        .find(r#"<script type="application/json" id="data">"#)
        .unwrap_or(0);
    let data = &html[start..];
    let data = &data[data.find('>').unwrap_or(0) + 1..data.find("</script>").unwrap_or(0)];
    let value: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    assert_eq!(value["clients"][0]["name"], EVIL);
}

#[test]
fn a_line_that_is_no_record_is_noted_not_drawn() {
    let html = page(&[META.to_string(), "{oops".to_string()], None, None);
    assert!(html.contains("1 lines are not history records"), "{html}");
}

#[test]
fn a_long_run_gives_a_bounded_page_with_what_it_left_out() {
    let mut lines = vec![META.to_string()];
    for i in 0..100_000u64 {
        let client = i % 5;
        lines.push(format!(
            r#"{{"kind":"client","t_ms":{i},"client":"c{client}","event":"denied","req":{i},"reason":"all_in_use","attempts":1}}"#
        ));
        lines.push(format!(
            r#"{{"kind":"request","t_ms":{i},"client":"c{client}","req":{i},"op":"heartbeat","server":1}}"#
        ));
    }
    let html = page(&lines, None, None);
    assert!(html.len() < 4_000_000, "{} bytes", html.len());
    assert!(html.contains("100000 heartbeats are not drawn"));
    assert!(html.contains("lane c0: 18000 more bars or marks not drawn"));
}
