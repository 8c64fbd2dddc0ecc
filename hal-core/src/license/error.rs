//! Errors found in a license file. Each names the file, line, column and feature, and its
//! message says what would be right, so a vendor or an operator can fix the file without
//! reading our code.

use std::fmt;
use std::fmt::Write as _;

use super::Directive;

/// One thing wrong with a license file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {}{kind}", in_feature(.feature))]
pub struct LicenseError {
    /// The name the text was read under (usually its path).
    pub source_name: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// The feature the error is in, if it is inside a FEATURE block.
    pub feature: Option<String>,
    pub kind: LicenseErrorKind,
}

fn in_feature(feature: &Option<String>) -> String {
    match feature {
        Some(name) => format!("in FEATURE {name}: "),
        None => String::new(),
    }
}

/// What is wrong. The message of each says what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseErrorKind {
    #[error("the file is {size} bytes; a license file may have at most {max} bytes")]
    FileTooLarge { size: usize, max: usize },
    #[error("byte 0x{byte:02x} is not UTF-8; a license file is UTF-8 text")]
    NotUtf8 { byte: u8 },
    #[error(
        "character {found} is not allowed in a license file; use plain text (tabs and spaces are fine)"
    )]
    BadCharacter { found: String },
    #[error("the line is {length} bytes long; a line may have at most {max} bytes")]
    LineTooLong { length: usize, max: usize },
    #[error(
        "the file has no FEATURE block; a license file holds at least one `FEATURE name {{ ... }}`"
    )]
    Empty,
    #[error("expected `FEATURE <name>`, found `{found}`")]
    ExpectedFeature { found: String },
    #[error("`FEATURE` needs a name, as in `FEATURE cad_modeler`")]
    MissingFeatureName,
    #[error("bad feature name `{name}`: {reason}")]
    BadFeatureName { name: String, reason: &'static str },
    #[error("expected `{{` to open FEATURE {name}, found `{found}`")]
    ExpectedOpenBrace { name: String, found: String },
    #[error("unexpected `{found}` after `{after}`; put it on a line of its own")]
    TrailingText { after: &'static str, found: String },
    #[error("FEATURE {name} is not closed: add a line `}}` after its last directive")]
    Unclosed { name: String },
    #[error("`FEATURE` inside FEATURE {open}: close it with a line `}}` first")]
    NestedFeature { open: String },
    #[error(
        "`{{` inside FEATURE {name}, which is already open; a block has one `{{`, right after \
         its FEATURE line"
    )]
    ExtraOpenBrace { name: String },
    #[error("`}}` without an open FEATURE block")]
    UnexpectedClose,
    #[error("expected a directive `NAME = value`, found `{found}`")]
    ExpectedDirective { found: String },
    #[error("unknown directive `{name}`{}; allowed: {}", did_you_mean(.suggestion), allowed_list())]
    UnknownDirective {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("{directive} appears twice (first on line {first_line}); give each directive once")]
    DuplicateDirective {
        directive: Directive,
        first_line: u32,
    },
    #[error("{directive} needs `=` and a value, as in `{directive} = ...`; expected {}", .directive.expected())]
    MissingEquals { directive: Directive },
    #[error("{directive} has no value; expected {}", .directive.expected())]
    EmptyValue { directive: Directive },
    #[error("bad quoted value: {reason}")]
    BadQuotes { reason: &'static str },
    #[error("bad {directive} value `{value}`: {reason}; expected {}", .directive.expected())]
    BadValue {
        directive: Directive,
        value: String,
        reason: &'static str,
    },
    #[error("VENDOR is missing; every FEATURE names its vendor, as in `VENDOR = acme`")]
    MissingVendor,
    #[error(
        "HAL_SERVERS is set but COUNT is not; HAL is for network licenses, so add `COUNT = <seats>`"
    )]
    HalWithoutCount,
    #[error("HOSTID lists {found} HostID(s); {}", hostid_rule(*.hal))]
    HostIdCount { found: usize, hal: bool },
    #[error("START {start} is after END {end}; START must be on or before END")]
    StartAfterEnd { start: String, end: String },
    #[error("FEATURE {name} appears twice (first on line {first_line}); give each feature once")]
    DuplicateFeature { name: String, first_line: u32 },
    #[error("the file has more than {max} features")]
    TooManyFeatures { max: usize },
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

fn allowed_list() -> String {
    let names: Vec<&str> = Directive::ALL.iter().map(|d| d.keyword()).collect();
    names.join(", ")
}

fn hostid_rule(hal: bool) -> &'static str {
    if hal {
        "a HAL feature names exactly three, one per server in role order (#1 #2 #3)"
    } else {
        "a feature served by a single server names exactly one"
    }
}

/// All errors of one parse, in file order (by line, then column); never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseErrors {
    pub errors: Vec<LicenseError>,
    /// True when the parse stopped at [`super::limits::ERRORS_MAX`] errors.
    pub truncated: bool,
}

impl LicenseErrors {
    /// The first error (there is always one).
    pub fn first(&self) -> Option<&LicenseError> {
        self.errors.first()
    }
}

impl fmt::Display for LicenseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        if self.truncated {
            write!(f, "\n(stopped after {} errors)", self.errors.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for LicenseErrors {}

/// The longest piece of the file quoted in an error message, in characters.
const SNIPPET_CHARS_MAX: usize = 60;

/// `text` as an error message quotes it: at most [`SNIPPET_CHARS_MAX`] characters, and
/// every character that would not show as itself written `\u{feff}`, so that a message
/// about `ac\u{200b}me` does not read as if it were about `acme`.
pub(super) fn snippet(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * SNIPPET_CHARS_MAX));
    for (index, c) in text.chars().enumerate() {
        if index == SNIPPET_CHARS_MAX {
            out.push('…');
            break;
        }
        if shows_as_itself(c) {
            out.push(c);
        } else {
            let _ = write!(out, "{}", c.escape_unicode());
        }
    }
    out
}

/// Whether `c` prints as a visible mark or a plain space. Control characters, white space
/// other than U+0020, format characters (U+200B, U+FEFF, the bidirectional marks, ...),
/// fillers and variation selectors that render as nothing, private-use characters and
/// noncharacters do not. A short list rather than a Unicode table: it covers the
/// characters that turn up in pasted text.
fn shows_as_itself(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let invisible = c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{ad}'
                | '\u{34f}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{e000}'..='\u{f8ff}'
                | '\u{fdd0}'..='\u{fdef}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fffb}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
                | '\u{f0000}'..
        )
        || (u32::from(c) & 0xfffe) == 0xfffe;
    !invisible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_show_invisible_characters_as_escapes() {
        assert_eq!(snippet("acme"), "acme");
        assert_eq!(snippet("a b"), "a b");
        assert_eq!(snippet("ac\u{200b}me"), "ac\\u{200b}me");
        assert_eq!(snippet("\u{feff}acme"), "\\u{feff}acme");
        assert_eq!(snippet("a\tb\u{a0}c"), "a\\u{9}b\\u{a0}c");
        assert_eq!(
            snippet("caf\u{e9} \u{65e5}\u{1f980}"),
            "caf\u{e9} \u{65e5}\u{1f980}"
        );
    }

    #[test]
    fn snippets_are_cut_after_sixty_characters() {
        let long = "\u{e9}".repeat(100);
        let quoted = snippet(&long);
        assert_eq!(quoted.chars().count(), SNIPPET_CHARS_MAX + 1);
        assert!(quoted.ends_with("\u{e9}…"));
        assert_eq!(snippet(&"x".repeat(60)), "x".repeat(60));
    }
}
