//! The names a client gives (feature, user, host): how long they may be and which
//! characters they may hold.
//!
//! Names travel from a client into the replicated log, onto every server's disk and into
//! `hal-net status` on an operator's terminal, so each is bounded ([`NAME_BYTES_MAX`]) and
//! free of control characters and of the Unicode controls that reorder text on screen.
//! A request with a bad name is denied ([`crate::protocol::Denial::InvalidRequest`]); a
//! log entry or snapshot from a peer holding one is refused.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest feature, user or host name accepted, in bytes of UTF-8.
pub const NAME_BYTES_MAX: usize = 256;

/// Which name of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameField {
    Feature,
    User,
    Host,
}

impl NameField {
    pub fn name(self) -> &'static str {
        match self {
            NameField::Feature => "feature",
            NameField::User => "user",
            NameField::Host => "host",
        }
    }
}

/// What is wrong with a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameProblem {
    /// Longer than [`NAME_BYTES_MAX`] bytes.
    TooLong,
    /// Holds a control character or a bidirectional text control.
    ControlCharacter,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::TooLong => write!(f, "longer than {NAME_BYTES_MAX} bytes"),
            NameProblem::ControlCharacter => f.write_str("holds a control character"),
        }
    }
}

/// Checks one name.
pub fn check(name: &str) -> Result<(), NameProblem> {
    if name.len() > NAME_BYTES_MAX {
        return Err(NameProblem::TooLong);
    }
    if name.chars().any(is_forbidden) {
        return Err(NameProblem::ControlCharacter);
    }
    Ok(())
}

/// Checks a request's three names, naming the first bad one.
pub fn check_all(feature: &str, user: &str, host: &str) -> Result<(), (NameField, NameProblem)> {
    check(feature).map_err(|p| (NameField::Feature, p))?;
    check(user).map_err(|p| (NameField::User, p))?;
    check(host).map_err(|p| (NameField::Host, p))
}

/// Control characters (C0, DEL, C1) and the bidirectional controls that make text read
/// differently from what it holds (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069).
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_up_to_the_limit_of_printable_text_pass() {
        assert_eq!(check(""), Ok(()));
        assert_eq!(check("ann@ws-1.example.com"), Ok(()));
        assert_eq!(check("José Müller"), Ok(()));
        assert_eq!(check(&"a".repeat(NAME_BYTES_MAX)), Ok(()));
    }

    #[test]
    fn long_names_and_control_characters_are_refused() {
        assert_eq!(
            check(&"a".repeat(NAME_BYTES_MAX + 1)),
            Err(NameProblem::TooLong)
        );
        // Multi-byte characters count in bytes, not characters.
        assert_eq!(check(&"é".repeat(129)), Err(NameProblem::TooLong));
        for bad in [
            "a\u{1b}[2J",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "c1\u{9b}",
            "rlo\u{202e}x",
        ] {
            assert_eq!(check(bad), Err(NameProblem::ControlCharacter), "{bad:?}");
        }
    }

    #[test]
    fn the_first_bad_name_is_named() {
        assert_eq!(
            check_all("cad", "ann\n", "ws1\n"),
            Err((NameField::User, NameProblem::ControlCharacter))
        );
        assert_eq!(check_all("cad", "ann", "ws1"), Ok(()));
    }
}
