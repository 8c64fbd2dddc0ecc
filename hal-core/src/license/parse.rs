//! The license file parser: bytes in, a validated [`License`] or every error found out.
//!
//! The grammar is line based. Outside a block, a line is blank, a `#` comment or
//! `FEATURE <name>` (optionally followed by `{`); a block is opened by `{` and closed by `}`,
//! each on its own line, and holds `NAME = value` directives. A value is bare text up to a
//! `#` comment, or a double-quoted string in which `\"` and `\\` are the only escapes.
//!
//! The parser never panics and never allocates more than a bounded multiple of its input:
//! the file size, the line length, the number of features and the number of errors are all
//! limited (see [`super::limits`]). It keeps going after an error so that one run reports
//! every problem, up to [`super::limits::ERRORS_MAX`], in file order.
//!
//! It tries to report each mistake once, not again through the lines after it: a `}`
//! where `{` was expected still closes the block; a FEATURE line whose name is missing or
//! which cannot be read at all opens a placeholder block for the lines that follow; and
//! after a line it cannot read (which may have been a brace or a directive), it skips the
//! checks that line could have satisfied.

use std::collections::BTreeMap;
use std::ops::Range;

use time::{Date, Month};

use super::error::{LicenseError, LicenseErrorKind as Kind, LicenseErrors, snippet};
use super::model::{
    Directive, Feature, FeatureName, License, LicenseKey, Origin, ValueSpan, Vendor, Version,
    limits,
};
use crate::HostId;

/// Parses the license text `bytes`, read under `source_name` (used in messages).
pub fn parse(source_name: &str, bytes: &[u8]) -> Result<License, LicenseErrors> {
    let text = decode(source_name, bytes)?;
    let mut parser = Parser::new(source_name);
    for (index, raw) in text.split('\n').enumerate() {
        if parser.stopped {
            break;
        }
        let line_no = u32::try_from(index.saturating_add(1)).unwrap_or(u32::MAX);
        parser.line(line_no, raw.strip_suffix('\r').unwrap_or(raw));
    }
    parser.finish()
}

/// Checks size and encoding and returns the text without a byte-order mark.
fn decode<'a>(source_name: &str, bytes: &'a [u8]) -> Result<&'a str, LicenseErrors> {
    let fail = |line, column, kind| LicenseErrors {
        errors: vec![LicenseError {
            source_name: source_name.to_string(),
            line,
            column,
            feature: None,
            kind,
        }],
        truncated: false,
    };
    if bytes.len() > limits::FILE_BYTES_MAX {
        let prefix = &bytes[..limits::FILE_BYTES_MAX];
        let line = prefix
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            .saturating_add(1);
        let kind = Kind::FileTooLarge {
            size: bytes.len(),
            max: limits::FILE_BYTES_MAX,
        };
        return Err(fail(to_u32(line), 1, kind));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let good = &bytes[..error.valid_up_to()];
            // `good` is valid UTF-8 by construction; the fallback is never taken.
            let good = std::str::from_utf8(good).unwrap_or("");
            let line = good.matches('\n').count().saturating_add(1);
            let line_start = good.rfind('\n').map_or(0, |i| i.saturating_add(1));
            let column = good[line_start..].chars().count().saturating_add(1);
            let byte = bytes.get(error.valid_up_to()).copied().unwrap_or(0);
            return Err(fail(to_u32(line), to_u32(column), Kind::NotUtf8 { byte }));
        }
    };
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The 1-based character column of byte offset `at` in `line`.
fn column(line: &str, at: usize) -> u32 {
    to_u32(
        line.get(..at)
            .map_or(0, |s| s.chars().count())
            .saturating_add(1),
    )
}

/// A directive's value as written, before it is checked.
#[derive(Debug)]
struct Slot {
    value: String,
    line: u32,
    column: u32,
    /// The bytes of the value as written in its line, quotes included.
    bytes: Range<usize>,
}

/// A FEATURE block being read.
#[derive(Debug)]
struct Block {
    /// The name as messages quote it (see [`snippet`]); it may be invalid (`valid_name`
    /// says). `None` for a placeholder opened by a FEATURE line without a readable name,
    /// so that the lines after it are read as its directives rather than each reported.
    name: Option<String>,
    valid_name: Option<FeatureName>,
    line: u32,
    slots: BTreeMap<Directive, Slot>,
    indent: Option<String>,
    /// Some directive line could not be read, so a directive may be missing only because
    /// its line was bad: the "missing" checks are skipped.
    directive_lost: bool,
    /// Some line could not be read at all (too long, or a forbidden character), so it may
    /// have been this block's `{` or `}`: the checks for those are skipped too. Also set
    /// for a placeholder block, whose FEATURE line was not read whole.
    line_lost: bool,
}

impl Block {
    fn new(name: Option<String>, valid_name: Option<FeatureName>, line: u32) -> Block {
        Block {
            name,
            valid_name,
            line,
            slots: BTreeMap::new(),
            indent: None,
            directive_lost: false,
            line_lost: false,
        }
    }

    /// The feature errors in this block are reported in.
    fn feature(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The block's name in a sentence.
    fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| "(no name)".to_string())
    }

    fn lost_line(mut self) -> Block {
        self.line_lost = true;
        self.directive_lost = true;
        self
    }
}

#[derive(Debug)]
enum State {
    Outside,
    AwaitBrace(Block),
    Inside(Block),
}

/// What a line starts with, as far as the block structure cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Feature,
    Open,
    Close,
    Other,
}

impl Token {
    fn of(first_word: &str) -> Token {
        if first_word == "FEATURE" {
            Token::Feature
        } else if first_word.starts_with('{') {
            Token::Open
        } else if first_word.starts_with('}') {
            Token::Close
        } else {
            Token::Other
        }
    }
}

#[derive(Debug)]
struct Parser<'a> {
    source_name: &'a str,
    state: State,
    features: Vec<Feature>,
    /// Every feature name seen, with its first line, valid block or not.
    seen: BTreeMap<String, u32>,
    errors: Vec<LicenseError>,
    truncated: bool,
    stopped: bool,
    last_line: u32,
}

impl<'a> Parser<'a> {
    fn new(source_name: &'a str) -> Parser<'a> {
        Parser {
            source_name,
            state: State::Outside,
            features: Vec::new(),
            seen: BTreeMap::new(),
            errors: Vec::new(),
            truncated: false,
            stopped: false,
            last_line: 1,
        }
    }

    fn error(&mut self, line: u32, column: u32, feature: Option<&str>, kind: Kind) {
        if self.errors.len() >= limits::ERRORS_MAX {
            self.truncated = true;
            self.stopped = true;
            return;
        }
        self.errors.push(LicenseError {
            source_name: self.source_name.to_string(),
            line,
            column,
            feature: feature.map(str::to_string),
            kind,
        });
    }

    /// The name of the block being read, for error messages.
    fn open_feature(&self) -> Option<String> {
        match &self.state {
            State::Outside => None,
            State::AwaitBrace(block) | State::Inside(block) => block.name.clone(),
        }
    }

    fn line(&mut self, line_no: u32, line: &str) {
        self.last_line = line_no;
        if let Some((col, kind)) = unreadable(line) {
            let feature = self.open_feature();
            self.error(line_no, col, feature.as_deref(), kind);
            self.lost(line_no, line);
            return;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return;
        }
        self.dispatch(line_no, line, trimmed);
    }

    /// Carries on after a line that could not be read (and was reported). It may have been
    /// a brace, so the open block is marked; and if it starts like a FEATURE line, a
    /// placeholder block takes the lines after it, which would otherwise each be reported
    /// as outside any block.
    fn lost(&mut self, line_no: u32, line: &str) {
        let header = line.split_whitespace().next() == Some("FEATURE");
        let state = std::mem::replace(&mut self.state, State::Outside);
        self.state = match (state, header) {
            (State::Outside, false) => State::Outside,
            (State::AwaitBrace(block), false) => State::AwaitBrace(block.lost_line()),
            (State::Inside(block), false) => State::Inside(block.lost_line()),
            (State::AwaitBrace(block) | State::Inside(block), true) => {
                self.close(block.lost_line(), line_no);
                State::AwaitBrace(Block::new(None, None, line_no).lost_line())
            }
            (State::Outside, true) => {
                State::AwaitBrace(Block::new(None, None, line_no).lost_line())
            }
        };
    }

    /// The grammar's state machine: what one non-blank, non-comment line means here.
    fn dispatch(&mut self, line_no: u32, line: &str, trimmed: &str) {
        let first_word = trimmed.split_whitespace().next().unwrap_or("");
        let state = std::mem::replace(&mut self.state, State::Outside);
        let token = Token::of(first_word);
        self.state = match (state, token) {
            (State::Outside, Token::Feature) => self.header(line_no, line),
            (State::Outside, _) => {
                self.outside_block(line_no, line, trimmed, token);
                State::Outside
            }
            (State::AwaitBrace(block), Token::Feature) => {
                self.missing_brace(&block, line_no, line, trimmed);
                self.header(line_no, line)
            }
            (State::AwaitBrace(block), Token::Open) => {
                self.no_trailing(line_no, line, trimmed, "{", block.feature());
                State::Inside(block)
            }
            (State::AwaitBrace(block), Token::Close) => {
                // `FEATURE cad` then `}`: one error for the brace, then the block as usual.
                self.missing_brace(&block, line_no, line, trimmed);
                self.close_line(block, line_no, line, trimmed);
                State::Outside
            }
            (State::AwaitBrace(mut block), Token::Other) => {
                self.missing_brace(&block, line_no, line, trimmed);
                // Read on as if the brace were there, to report the block's own errors.
                self.directive(&mut block, line_no, line);
                State::Inside(block)
            }
            (State::Inside(block), Token::Feature) => {
                self.feature_inside(block, line_no, line, trimmed);
                self.header(line_no, line)
            }
            (State::Inside(block), Token::Open) => {
                State::Inside(self.extra_brace(block, line_no, line, trimmed))
            }
            (State::Inside(block), Token::Close) => {
                self.close_line(block, line_no, line, trimmed);
                State::Outside
            }
            (State::Inside(mut block), Token::Other) => {
                self.directive(&mut block, line_no, line);
                State::Inside(block)
            }
        };
    }

    /// Reports a line other than `FEATURE` outside any block.
    fn outside_block(&mut self, line_no: u32, line: &str, trimmed: &str, token: Token) {
        let kind = if token == Token::Close {
            Kind::UnexpectedClose
        } else {
            Kind::ExpectedFeature {
                found: snippet(strip_comment(trimmed)),
            }
        };
        self.error(line_no, column_of(line, trimmed), None, kind);
    }

    /// Ends `block` at a FEATURE line inside it: a missing `}`, unless a lost line may have
    /// been the `}`.
    fn feature_inside(&mut self, block: Block, line_no: u32, line: &str, trimmed: &str) {
        if block.line_lost {
            self.close(block, line_no);
            return;
        }
        let kind = Kind::NestedFeature {
            open: block.label(),
        };
        self.error(line_no, column_of(line, trimmed), block.feature(), kind);
    }

    /// Reports a second `{` in `block`.
    fn extra_brace(&mut self, mut block: Block, line_no: u32, line: &str, trimmed: &str) -> Block {
        let kind = Kind::ExtraOpenBrace {
            name: block.label(),
        };
        self.error(line_no, column_of(line, trimmed), block.feature(), kind);
        if !strip_comment(&trimmed[1..]).trim().is_empty() {
            // Whatever follows the brace is not read; it may have been a directive.
            block.directive_lost = true;
        }
        block
    }

    /// Reports a block whose `FEATURE` line is not followed by `{`, unless a lost line may
    /// have been the brace.
    fn missing_brace(&mut self, block: &Block, line_no: u32, line: &str, trimmed: &str) {
        if block.line_lost {
            return;
        }
        let kind = Kind::ExpectedOpenBrace {
            name: block.label(),
            found: snippet(strip_comment(trimmed)),
        };
        self.error(line_no, column_of(line, trimmed), block.feature(), kind);
    }

    /// Reads `FEATURE <name> [{]` and opens a block; a placeholder if the name is missing.
    fn header(&mut self, line_no: u32, line: &str) -> State {
        let content = strip_comment(line);
        let after_keyword = content.trim_start().strip_prefix("FEATURE").unwrap_or("");
        let mut words = after_keyword.split_whitespace().peekable();
        let raw_name = words.next_if(|word| !word.starts_with('{'));
        // `FEATURE cad{` is read as `FEATURE cad {`.
        let (raw_name, glued_brace) = match raw_name.and_then(|w| w.strip_suffix('{')) {
            Some(name) => (Some(name), true),
            None => (raw_name, false),
        };
        let brace = glued_brace || words.next_if_eq(&"{").is_some();
        let block = match raw_name {
            Some(raw_name) => match self.named_block(line_no, line, raw_name) {
                Some(block) => block,
                None => return State::Outside,
            },
            None => {
                let col = column_of(line, line.trim_start());
                self.error(line_no, col, None, Kind::MissingFeatureName);
                // Its lines are still read, but a nameless block's structure is not
                // worth a second message.
                Block::new(None, None, line_no).lost_line()
            }
        };
        let rest: Vec<&str> = words.collect();
        if let Some(extra) = rest.first() {
            let after = if brace { "{" } else { "FEATURE <name>" };
            let kind = Kind::TrailingText {
                after,
                found: snippet(&rest.join(" ")),
            };
            let col = column_of(line, extra);
            self.error(line_no, col, block.feature(), kind);
        }
        if brace {
            State::Inside(block)
        } else {
            State::AwaitBrace(block)
        }
    }

    /// Checks the name of a FEATURE line and makes its block; `None` when the file has
    /// too many features, which ends the parse.
    fn named_block(&mut self, line_no: u32, line: &str, raw_name: &str) -> Option<Block> {
        let name_col = column_of(line, raw_name);
        let name = snippet(raw_name);
        if self.features.len() >= limits::FEATURES_MAX {
            let kind = Kind::TooManyFeatures {
                max: limits::FEATURES_MAX,
            };
            self.error(line_no, name_col, Some(&name), kind);
            self.stopped = true;
            return None;
        }
        let valid_name = match FeatureName::parse(raw_name) {
            Ok(valid) => Some(valid),
            Err(reason) => {
                let kind = Kind::BadFeatureName {
                    name: name.clone(),
                    reason,
                };
                self.error(line_no, name_col, Some(&name), kind);
                None
            }
        };
        if let Some(&first_line) = self.seen.get(raw_name) {
            let kind = Kind::DuplicateFeature {
                name: name.clone(),
                first_line,
            };
            self.error(line_no, name_col, Some(&name), kind);
        } else {
            self.seen.insert(raw_name.to_string(), line_no);
        }
        Some(Block::new(Some(name), valid_name, line_no))
    }

    /// Reads a `}` line: closes `block`, reporting anything after the brace.
    fn close_line(&mut self, block: Block, line_no: u32, line: &str, trimmed: &str) {
        self.no_trailing(line_no, line, trimmed, "}", block.feature());
        self.close(block, line_no);
    }

    /// Reports anything but a comment after a lone `{` or `}`.
    fn no_trailing(
        &mut self,
        line_no: u32,
        line: &str,
        trimmed: &str,
        token: &'static str,
        feature: Option<&str>,
    ) {
        let rest = strip_comment(&trimmed[1..]).trim();
        if !rest.is_empty() {
            let kind = Kind::TrailingText {
                after: token,
                found: snippet(rest),
            };
            self.error(line_no, column_of(line, rest), feature, kind);
        }
    }

    /// Reads one `NAME = value` line into `block`.
    fn directive(&mut self, block: &mut Block, line_no: u32, line: &str) {
        let errors_before = self.errors.len();
        self.directive_slot(block, line_no, line);
        if self.errors.len() > errors_before {
            block.directive_lost = true;
        }
    }

    fn directive_slot(&mut self, block: &mut Block, line_no: u32, line: &str) {
        let name = block.name.as_deref();
        let body = line.trim_start();
        let indent = &line[..line.len().saturating_sub(body.len())];
        block.indent.get_or_insert_with(|| indent.to_string());
        let keyword_len = body
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(body.len());
        let keyword = &body[..keyword_len];
        let keyword_col = column_of(line, body);
        let Some(directive) = Directive::from_keyword(keyword) else {
            let kind = if keyword.is_empty() || keyword.starts_with('#') {
                Kind::ExpectedDirective {
                    found: snippet(strip_comment(body).trim()),
                }
            } else {
                Kind::UnknownDirective {
                    name: snippet(keyword),
                    suggestion: suggest(keyword),
                }
            };
            self.error(line_no, keyword_col, name, kind);
            return;
        };
        let after_keyword = body[keyword_len..].trim_start();
        let Some(after_equals) = after_keyword.strip_prefix('=') else {
            let col = column_of(line, after_keyword);
            self.error(line_no, col, name, Kind::MissingEquals { directive });
            return;
        };
        let value_text = after_equals.trim_start();
        let value_col = column_of(line, value_text);
        let (value, written_len) = match read_value(value_text) {
            Ok(read) => read,
            Err(reason) => {
                self.error(line_no, value_col, name, Kind::BadQuotes { reason });
                return;
            }
        };
        if value.is_empty() {
            self.error(line_no, value_col, name, Kind::EmptyValue { directive });
            return;
        }
        if let Some(first) = block.slots.get(&directive) {
            let kind = Kind::DuplicateDirective {
                directive,
                first_line: first.line,
            };
            self.error(line_no, keyword_col, name, kind);
            return;
        }
        let value_start = line.len().saturating_sub(value_text.len());
        let slot = Slot {
            value,
            line: line_no,
            column: value_col,
            bytes: value_start..value_start.saturating_add(written_len),
        };
        block.slots.insert(directive, slot);
    }

    /// Checks a closed block and keeps its feature if it has no errors.
    fn close(&mut self, block: Block, close_line: u32) {
        let errors_before = self.errors.len();
        let feature = self.check_block(&block, close_line);
        let clean = self.errors.len() == errors_before && !self.truncated;
        if let (Some(feature), true, Some(_)) = (feature, clean, &block.valid_name) {
            self.features.push(feature);
        }
    }

    fn finish(mut self) -> Result<License, LicenseErrors> {
        let state = std::mem::replace(&mut self.state, State::Outside);
        if let State::AwaitBrace(block) | State::Inside(block) = state
            && !block.line_lost
        {
            let kind = Kind::Unclosed {
                name: block.label(),
            };
            self.error(block.line, 1, block.feature(), kind);
        }
        if self.features.is_empty() && self.errors.is_empty() {
            self.error(self.last_line, 1, None, Kind::Empty);
        }
        if self.errors.is_empty() {
            return Ok(License {
                source_name: self.source_name.to_string(),
                features: self.features,
            });
        }
        // Block checks run at the `}` and report at the lines of the values, so the errors
        // come in out of order; a stable sort keeps a line's errors in reporting order.
        self.errors.sort_by_key(|e| (e.line, e.column));
        Err(LicenseErrors {
            errors: self.errors,
            truncated: self.truncated,
        })
    }
}

/// The mark of a value whose error has been reported already.
#[derive(Debug, Clone, Copy)]
struct Reported;

/// Converts the slots of a block to typed values and applies the rules that tie directives
/// together, reporting each problem.
impl Parser<'_> {
    /// The typed value of `directive` in `block`: `Ok(None)` if absent, `Err` once reported.
    fn typed<T>(
        &mut self,
        block: &Block,
        directive: Directive,
        parse: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Result<Option<T>, Reported> {
        let Some(slot) = block.slots.get(&directive) else {
            return Ok(None);
        };
        match parse(&slot.value) {
            Ok(value) => Ok(Some(value)),
            Err(reason) => {
                let kind = Kind::BadValue {
                    directive,
                    value: snippet(&slot.value),
                    reason,
                };
                self.error(slot.line, slot.column, block.feature(), kind);
                Err(Reported)
            }
        }
    }

    /// Reports `kind` at the value of `directive` in `block`.
    fn at_slot(&mut self, block: &Block, directive: Directive, kind: Kind) {
        let (line, col) = block
            .slots
            .get(&directive)
            .map_or((block.line, 1), |slot| (slot.line, slot.column));
        self.error(line, col, block.feature(), kind);
    }

    fn check_block(&mut self, block: &Block, close_line: u32) -> Option<Feature> {
        let vendor = self.typed(block, Directive::Vendor, Vendor::parse);
        let version = self.typed(block, Directive::Version, Version::parse);
        let count = self.typed(block, Directive::Count, |t| {
            parse_number(t, 1, limits::COUNT_MAX)
        });
        let hal = self.typed(block, Directive::HalServers, |t| {
            parse_number(t, 3, 3).map_err(|_| "only 3 is allowed")
        });
        let borrow = self.typed(block, Directive::Borrow, |t| {
            parse_number(t, 1, limits::BORROW_HOURS_MAX)
        });
        let hostids = self.typed(block, Directive::HostId, parse_hostids);
        let start = self.typed(block, Directive::Start, parse_date);
        let end = self.typed(block, Directive::End, parse_date);
        let licensee = self.typed(block, Directive::Licensee, normalise_text);
        let comment = self.typed(block, Directive::Comment, normalise_text);
        let key = self.typed(block, Directive::Key, LicenseKey::parse);

        let has = |directive| block.slots.contains_key(&directive);
        if !has(Directive::Vendor) && !block.directive_lost {
            self.error(block.line, 1, block.feature(), Kind::MissingVendor);
        }
        if has(Directive::HalServers) && !has(Directive::Count) && !block.directive_lost {
            self.at_slot(block, Directive::HalServers, Kind::HalWithoutCount);
        }
        if let Ok(Some(list)) = &hostids {
            let hal = has(Directive::HalServers);
            if list.len() != if hal { 3 } else { 1 } {
                let kind = Kind::HostIdCount {
                    found: list.len(),
                    hal,
                };
                self.at_slot(block, Directive::HostId, kind);
            }
        }
        if let (Ok(Some(start)), Ok(Some(end))) = (start, end)
            && start > end
        {
            let kind = Kind::StartAfterEnd {
                start: start.to_string(),
                end: end.to_string(),
            };
            self.at_slot(block, Directive::Start, kind);
        }

        let name = block.valid_name.clone()?;
        let mut feature = Feature::new(name, vendor.ok()??);
        feature.version = version.ok()?;
        feature.count = count.ok()?;
        feature.hal = hal.ok()?.is_some();
        feature.borrow_hours_max = borrow.ok()?;
        feature.hostids = hostids.ok()?.unwrap_or_default();
        feature.start = start.ok()?;
        feature.end = end.ok()?;
        feature.licensee = licensee.ok()?;
        feature.comment = comment.ok()?;
        feature.key = key.ok()?;
        feature.origin = Origin {
            line: block.line,
            close_line,
            key_span: block.slots.get(&Directive::Key).map(|slot| ValueSpan {
                line: slot.line,
                bytes: slot.bytes.clone(),
            }),
            indent: block.indent.clone().unwrap_or_else(|| "  ".to_string()),
        };
        Some(feature)
    }
}

/// Why `line` cannot be read at all, and the column to report.
fn unreadable(line: &str) -> Option<(u32, Kind)> {
    if line.len() > limits::LINE_BYTES_MAX {
        let kind = Kind::LineTooLong {
            length: line.len(),
            max: limits::LINE_BYTES_MAX,
        };
        return Some((1, kind));
    }
    let (at, c) = line.char_indices().find(|&(_, c)| is_forbidden(c))?;
    let found = format!("U+{:04X}", u32::from(c));
    Some((column(line, at), Kind::BadCharacter { found }))
}

/// Characters a license file may not hold: control characters other than tab, and the
/// bidirectional overrides that can make text read differently from what it says.
fn is_forbidden(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// The column at which `part` (a subslice of `line`) starts.
fn column_of(line: &str, part: &str) -> u32 {
    let offset = (part.as_ptr() as usize).saturating_sub(line.as_ptr() as usize);
    column(line, offset.min(line.len()))
}

/// `text` up to a `#` comment, trimmed at the end.
fn strip_comment(text: &str) -> &str {
    text.split('#').next().unwrap_or("").trim_end()
}

/// Reads a value: a quoted string (then only a comment may follow) or bare text up to a
/// comment. `text` starts at the value. Returns the value and how many bytes of `text` it
/// was written in, quotes included.
fn read_value(text: &str) -> Result<(String, usize), &'static str> {
    let Some(quoted) = text.strip_prefix('"') else {
        let bare = strip_comment(text);
        return Ok((bare.to_string(), bare.len()));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                let rest = quoted[at.saturating_add(1)..].trim_start();
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return Err("only a # comment may follow the closing quote");
                }
                // The opening quote, the text up to `at`, the closing quote.
                return Ok((value, at.saturating_add(2)));
            }
            '\\' => match chars.next() {
                Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                _ => return Err("the only escapes are \\\" and \\\\"),
            },
            other => value.push(other),
        }
    }
    Err("the closing quote is missing")
}

/// Suggests the directive closest to an unknown keyword, if one is close.
fn suggest(keyword: &str) -> Option<&'static str> {
    let upper = keyword.to_ascii_uppercase();
    Directive::ALL
        .iter()
        .map(|d| {
            (
                strsim::damerau_levenshtein(&upper, d.keyword()),
                d.keyword(),
            )
        })
        .filter(|&(distance, name)| distance <= 2.max(name.len() / 4))
        .min()
        .map(|(_, name)| name)
}

/// A whole number in `min..=max`, digits only.
fn parse_number(text: &str, min: u32, max: u32) -> Result<u32, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("it is not a whole number");
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 10 {
        return Err("it is out of range");
    }
    let n: u64 = digits.parse().unwrap_or(0);
    if n < u64::from(min) || n > u64::from(max) {
        return Err("it is out of range");
    }
    u32::try_from(n).map_err(|_| "it is out of range")
}

/// A whitespace-separated list of HostIDs.
fn parse_hostids(text: &str) -> Result<Vec<HostId>, &'static str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() > limits::HOSTIDS_MAX {
        return Err("it lists more than three HostIDs");
    }
    words.into_iter().map(HostId::parse).collect()
}

/// A date written exactly `YYYY-MM-DD`, between 1970-01-01 and 9999-12-31.
fn parse_date(text: &str) -> Result<Date, &'static str> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if !shape_ok {
        return Err("it is not written YYYY-MM-DD");
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u16>().unwrap_or(0);
    let year = number(0..4);
    if year < 1970 {
        return Err("the year is before 1970");
    }
    let month = u8::try_from(number(5..7)).ok();
    let month = month
        .and_then(|m| Month::try_from(m).ok())
        .ok_or("the month is not 01 to 12")?;
    let day = u8::try_from(number(8..10)).unwrap_or(0);
    Date::from_calendar_date(i32::from(year), month, day).map_err(|_| "that day does not exist")
}

/// Free text with runs of white space collapsed to one space.
fn normalise_text(text: &str) -> Result<String, &'static str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.is_empty() {
        return Err("it is empty");
    }
    if joined.chars().count() > limits::TEXT_CHARS_MAX {
        return Err("it is longer than 1024 characters");
    }
    Ok(joined)
}
