//! `hal-net report`: usage accounting from the servers' journals, what license
//! administrators get from FlexNet's report logs or LM-X License Statistics. It reads
//! the journals ([`hal_net::journal::read`]), computes the report ([`hal_net::report`])
//! and prints it as text (default), one JSON object (`--json`) or one CSV (`--csv`,
//! [`csv`]). Every time, those of `--from` and `--to` included, is on one clock: #1's,
//! or the other two servers' when they agree and #1's does not (the output names it).
//!
//! Exit codes: 0 printed; 1 a journal cannot be read (the error names the file and
//! line); 2 the command line is wrong (a time that does not parse, a window outside the
//! journals, a feature they do not name).

mod csv;
mod text;

use std::io::Write;
use std::path::PathBuf;

use hal_net::journal::time::parse_time;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use hal_net::report::{self, Options, Report, ReportError};

use crate::output::{self, Usage};
use crate::status_cmd::format_wall;
use serde_json::json;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The journals: servers' journal directories (`<data_dir>/journal`), their data
    /// directories, or single journal files; of one, two or all three servers.
    #[arg(required = true, value_name = "JOURNAL")]
    journals: Vec<PathBuf>,
    /// The window's start: RFC 3339 (`2026-12-06T10:00:00Z`, `2026-12-06T11:00:00+01:00`),
    /// a date (`2026-12-06`, midnight UTC) or Unix ms, on the report's reference clock.
    /// Default: the journals' first record.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    from: Option<u64>,
    /// The window's end, as --from. Default: the journals' last record.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    to: Option<u64>,
    /// Only this feature.
    #[arg(long, value_name = "FEATURE")]
    feature: Option<String>,
    /// Print one CSV (`section,feature,subject,metric,value`) instead of text.
    #[arg(long)]
    csv: bool,
}

pub fn run(args: ReportArgs, json: bool) -> Result<ExitCode> {
    if json && args.csv {
        return Err(Usage("--json cannot be used with --csv: choose one".into()).into());
    }
    let journals = hal_net::journal::read::read(&args.journals).context("reading the journals")?;
    let options = Options {
        from_ms: args.from,
        to_ms: args.to,
        feature: args.feature.clone(),
    };
    let report = match report::report(&journals, &options) {
        Ok(report) => report,
        Err(error) => {
            let code = if matches!(error, ReportError::Empty) {
                output::FAILED
            } else {
                output::USAGE
            };
            return Ok(output::fail(json, code, &explain(&error), json!({})));
        }
    };
    let out = if json {
        as_json(&report)?
    } else if args.csv {
        csv::render(&report)
    } else {
        text::render(&report)
    };
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        // `hal-net report ... | head`: the reader had enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        result => {
            result.context("writing the report")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn as_json(report: &Report) -> Result<String> {
    let mut text = serde_json::to_string(report).context("the report as JSON")?;
    text.push('\n');
    Ok(text)
}

/// A report error in the command line's words.
fn explain(error: &ReportError) -> String {
    match error {
        ReportError::WindowInverted { from_ms, to_ms } => format!(
            "--from {} is after --to {}",
            format_wall(*from_ms),
            format_wall(*to_ms)
        ),
        ReportError::WindowOutside {
            from_ms,
            to_ms,
            journals_from_ms,
            journals_to_ms,
        } => {
            let asked: Vec<String> = [("--from", from_ms), ("--to", to_ms)]
                .into_iter()
                .filter_map(|(arg, t)| t.map(|t| format!("{arg} {}", format_wall(t))))
                .collect();
            format!(
                "{}: the window is outside the journals, which run from {} to {}",
                asked.join(" "),
                format_wall(*journals_from_ms),
                format_wall(*journals_to_ms)
            )
        }
        ReportError::UnknownFeature { .. } => format!("--feature: {error}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_dates_or_unix_ms() {
        assert_eq!(parse_time("1765015200000"), Ok(1_765_015_200_000));
        assert_eq!(parse_time("2025-12-06T10:00:00Z"), Ok(1_765_015_200_000));
        assert_eq!(
            parse_time("2025-12-06T11:00:00+01:00"),
            Ok(1_765_015_200_000)
        );
        assert_eq!(
            parse_time("2025-12-06T10:00:00.250Z"),
            Ok(1_765_015_200_250)
        );
        assert_eq!(
            parse_time("2025-12-06"),
            Ok(1_765_015_200_000 - 10 * 3_600_000)
        );
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "99999999999999999999",
            "1969-12-31",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
