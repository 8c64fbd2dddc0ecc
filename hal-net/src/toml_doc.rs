//! Reading a TOML document with the place of every value: the one walk that the server's
//! config file ([`crate::config`]) and the simulator's scenario files both use, so that
//! every message names the file, the line and column, and the key, reads the same for
//! the same mistake, and suggests the nearest allowed key for a misspelt one.
//!
//! It knows no file's keys or meaning: callers say which keys a table allows and what a
//! value stands for. It reads values one at a time and returns a [`Problem`] for the
//! first thing wrong with a value; a caller that wants every problem of a file collects
//! them (the scenario loader does).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// A value of the document, with its span.
pub type Value<'i> = Spanned<DeValue<'i>>;
/// A table of the document.
pub type Table<'i> = DeTable<'i>;

/// Longer words get no suggestion: a key that long is not a typo of ours, and the edit
/// distance costs its length times the candidate's.
const SUGGESTED_CHARS_MAX: usize = 64;

/// The most edits (insertions, deletions, substitutions, swaps of neighbours) between a
/// misspelt word and the word suggested for it.
const SUGGESTED_EDITS_MAX: usize = 2;

/// A place in a file: `server1.toml:3:6` (line and column count from 1, the column in
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub source_name: String,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte offset `byte` in `text` (clamped to the text, and to the
    /// start of the character it falls in, so that any offset is safe).
    pub fn at_byte(source_name: &str, text: &str, byte: usize) -> Location {
        let mut end = byte.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = text.get(..end).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
        Location {
            source_name: source_name.into(),
            line: before.matches('\n').count() + 1,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.source_name, self.line, self.column)
    }
}

/// What is wrong at one place of a document, and with which key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {key}: {problem}")]
pub struct Problem {
    pub at: Location,
    pub key: String,
    pub problem: String,
}

/// A key a table does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub at: Location,
    pub key: String,
    /// "did you mean '...'?" or the keys allowed.
    pub hint: String,
}

/// The text being read, for turning spans into locations and values into messages.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub source_name: &'a str,
    pub text: &'a str,
}

impl<'a> Doc<'a> {
    pub fn new(source_name: &'a str, text: &'a str) -> Doc<'a> {
        Doc { source_name, text }
    }

    /// The document's root table, or where and why it is not TOML.
    pub fn parse(&self) -> Result<Spanned<DeTable<'a>>, Problem> {
        DeTable::parse(self.text).map_err(|error| {
            self.problem(
                error.span().unwrap_or(0..0),
                "syntax",
                format!("not valid TOML: {}", error.message().trim_end()),
            )
        })
    }

    /// Where `span` starts.
    pub fn location(&self, span: Range<usize>) -> Location {
        Location::at_byte(self.source_name, self.text, span.start)
    }

    /// The line `span` starts on.
    pub fn line(&self, span: Range<usize>) -> usize {
        self.location(span).line
    }

    pub fn problem(&self, span: Range<usize>, key: &str, problem: impl Into<String>) -> Problem {
        Problem {
            at: self.location(span),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    /// The keys of `table` that are not `allowed`, in file order, each with the nearest
    /// allowed key suggested (or the list).
    pub fn unknown_keys(&self, table: &DeTable<'_>, allowed: &[&str]) -> Vec<UnknownKey> {
        let mut unknown: Vec<&Spanned<Cow<'_, str>>> = table
            .keys()
            .filter(|key| !allowed.contains(&key.get_ref().as_ref()))
            .collect();
        unknown.sort_by_key(|key| key.span().start);
        unknown
            .into_iter()
            .map(|key| UnknownKey {
                at: self.location(key.span()),
                key: key.get_ref().to_string(),
                hint: hint(key.get_ref(), allowed),
            })
            .collect()
    }

    /// The value as a string; `expected` says what kind of string, for the message.
    pub fn string<'v>(
        &self,
        key: &str,
        value: &'v Value<'_>,
        expected: &str,
    ) -> Result<&'v str, Problem> {
        value
            .get_ref()
            .as_str()
            .ok_or_else(|| self.expected(key, value, expected))
    }

    /// A string that must not be empty or blank, trimmed; `what` says what it is for.
    pub fn nonblank(&self, key: &str, value: &Value<'_>, what: &str) -> Result<String, Problem> {
        let text = self.string(key, value, "text in quotes")?;
        if text.trim().is_empty() {
            return Err(self.problem(value.span(), key, format!("is empty: {what}")));
        }
        Ok(text.trim().to_string())
    }

    pub fn integer(&self, key: &str, value: &Value<'_>) -> Result<i64, Problem> {
        let DeValue::Integer(integer) = value.get_ref() else {
            return Err(self.expected(key, value, "a whole number"));
        };
        i64::from_str_radix(integer.as_str(), integer.radix())
            .map_err(|_| self.problem(value.span(), key, format!("{integer} is far too large")))
    }

    /// A whole number from `min` to `max`.
    pub fn integer_in(
        &self,
        key: &str,
        value: &Value<'_>,
        min: i64,
        max: i64,
    ) -> Result<i64, Problem> {
        let n = self.integer(key, value)?;
        if !(min..=max).contains(&n) {
            return Err(self.problem(value.span(), key, format!("{n} is not from {min} to {max}")));
        }
        Ok(n)
    }

    pub fn boolean(&self, key: &str, value: &Value<'_>) -> Result<bool, Problem> {
        value
            .get_ref()
            .as_bool()
            .ok_or_else(|| self.expected(key, value, "true or false"))
    }

    /// A duration in quotes (`"500ms"`, `"2s"`, `"1m 30s"`), at most `max` (`max_words`
    /// says it for the message: "a day").
    pub fn duration(
        &self,
        key: &str,
        value: &Value<'_>,
        max: Duration,
        max_words: &str,
    ) -> Result<Duration, Problem> {
        let text = self.string(
            key,
            value,
            "a duration in quotes such as \"500ms\", \"2s\" or \"1m 30s\"",
        )?;
        let duration = humantime::parse_duration(text).map_err(|error| {
            self.problem(
                value.span(),
                key,
                format!("'{text}' is not a duration ({error}); write e.g. \"500ms\", \"2s\" or \"1m 30s\""),
            )
        })?;
        if duration > max {
            return Err(self.problem(
                value.span(),
                key,
                format!("'{text}' is longer than {max_words}"),
            ));
        }
        Ok(duration)
    }

    /// The value as a table; `example` shows one, for the message.
    pub fn table<'v, 'i>(
        &self,
        key: &str,
        value: &'v Value<'i>,
        example: &str,
    ) -> Result<&'v DeTable<'i>, Problem> {
        match value.get_ref() {
            DeValue::Table(table) => Ok(table),
            _ => Err(self.expected(key, value, &format!("a table ({example})"))),
        }
    }

    /// The value as an array; `example` shows one, for the message.
    pub fn array<'v, 'i>(
        &self,
        key: &str,
        value: &'v Value<'i>,
        example: &str,
    ) -> Result<&'v DeArray<'i>, Problem> {
        match value.get_ref() {
            DeValue::Array(items) => Ok(items),
            _ => Err(self.expected(key, value, &format!("a list such as {example}"))),
        }
    }

    /// The tables of `root[key]`, an array of tables (`[[steps]]`, or
    /// `steps = [{...}, ...]`), each with the span of its first key (where a reader
    /// sees it start). None if the key is absent.
    pub fn tables<'v, 'i>(
        &self,
        root: &'v DeTable<'i>,
        key: &str,
    ) -> Result<Vec<(&'v DeTable<'i>, Range<usize>)>, Problem> {
        let Some(value) = root.get(key) else {
            return Ok(Vec::new());
        };
        let items = self.array(key, value, &format!("[[{key}]] tables"))?;
        items
            .iter()
            .map(|item| {
                let table = self.table(key, item, &format!("a [[{key}]] entry"))?;
                let start = table
                    .keys()
                    .map(|k| k.span())
                    .min_by_key(|s| s.start)
                    .unwrap_or(item.span());
                Ok((table, start))
            })
            .collect()
    }

    /// "expected ..., found <its type>".
    fn expected(&self, key: &str, value: &Value<'_>, expected: &str) -> Problem {
        let found = value.get_ref().type_str();
        self.problem(
            value.span(),
            key,
            format!("expected {expected}, found {found}"),
        )
    }
}

/// The allowed word nearest to `word`, if a plausible typo of it: at most two edits away
/// (a swap of neighbours counts as one: `data_dri` is one edit from `data_dir`), case
/// ignored, and not a replacement of the whole word. Ties go to the first in `allowed`.
pub fn nearest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    if word.chars().count() > SUGGESTED_CHARS_MAX {
        return None;
    }
    let word = word.to_lowercase();
    allowed
        .iter()
        .map(|candidate| (strsim::osa_distance(&word, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= SUGGESTED_EDITS_MAX && *distance < candidate.chars().count()
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// "did you mean 'x'?" for a near miss, else the list of what is allowed.
pub fn hint(word: &str, allowed: &[&str]) -> String {
    match nearest(word, allowed) {
        Some(near) => format!("did you mean '{near}'?"),
        None => format!("allowed: {}", allowed.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters_from_one() {
        let text = "a = 1\nb = \"é\" x\n";
        let at = |byte| Location::at_byte("f.toml", text, byte).to_string();
        assert_eq!(at(0), "f.toml:1:1");
        assert_eq!(at(4), "f.toml:1:5");
        assert_eq!(at(6), "f.toml:2:1");
        // 'x' is byte 16 but character 10 of its line (é is two bytes).
        assert_eq!(at(16), "f.toml:2:10");
        // Inside a character, and past the end: no panic.
        assert_eq!(at(12), "f.toml:2:6");
        assert_eq!(at(1000), "f.toml:3:1");
    }

    #[test]
    fn near_misses_are_suggested_and_the_rest_get_the_list() {
        let allowed = ["id", "listen", "data_dir"];
        assert_eq!(nearest("data_dri", &allowed), Some("data_dir"));
        assert_eq!(nearest("Listen", &allowed), Some("listen"));
        assert_eq!(nearest("lisen", &allowed), Some("listen"));
        // Two letters are not a typo of "id": they would replace it.
        assert_eq!(nearest("xy", &allowed), None);
        assert_eq!(hint("xy", &allowed), "allowed: id, listen, data_dir");
        assert_eq!(hint("datadir", &allowed), "did you mean 'data_dir'?");
        assert_eq!(
            nearest(&"x".repeat(SUGGESTED_CHARS_MAX + 1), &allowed),
            None
        );
    }

    #[test]
    fn every_unknown_key_is_found_in_file_order() {
        let text = "zeta = 1\nname = \"x\"\nnmae = 2\nalpha = 3\n";
        let doc = Doc::new("f.toml", text);
        let root = doc.parse().expect("valid TOML");
        let unknown = doc.unknown_keys(root.get_ref(), &["name"]);
        let found: Vec<(usize, &str, &str)> = unknown
            .iter()
            .map(|u| (u.at.line, u.key.as_str(), u.hint.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (1, "zeta", "allowed: name"),
                (3, "nmae", "did you mean 'name'?"),
                (4, "alpha", "allowed: name"),
            ]
        );
    }

    #[test]
    fn values_of_the_wrong_kind_say_what_was_expected_and_where() {
        let text = "n = \"3\"\nd = \"3 parsecs\"\nlong = \"2d\"\nt = 5\n";
        let doc = Doc::new("f.toml", text);
        let root = doc.parse().expect("valid TOML");
        let root = root.get_ref();
        let value = |key: &str| root.get(key).expect("key present");
        let error = doc.integer("n", value("n")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "f.toml:1:5: n: expected a whole number, found string"
        );
        let error = doc
            .duration("d", value("d"), Duration::from_secs(60), "a minute")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("f.toml:2:5: d: '3 parsecs' is not a duration"),
            "{error}"
        );
        let error = doc
            .duration("long", value("long"), Duration::from_secs(60), "a minute")
            .unwrap_err();
        assert_eq!(error.problem, "'2d' is longer than a minute");
        let error = doc.table("t", value("t"), "[t]").unwrap_err();
        assert_eq!(error.problem, "expected a table ([t]), found integer");
        let error = doc.integer_in("t", value("t"), 1, 3).unwrap_err();
        assert_eq!(error.problem, "5 is not from 1 to 3");
    }

    #[test]
    fn a_syntax_error_names_its_place() {
        let doc = Doc::new("f.toml", "a = 1\nb = = 2\n");
        let error = doc.parse().unwrap_err();
        assert_eq!((error.at.line, error.key.as_str()), (2, "syntax"));
        assert!(error.problem.starts_with("not valid TOML"), "{error}");
    }
}
