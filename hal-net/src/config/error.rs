//! What can be wrong with a config file, and where: [`ConfigError`], at a
//! [`Location`] of the shared TOML reader ([`crate::toml_doc`]), which also suggests the
//! nearest key for a misspelt one.

use super::CONFIG_BYTES_MAX;
use crate::toml_doc::{Location, Problem, hint};

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
    /// `message` says it is not valid TOML, and why.
    #[error("{at}: {message}")]
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

/// A value the shared reader refused: invalid at its place.
impl From<Problem> for ConfigError {
    fn from(problem: Problem) -> ConfigError {
        ConfigError::Invalid {
            at: problem.at,
            key: problem.key,
            problem: problem.problem,
        }
    }
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

/// What to tell the operator about unknown `key` where `allowed` are the keys: the
/// nearest allowed key if it is a plausible typo, else the list.
pub(super) fn unknown_key_hint(key: &str, allowed: &[&str], misplaced: &[&str]) -> String {
    if misplaced.contains(&key) {
        return "it belongs in the [timing] section".into();
    }
    hint(key, allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

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
