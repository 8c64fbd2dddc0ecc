//! Identifier newtypes shared by the whole project: server positions in the triad and
//! machine HostIDs. Bare integers and strings are not used for these, so a server id can
//! never be confused with a count or a port.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A server's position in the HAL triad: 1, 2 or 3, fixed by its place in the triad list.
///
/// The role follows from the position (DESIGN §2): #1 serves checkouts and borrows, #2
/// serves checkouts only while #1 is down, #3 never serves but completes the majority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct ServerId(u8);

impl TryFrom<u8> for ServerId {
    type Error = String;

    fn try_from(position: u8) -> Result<ServerId, String> {
        ServerId::new(position).ok_or_else(|| format!("server id {position} is not 1, 2 or 3"))
    }
}

impl From<ServerId> for u8 {
    fn from(id: ServerId) -> u8 {
        id.0
    }
}

impl ServerId {
    /// The primary server, #1.
    pub const PRIMARY: ServerId = ServerId(1);
    /// The secondary server, #2.
    pub const SECONDARY: ServerId = ServerId(2);
    /// The tie-breaker, #3.
    pub const TIEBREAKER: ServerId = ServerId(3);
    /// The three servers in role order.
    pub const ALL: [ServerId; 3] = [Self::PRIMARY, Self::SECONDARY, Self::TIEBREAKER];

    /// The server at `position` (1, 2 or 3), or `None` for any other number.
    pub fn new(position: u8) -> Option<ServerId> {
        (1..=3).contains(&position).then_some(ServerId(position))
    }

    /// The position, 1..=3.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The position as an index into a role-ordered list of three (0..=2).
    pub fn index(self) -> usize {
        usize::from(self.0.saturating_sub(1))
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A machine's HostID, the value a license can be locked to.
///
/// HostIDs compare case-insensitively (`0A1B2C` and `0a1b2c` are the same machine), so
/// the stored form is lower case. Allowed: 1 to [`HostId::CHARS_MAX`] characters of ASCII
/// letters, digits and `- _ : .`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(String);

impl HostId {
    /// The longest HostID accepted.
    pub const CHARS_MAX: usize = 64;

    /// Parses a HostID, or says what is wrong with `text`.
    pub fn parse(text: &str) -> Result<HostId, &'static str> {
        if text.is_empty() {
            return Err("a HostID cannot be empty");
        }
        if text.len() > Self::CHARS_MAX {
            return Err("a HostID has at most 64 characters");
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.');
        if !text.chars().all(allowed) {
            return Err("a HostID has only ASCII letters, digits and - _ : .");
        }
        Ok(HostId(text.to_ascii_lowercase()))
    }

    /// The normalised (lower-case) text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_are_one_to_three() {
        assert_eq!(ServerId::new(0), None);
        assert_eq!(ServerId::new(4), None);
        assert_eq!(ServerId::new(2), Some(ServerId::SECONDARY));
        assert_eq!(ServerId::TIEBREAKER.index(), 2);
        assert_eq!(ServerId::PRIMARY.to_string(), "#1");
    }

    #[test]
    fn hostids_compare_case_insensitively() {
        assert_eq!(HostId::parse("0A1B2C"), HostId::parse("0a1b2c"));
        assert_eq!(
            HostId::parse("0A1B2C").map(|h| h.to_string()),
            Ok("0a1b2c".to_string())
        );
    }

    #[test]
    fn hostids_reject_empty_long_and_odd_characters() {
        assert!(HostId::parse("").is_err());
        assert!(HostId::parse(&"a".repeat(65)).is_err());
        assert!(HostId::parse(&"a".repeat(64)).is_ok());
        assert!(HostId::parse("ab cd").is_err());
        assert!(HostId::parse("ab/cd").is_err());
        assert!(HostId::parse("00:1b:44:11:3a:b7").is_ok());
    }
}
