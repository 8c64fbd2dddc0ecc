//! The license model: what a parsed license file holds, with every value already
//! validated and normalised, so the rest of the project never sees raw text.

use std::fmt;
use std::ops::Range;

use time::Date;

use crate::HostId;

/// Limits on everything a license file can make us hold.
pub mod limits {
    /// The largest license file accepted, in bytes.
    pub const FILE_BYTES_MAX: usize = 1024 * 1024;
    /// The longest line accepted, in bytes.
    pub const LINE_BYTES_MAX: usize = 4096;
    /// The most features one file may hold.
    pub const FEATURES_MAX: usize = 10_000;
    /// The longest free-text value (LICENSEE, COMMENT), in characters.
    pub const TEXT_CHARS_MAX: usize = 1024;
    /// The longest feature name, vendor name or version, in characters.
    pub const NAME_CHARS_MAX: usize = 64;
    /// The largest COUNT.
    pub const COUNT_MAX: u32 = 2_147_483_647;
    /// The longest BORROW, in hours (one year).
    pub const BORROW_HOURS_MAX: u32 = 8760;
    /// The most HostIDs one HOSTID directive may list.
    pub const HOSTIDS_MAX: usize = 3;
    /// The most errors one parse reports before it stops.
    pub const ERRORS_MAX: usize = 50;
}

/// The directives a FEATURE block may hold, in the order the printer writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Directive {
    Vendor,
    Version,
    Count,
    HalServers,
    Borrow,
    HostId,
    Start,
    End,
    Licensee,
    Comment,
    Key,
}

impl Directive {
    /// Every directive, in printing order.
    pub const ALL: [Directive; 11] = [
        Directive::Vendor,
        Directive::Version,
        Directive::Count,
        Directive::HalServers,
        Directive::Borrow,
        Directive::HostId,
        Directive::Start,
        Directive::End,
        Directive::Licensee,
        Directive::Comment,
        Directive::Key,
    ];

    /// The keyword as written in a license file.
    pub fn keyword(self) -> &'static str {
        match self {
            Directive::Vendor => "VENDOR",
            Directive::Version => "VERSION",
            Directive::Count => "COUNT",
            Directive::HalServers => "HAL_SERVERS",
            Directive::Borrow => "BORROW",
            Directive::HostId => "HOSTID",
            Directive::Start => "START",
            Directive::End => "END",
            Directive::Licensee => "LICENSEE",
            Directive::Comment => "COMMENT",
            Directive::Key => "KEY",
        }
    }

    /// The directive written as `keyword` (exact, upper case), if any.
    pub fn from_keyword(keyword: &str) -> Option<Directive> {
        Directive::ALL.into_iter().find(|d| d.keyword() == keyword)
    }

    /// What a valid value looks like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Directive::Vendor => "a vendor name: 1 to 64 ASCII letters, digits, '_' or '-'",
            Directive::Version => "a version such as 2.0: numbers separated by dots",
            Directive::Count => "a whole number of seats from 1 to 2147483647",
            Directive::HalServers => "3 (a HAL triad has exactly three servers)",
            Directive::Borrow => "the longest borrow in hours, a whole number from 1 to 8760",
            Directive::HostId => "one HostID, or three in role order for a HAL feature",
            Directive::Start | Directive::End => "a date written YYYY-MM-DD, such as 2027-12-31",
            Directive::Licensee | Directive::Comment => "text, quoted if it holds '#' or '\"'",
            Directive::Key => {
                "the vendor's signature: 128 hex digits written by `hal-net license sign`"
            }
        }
    }
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// Checks a name-like token: 1 to [`limits::NAME_CHARS_MAX`] characters, the first a
/// letter, digit or `_`, the rest also `extra`; `charset` says so in words.
fn check_name(text: &str, extra: &[char], charset: &'static str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("it is empty");
    }
    if text.chars().count() > limits::NAME_CHARS_MAX {
        return Err("it is longer than 64 characters");
    }
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok {
        return Err("it must start with an ASCII letter, digit or '_'");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c)) {
        return Err(charset);
    }
    Ok(())
}

/// A feature name: 1 to 64 ASCII letters, digits, `_`, `-` and `.`, starting with a
/// letter, digit or `_`. Case is kept and significant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeatureName(String);

impl FeatureName {
    /// Parses a feature name, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<FeatureName, &'static str> {
        let charset = "it may hold only ASCII letters, digits, '_', '-' and '.'";
        check_name(text, &['-', '.'], charset)?;
        Ok(FeatureName(text.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FeatureName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A vendor name: 1 to 64 ASCII letters, digits, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vendor(String);

impl Vendor {
    /// Parses a vendor name, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Vendor, &'static str> {
        let charset = "it may hold only ASCII letters, digits, '_' and '-'";
        check_name(text, &['-'], charset)?;
        Ok(Vendor(text.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product version: numbers separated by dots (`2`, `2.0`, `10.4.1`), kept as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(String);

impl Version {
    /// Parses a version, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Version, &'static str> {
        if text.is_empty() || text.len() > limits::NAME_CHARS_MAX {
            return Err("it must have 1 to 64 characters");
        }
        let numeric = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !text.split('.').all(numeric) {
            return Err("it must be numbers separated by single dots");
        }
        Ok(Version(text.to_string()))
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A feature's signature: an ed25519 signature by the vendor over the feature's canonical
/// form (see [`super::canonical_bytes`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LicenseKey(pub [u8; 64]);

impl LicenseKey {
    /// Parses the 128 hex digits of a KEY value (either case).
    pub fn parse(text: &str) -> Result<LicenseKey, &'static str> {
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| "it must be exactly 128 hex digits (0-9, a-f)")?;
        Ok(LicenseKey(bytes))
    }
}

impl fmt::Display for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicenseKey({self})")
    }
}

/// Where a value is written in the source text: its line, and its bytes within that line
/// (quotes included). Lines are counted as the parser reads them: without the line ending,
/// and line 1 without a leading byte-order mark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueSpan {
    pub line: u32,
    pub bytes: Range<usize>,
}

/// Where a feature stands in its source text, for messages and for rewriting the text in
/// place (see [`super::sign_text`]). Not part of the license's meaning: [`Feature`]'s
/// equality ignores it, so a feature read from a file equals the same feature built in
/// code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The line of `FEATURE name` (1-based; 0 for a feature not read from text).
    pub line: u32,
    /// The line of the closing `}`.
    pub close_line: u32,
    /// Where the `KEY` directive's value is written, if there is one.
    pub key_span: Option<ValueSpan>,
    /// The indentation of the block's first directive, for lines added by [`super::sign_text`].
    pub indent: String,
}

/// One FEATURE block, validated. Two features are equal when they say the same thing,
/// wherever they were written: `origin` is not compared.
#[derive(Debug, Clone)]
pub struct Feature {
    pub name: FeatureName,
    pub vendor: Vendor,
    pub version: Option<Version>,
    /// Seats; `None` for an uncounted feature, which no license server serves.
    pub count: Option<u32>,
    /// `HAL_SERVERS = 3`: served by a HAL triad.
    pub hal: bool,
    /// The longest borrow allowed; `None` means borrowing is not allowed.
    pub borrow_hours_max: Option<u32>,
    /// Empty (not locked), one HostID (a single server) or three in role order (HAL).
    pub hostids: Vec<HostId>,
    /// First valid day, inclusive.
    pub start: Option<Date>,
    /// Last valid day, inclusive.
    pub end: Option<Date>,
    /// Free text, whitespace collapsed to single spaces.
    pub licensee: Option<String>,
    /// Free text, whitespace collapsed to single spaces.
    pub comment: Option<String>,
    pub key: Option<LicenseKey>,
    pub origin: Origin,
}

impl Feature {
    /// A feature with just a name and a vendor: uncounted, unsigned, no limits.
    pub fn new(name: FeatureName, vendor: Vendor) -> Feature {
        Feature {
            name,
            vendor,
            version: None,
            count: None,
            hal: false,
            borrow_hours_max: None,
            hostids: Vec::new(),
            start: None,
            end: None,
            licensee: None,
            comment: None,
            key: None,
            origin: Origin::default(),
        }
    }

    /// Where `today` falls in the feature's START–END window (both days inclusive).
    pub fn validity_on(&self, today: Date) -> Validity {
        match (self.start, self.end) {
            (Some(start), _) if today < start => Validity::NotYet { start },
            (_, Some(end)) if end < today => Validity::Expired { end },
            _ => Validity::InForce,
        }
    }

    /// Whether the license is in force on `today` (START and END inclusive).
    pub fn is_valid_on(&self, today: Date) -> bool {
        self.validity_on(today) == Validity::InForce
    }
}

impl PartialEq for Feature {
    fn eq(&self, other: &Feature) -> bool {
        // Destructured, so that a field added to Feature cannot be left out here unnoticed.
        let Feature {
            name,
            vendor,
            version,
            count,
            hal,
            borrow_hours_max,
            hostids,
            start,
            end,
            licensee,
            comment,
            key,
            origin: _,
        } = self;
        *name == other.name
            && *vendor == other.vendor
            && *version == other.version
            && *count == other.count
            && *hal == other.hal
            && *borrow_hours_max == other.borrow_hours_max
            && *hostids == other.hostids
            && *start == other.start
            && *end == other.end
            && *licensee == other.licensee
            && *comment == other.comment
            && *key == other.key
    }
}

impl Eq for Feature {}

/// Where a day falls in a feature's START–END window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Before START.
    NotYet { start: Date },
    /// On or after START (if any) and on or before END (if any).
    InForce,
    /// After END.
    Expired { end: Date },
}

/// A parsed license file: its features in file order, names unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    /// The name the text was read under (a path, usually), used in messages.
    pub source_name: String,
    pub features: Vec<Feature>,
}

impl License {
    /// The feature called `name`, if the license has it.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_allow_dots_and_dashes_but_not_spaces() {
        assert!(FeatureName::parse("cad_modeler-2.0").is_ok());
        assert!(FeatureName::parse("-cad").is_err());
        assert!(FeatureName::parse("cad modeler").is_err());
        assert!(FeatureName::parse("").is_err());
        assert!(FeatureName::parse(&"x".repeat(65)).is_err());
        assert_eq!(
            FeatureName::parse("a/b"),
            Err("it may hold only ASCII letters, digits, '_', '-' and '.'")
        );
    }

    #[test]
    fn vendors_do_not_allow_dots() {
        assert!(Vendor::parse("acme-soft").is_ok());
        assert!(Vendor::parse("acme.soft").is_err());
    }

    #[test]
    fn versions_are_dotted_numbers() {
        assert!(Version::parse("2.0").is_ok());
        assert!(Version::parse("10").is_ok());
        assert!(Version::parse("2.").is_err());
        assert!(Version::parse("2..0").is_err());
        assert!(Version::parse("v2").is_err());
    }

    #[test]
    fn keys_are_128_hex_digits() {
        let text = "ab".repeat(64);
        assert_eq!(LicenseKey::parse(&text).map(|k| k.to_string()), Ok(text));
        assert!(LicenseKey::parse(&"AB".repeat(64)).is_ok());
        assert!(LicenseKey::parse(&"ab".repeat(63)).is_err());
        assert!(LicenseKey::parse(&"zz".repeat(64)).is_err());
    }

    #[test]
    fn validity_dates_are_inclusive() {
        let day = |d| Date::from_calendar_date(2027, time::Month::March, d).ok();
        let mut f = Feature::new(
            FeatureName::parse("cad").unwrap(),
            Vendor::parse("acme").unwrap(),
        );
        f.start = day(10);
        f.end = day(20);
        assert!(!f.is_valid_on(day(9).unwrap()));
        assert!(f.is_valid_on(day(10).unwrap()));
        assert!(f.is_valid_on(day(20).unwrap()));
        assert!(!f.is_valid_on(day(21).unwrap()));
        assert_eq!(
            f.validity_on(day(9).unwrap()),
            Validity::NotYet {
                start: day(10).unwrap()
            }
        );
        assert_eq!(
            f.validity_on(day(21).unwrap()),
            Validity::Expired {
                end: day(20).unwrap()
            }
        );
    }

    #[test]
    fn where_a_feature_was_written_is_not_part_of_its_meaning() {
        let f = Feature::new(
            FeatureName::parse("cad").unwrap(),
            Vendor::parse("acme").unwrap(),
        );
        let mut moved = f.clone();
        moved.origin.line = 42;
        moved.origin.indent = "\t".to_string();
        assert_eq!(moved, f);
        let mut changed = f.clone();
        changed.count = Some(1);
        assert_ne!(changed, f);
    }
}
