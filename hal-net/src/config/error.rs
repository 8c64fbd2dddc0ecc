//! What can be wrong with a config file, and where: [`ConfigError`], its [`Location`],
//! and the nearest-key suggestion for a misspelt key.

use std::fmt;

use super::CONFIG_BYTES_MAX;

/// A place in a config file: `server1.toml:3:6` (line and column count from 1, the
/// column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Why a config file was refused. Every variant names the file, and all but the first
/// three the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config file {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}: more than {CONFIG_BYTES_MAX} bytes; a server config is not so large")]
    TooLarge { source_name: String },
    #[error("{at}: not UTF-8 text")]
    NotUtf8 { at: Location },
    #[error("{at}: not valid TOML: {message}")]
    Syntax { at: Location, message: String },
    #[error("{at}: unknown key '{key}' {table}; {hint}")]
    UnknownKey {
        at: Location,
        key: String,
        /// "at the top level" or "in `[timing]`".
        table: &'static str,
        /// "did you mean ...?" or the keys allowed.
        hint: String,
    },
    #[error("{source_name}: missing key '{key}': {what}")]
    Missing {
        source_name: String,
        key: &'static str,
        /// What the key is for, with an example.
        what: &'static str,
    },
    #[error("{at}: {key}: {problem}")]
    Invalid {
        at: Location,
        key: String,
        problem: String,
    },
}

impl ConfigError {
    /// Where in the file the problem is, when it is at one place.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::NotUtf8 { at }
            | ConfigError::Syntax { at, .. }
            | ConfigError::UnknownKey { at, .. }
            | ConfigError::Invalid { at, .. } => Some(at),
            ConfigError::Io { .. } | ConfigError::TooLarge { .. } | ConfigError::Missing { .. } => {
                None
            }
        }
    }
}

/// Longer keys get no suggestion: a key that long is not a typo of ours, and the edit
/// distance costs its length times the candidate's.
const SUGGESTED_KEY_CHARS_MAX: usize = 64;

/// What to tell the operator about unknown `key` where `allowed` are the keys: the
/// nearest allowed key if it is a plausible typo, else the list.
pub(super) fn unknown_key_hint(key: &str, allowed: &[&str], misplaced: &[&str]) -> String {
    if misplaced.contains(&key) {
        return "it belongs in the [timing] section".into();
    }
    match nearest_key(key, allowed) {
        Some(near) => format!("did you mean '{near}'?"),
        None => format!("allowed: {}", allowed.join(", ")),
    }
}

/// The allowed key nearest to `key` by edit distance, if at most two edits away and not
/// a replacement of the whole key. Ties go to the first in `allowed`. (The simulator's
/// scenario files suggest keys and verbs with it too.)
pub fn nearest_key<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    if key.chars().count() > SUGGESTED_KEY_CHARS_MAX {
        return None;
    }
    let key = key.to_lowercase();
    allowed
        .iter()
        .map(|candidate| (edit_distance(&key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance in characters, with a swap of two neighbours counting as one
/// edit (`data_dri` is one edit from `data_dir`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: the distance between the first i chars of a and the first j of b.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
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
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("data_dri", "data_dir"), 1);
        assert_eq!(edit_distance("", "id"), 2);
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("licence", "license"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_are_near_or_the_list() {
        let allowed = ["id", "listen", "data_dir"];
        assert_eq!(
            unknown_key_hint("data_dri", &allowed, &[]),
            "did you mean 'data_dir'?"
        );
        assert_eq!(
            unknown_key_hint("Listen", &allowed, &[]),
            "did you mean 'listen'?"
        );
        assert_eq!(
            unknown_key_hint("xy", &allowed, &[]),
            "allowed: id, listen, data_dir"
        );
        assert_eq!(
            unknown_key_hint("lease", &allowed, &["lease"]),
            "it belongs in the [timing] section"
        );
        let long = "x".repeat(1000);
        assert!(unknown_key_hint(&long, &allowed, &[]).starts_with("allowed"));
    }
}
