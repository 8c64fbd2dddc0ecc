//! A run's history as one self-contained HTML page (`hal-sim run FILE --html OUT`,
//! `replay --html OUT`, `sweep --html-dir DIR`): lanes of the servers' roles, fault
//! bars, seats in use against COUNT, a lane per client with its seats, requests, resends
//! and denials, the expectations and the violation, on a time axis that zooms; hovering a
//! bar or mark shows the history record behind it.
//!
//! The page works offline: its style and script are inline, it loads nothing. [`chart`]
//! takes what to draw from the typed records; this module writes it into the page as JSON
//! in a `<script type="application/json">` element, which the inline script (page.js)
//! draws as SVG. Record text reaches the page only as JSON data that the script puts in
//! the document as text (never as markup), and every `<` in the JSON is written `\u003c`,
//! so no client name or scenario text can close the element or open another.
//!
//! The page's size is bounded by the limits of [`chart`]: heartbeats are not drawn, and
//! marks and bars past a lane's limit are dropped, with a note on the page saying so.

pub mod chart;

use hal_core::record::Entry;

use crate::check::Violation;

pub use chart::Chart;

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The page of a history (JSON lines), the violation the run stopped at and the failure
/// of a run that did not finish, if any. A line that is not a record is left out, with a
/// note.
pub fn page(history: &[String], violation: Option<&Violation>, failure: Option<&str>) -> String {
    let mut records = Vec::with_capacity(history.len());
    let mut unread = 0usize;
    for line in history {
        match serde_json::from_str::<Entry>(line) {
            Ok(entry) => records.push(entry.record),
            Err(_) => unread += 1,
        }
    }
    let mut chart = Chart::new(&records, violation);
    if unread > 0 {
        chart.notes.push(format!(
            "{unread} lines are not history records and are not drawn"
        ));
    }
    if let Some(failure) = failure {
        chart.notes.push(format!("the run failed: {failure}"));
    }
    render(&chart)
}

/// The HTML page that draws `chart`.
pub fn render(chart: &Chart) -> String {
    let data = script_json(chart);
    let title = escape_text(&chart.title);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="hal-sim">
<title>{title} — HAL timeline</title>
<style>
{STYLE}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<div id="controls">
<button id="zoom-in" type="button" title="zoom in (or the mouse wheel)">+</button>
<button id="zoom-out" type="button" title="zoom out">−</button>
<button id="zoom-reset" type="button" title="the whole run">whole run</button>
<span id="window"></span>
</div>
<div id="legend"></div>
</header>
<main id="chart"></main>
<pre id="tooltip" hidden></pre>
<ul id="notes"></ul>
<script type="application/json" id="data">{data}</script>
<script>
{SCRIPT}</script>
</body>
</html>
"#
    )
}

/// `chart` as JSON that cannot end the `<script>` element it stands in: each `<` is
/// written as the JSON escape `\u003c`, which `JSON.parse` reads back as `<` (so neither
/// `</script>` nor `<!--` appears in the element's text).
fn script_json(chart: &Chart) -> String {
    let json = serde_json::to_string(chart).unwrap_or_else(|_| "{}".to_string());
    json.replace('<', "\\u003c")
}

/// Text for HTML element content and attribute values.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
