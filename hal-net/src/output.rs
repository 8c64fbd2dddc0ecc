//! How every verb prints and exits: text for people, or with `--json` one JSON object on
//! standard output, errors included (`{"error": "...", "exit_code": N, ...}`), and the
//! same exit codes everywhere:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; `status`: a server is active with a majority, and all three are up and linked |
//! | 1 | the operation failed (an invalid file, a refused push, a seat lost while held, ...) |
//! | 2 | a license request was denied (the reason is printed) |
//! | 3 | no license server answered |
//! | 4 | `status`: the triad serves, but degraded (a server down, a link down or refused) |
//! | 5 | `status`: no server is active with a majority: no license is issued |
//! | 64 | the command line is wrong (EX_USAGE) |

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

pub const FAILED: u8 = 1;
pub const DENIED: u8 = 2;
pub const UNREACHABLE: u8 = 3;
// 4 and 5, a degraded and a not serving triad, are `status`'s: `hal_net::triad_view`.
pub const USAGE: u8 = 64;

/// Prints a failure and gives its exit code: `error: MESSAGE` on standard error, or with
/// `json` one object on standard output with `error`, `exit_code` and `fields` (an object;
/// anything else is left out).
pub fn fail(json: bool, code: u8, message: &str, fields: Value) -> ExitCode {
    if json {
        line(&error_object(code, message, fields).to_string());
    } else {
        let mut text = String::new();
        for line in message.lines() {
            text.push_str(&format!("error: {line}\n"));
        }
        // Standard error closed: nowhere left to say it, and the exit code still does.
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    ExitCode::from(code)
}

/// Writes `text` and a newline to standard output. A reader that went away (`| head`, a
/// script that read the first line) is not an error: the exit code still tells.
fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// `{"error": message, "exit_code": code, ...fields}`.
pub fn error_object(code: u8, message: &str, fields: Value) -> Value {
    let mut object = Map::new();
    object.insert("error".into(), json!(message));
    object.insert("exit_code".into(), json!(code));
    if let Value::Object(fields) = fields {
        for (key, value) in fields {
            object.entry(key).or_insert(value);
        }
    }
    Value::Object(object)
}

/// Prints `text` as it is, or `value` as one line of JSON.
pub fn print(json: bool, text: &str, value: &Value) {
    if json {
        line(&value.to_string());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

/// An error that says which exit code it deserves: a verb returns it (in an
/// `anyhow::Error`) for a command line that is well-formed to clap but wrong (a license
/// path that does not parse, `--from` after `--to`), which exits 64 like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_object_keeps_its_own_error_and_code_over_the_fields() {
        let value = error_object(
            3,
            "nobody answered",
            json!({"error": "x", "result": "unreachable"}),
        );
        assert_eq!(
            value,
            json!({"error": "nobody answered", "exit_code": 3, "result": "unreachable"})
        );
    }
}
