//! The options file: an administrator's rules for who may use which feature, in the
//! syntax FlexNet's options files use (DESIGN §11). One rule a line; `#` starts a
//! comment; keywords are upper case, names are as the servers record them.
//!
//! ```text
//! GROUP designers ann bob carl          # users
//! HOST_GROUP lab ws1 ws2                # hosts
//! INCLUDE cad GROUP designers           # only these may use cad (any INCLUDE for a
//! INCLUDE cad USER root                 #   feature makes it a list of who may)
//! EXCLUDE cad HOST_GROUP lab            # these may not
//! RESERVE 2 cad GROUP designers         # two seats of cad kept for the group
//! MAX 1 cad USER bob                    # bob holds at most one seat of cad
//! MAX_BORROW_HOURS cad 24               # borrows of cad last at most a day
//! ```
//!
//! The parser reports every mistake of a file at once, each with its line and what would
//! be right (a misspelt keyword or an unknown feature gets the nearest name). The file is
//! parsed here, in the pure core, so that every server reads a pushed file the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest options file read.
pub const FILE_BYTES_MAX: usize = 1024 * 1024;
/// The most names one group lists.
pub const GROUP_MEMBERS_MAX: usize = 10_000;

/// Who a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Who {
    User(String),
    Host(String),
    /// A `GROUP` of users.
    Group(String),
    /// A `HOST_GROUP` of hosts.
    HostGroup(String),
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::User(name) => write!(f, "USER {name}"),
            Who::Host(name) => write!(f, "HOST {name}"),
            Who::Group(name) => write!(f, "GROUP {name}"),
            Who::HostGroup(name) => write!(f, "HOST_GROUP {name}"),
        }
    }
}

/// One rule, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    Include {
        feature: String,
        who: Who,
    },
    Exclude {
        feature: String,
        who: Who,
    },
    Reserve {
        count: u32,
        feature: String,
        who: Who,
    },
    Max {
        count: u32,
        feature: String,
        who: Who,
    },
    MaxBorrowHours {
        feature: String,
        hours: u32,
    },
}

/// A parsed options file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    groups: BTreeMap<String, BTreeSet<String>>,
    host_groups: BTreeMap<String, BTreeSet<String>>,
    /// Each rule and its line, in file order.
    rules: Vec<(u32, Rule)>,
}

/// One mistake in an options file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {problem}")]
pub struct OptionsError {
    pub source_name: String,
    /// 1-based; 0 for the file as a whole.
    pub line: u32,
    pub problem: String,
}

/// Why a request is refused by the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The feature has INCLUDE rules, and none names this user or host.
    NotIncluded,
    /// An EXCLUDE rule names this user or host (on `line`).
    Excluded { line: u32 },
    /// A MAX rule (on `line`) that names this user or host allows no more seats.
    OverMax { line: u32 },
    /// The free seats are kept for others by a RESERVE rule (on `line`).
    Reserved { line: u32 },
}

/// The most rules, and the most groups, one options file may have (a file of the largest
/// size holds fewer).
pub const RULES_MAX: usize = 100_000;

const KEYWORDS: &[&str] = &[
    "GROUP",
    "HOST_GROUP",
    "INCLUDE",
    "EXCLUDE",
    "RESERVE",
    "MAX",
    "MAX_BORROW_HOURS",
];
const WHO: &[&str] = &["USER", "HOST", "GROUP", "HOST_GROUP"];

/// The name among `names` nearest to `word`, if near enough to be a likely misspelling.
fn nearest<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .map(|name| (strsim::damerau_levenshtein(word, name), name))
        .filter(|(distance, name)| *distance <= 2.max(name.len() / 3))
        .min()
        .map(|(_, name)| name)
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
}

/// Reads an options file (`source_name` names it in errors) for a license with
/// `features`. Returns every mistake, in line order, if there is any.
pub fn parse(
    source_name: &str,
    text: &str,
    features: &[&str],
) -> Result<Options, Vec<OptionsError>> {
    parse_with(source_name, text, Some(features))
}

/// Reads an options file that was checked against the license when it was pushed: as
/// [`parse`], but any feature name is taken (a later license may have dropped one), so
/// that every server reads the file in the log the same way, whatever license it serves.
pub fn parse_in_force(source_name: &str, text: &str) -> Result<Options, Vec<OptionsError>> {
    parse_with(source_name, text, None)
}

fn parse_with(
    source_name: &str,
    text: &str,
    features: Option<&[&str]>,
) -> Result<Options, Vec<OptionsError>> {
    let mut errors = Vec::new();
    let mut error = |line: u32, problem: String| {
        errors.push(OptionsError {
            source_name: source_name.to_string(),
            line,
            problem,
        });
    };
    if text.len() > FILE_BYTES_MAX {
        error(
            0,
            format!(
                "the file is {} bytes; an options file may have at most {FILE_BYTES_MAX}",
                text.len()
            ),
        );
        return Err(errors);
    }
    let mut options = Options::default();
    let mut defined: BTreeMap<(bool, String), u32> = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX);
        let content = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = content.split_whitespace().collect();
        let Some((&keyword, rest)) = words.split_first() else {
            continue;
        };
        if let Some(bad) = words
            .iter()
            .find_map(|w| crate::names::check(w).err().map(|p| (w, p)))
        {
            error(
                line,
                format!("the name `{}` {}", bad.0.escape_debug(), bad.1),
            );
            continue;
        }
        let result = match keyword {
            "GROUP" | "HOST_GROUP" => {
                let hosts = keyword == "HOST_GROUP";
                group(rest, keyword)
                    .map(|(name, members)| {
                        if let Some(first) = defined.insert((hosts, name.clone()), line) {
                            return Err(format!(
                                "{keyword} {name} is defined twice (first on line {first})"
                            ));
                        }
                        let groups = if hosts {
                            &mut options.host_groups
                        } else {
                            &mut options.groups
                        };
                        groups.insert(name, members);
                        Ok(())
                    })
                    .and_then(|r| r)
            }
            "INCLUDE" | "EXCLUDE" => rule_who(rest, keyword, features).map(|(feature, who)| {
                let rule = if keyword == "INCLUDE" {
                    Rule::Include { feature, who }
                } else {
                    Rule::Exclude { feature, who }
                };
                options.rules.push((line, rule));
            }),
            "RESERVE" | "MAX" => counted(rest, keyword, features).map(|(count, feature, who)| {
                let rule = if keyword == "RESERVE" {
                    Rule::Reserve {
                        count,
                        feature,
                        who,
                    }
                } else {
                    Rule::Max {
                        count,
                        feature,
                        who,
                    }
                };
                options.rules.push((line, rule));
            }),
            "MAX_BORROW_HOURS" => borrow_hours(rest, features).map(|(feature, hours)| {
                options
                    .rules
                    .push((line, Rule::MaxBorrowHours { feature, hours }));
            }),
            other => Err(format!(
                "unknown keyword `{other}`{}; an options file has {}",
                did_you_mean(nearest(
                    &other.to_ascii_uppercase(),
                    KEYWORDS.iter().copied()
                )),
                KEYWORDS.join(", ")
            )),
        };
        if let Err(problem) = result {
            error(line, problem);
        }
    }
    // Groups a rule names must be defined, anywhere in the file.
    for (line, rule) in &options.rules {
        let who = match rule {
            Rule::Include { who, .. }
            | Rule::Exclude { who, .. }
            | Rule::Reserve { who, .. }
            | Rule::Max { who, .. } => who,
            Rule::MaxBorrowHours { .. } => continue,
        };
        let (hosts, name) = match who {
            Who::Group(name) => (false, name),
            Who::HostGroup(name) => (true, name),
            _ => continue,
        };
        if !defined.contains_key(&(hosts, name.clone())) {
            let keyword = if hosts { "HOST_GROUP" } else { "GROUP" };
            let known = defined
                .keys()
                .filter(|(h, _)| *h == hosts)
                .map(|(_, n)| n.as_str());
            error(
                *line,
                format!(
                    "{keyword} {name} is not defined{}: add a line `{keyword} {name} <names>`",
                    did_you_mean(nearest(name, known))
                ),
            );
        }
    }
    errors.sort_by_key(|e| e.line);
    if errors.is_empty() {
        Ok(options)
    } else {
        Err(errors)
    }
}

/// `GROUP name member...`: the group's name and its members.
fn group(rest: &[&str], keyword: &str) -> Result<(String, BTreeSet<String>), String> {
    let Some((name, members)) = rest.split_first() else {
        return Err(format!(
            "{keyword} needs a name and its members, as in `{keyword} designers ann bob`"
        ));
    };
    if members.is_empty() {
        return Err(format!("{keyword} {name} lists no member"));
    }
    if members.len() > GROUP_MEMBERS_MAX {
        return Err(format!(
            "{keyword} {name} lists {} members; a group may list at most {GROUP_MEMBERS_MAX}",
            members.len()
        ));
    }
    Ok((
        name.to_string(),
        members.iter().map(|m| m.to_string()).collect(),
    ))
}

/// A feature this license has, or why not.
fn feature(name: &str, features: Option<&[&str]>) -> Result<String, String> {
    let Some(features) = features else {
        return Ok(name.to_string());
    };
    if features.contains(&name) {
        return Ok(name.to_string());
    }
    Err(format!(
        "the license has no feature `{name}`{}",
        did_you_mean(nearest(name, features.iter().copied()))
    ))
}

/// `USER ann`, `HOST ws1`, `GROUP designers` or `HOST_GROUP lab`.
fn who(words: &[&str], keyword: &str) -> Result<Who, String> {
    let example = "USER ann, HOST ws1, GROUP designers or HOST_GROUP lab";
    let [kind, name] = words else {
        return Err(format!("{keyword} names who after the feature: {example}"));
    };
    Ok(match *kind {
        "USER" => Who::User(name.to_string()),
        "HOST" => Who::Host(name.to_string()),
        "GROUP" => Who::Group(name.to_string()),
        "HOST_GROUP" => Who::HostGroup(name.to_string()),
        other => {
            return Err(format!(
                "`{other}` is not who a rule is about{}; say {example}",
                did_you_mean(nearest(&other.to_ascii_uppercase(), WHO.iter().copied()))
            ));
        }
    })
}

/// `feature USER ann` of an INCLUDE or EXCLUDE.
fn rule_who(
    rest: &[&str],
    keyword: &str,
    features: Option<&[&str]>,
) -> Result<(String, Who), String> {
    let Some((name, tail)) = rest.split_first() else {
        return Err(format!(
            "{keyword} needs a feature and who, as in `{keyword} cad USER ann`"
        ));
    };
    Ok((feature(name, features)?, who(tail, keyword)?))
}

/// A count of seats, from 1 to a million.
fn count(word: &str, keyword: &str) -> Result<u32, String> {
    word.parse::<u32>()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .ok_or_else(|| {
            format!("{keyword} takes a number of seats from 1 to 1000000 first, not `{word}`")
        })
}

/// `N feature USER ann` of a RESERVE or MAX.
fn counted(
    rest: &[&str],
    keyword: &str,
    features: Option<&[&str]>,
) -> Result<(u32, String, Who), String> {
    let Some((n, tail)) = rest.split_first() else {
        return Err(format!(
            "{keyword} needs a number, a feature and who, as in `{keyword} 2 cad GROUP designers`"
        ));
    };
    let count = count(n, keyword)?;
    let (feature, who) = rule_who(tail, keyword, features)?;
    Ok((count, feature, who))
}

/// `feature HOURS` of a MAX_BORROW_HOURS.
fn borrow_hours(rest: &[&str], features: Option<&[&str]>) -> Result<(String, u32), String> {
    let [name, hours] = rest else {
        return Err("MAX_BORROW_HOURS needs a feature and a number of hours, as in `MAX_BORROW_HOURS cad 24`".into());
    };
    let hours = hours
        .parse::<u32>()
        .ok()
        .filter(|h| (1..=8_760).contains(h))
        .ok_or_else(|| {
            format!("MAX_BORROW_HOURS takes hours from 1 to 8760 (a year), not `{hours}`")
        })?;
    Ok((feature(name, features)?, hours))
}

impl Options {
    /// Every rule and its line, in file order.
    pub fn rules(&self) -> impl Iterator<Item = (u32, &Rule)> {
        self.rules.iter().map(|(line, rule)| (*line, rule))
    }

    /// Whether `who` names `user` on `host` (a group: one of its members).
    pub fn names(&self, who: &Who, user: &str, host: &str) -> bool {
        match who {
            Who::User(name) => name == user,
            Who::Host(name) => name == host,
            Who::Group(name) => self
                .groups
                .get(name)
                .is_some_and(|members| members.contains(user)),
            Who::HostGroup(name) => self
                .host_groups
                .get(name)
                .is_some_and(|members| members.contains(host)),
        }
    }

    /// Whether `user` on `host` may use `feature` by its INCLUDE and EXCLUDE rules: an
    /// EXCLUDE that names them refuses; else, if the feature has INCLUDE rules, one must
    /// name them.
    pub fn admits(&self, feature: &str, user: &str, host: &str) -> Result<(), Refusal> {
        let mut included = None;
        for (line, rule) in &self.rules {
            match rule {
                Rule::Exclude { feature: f, who }
                    if f == feature && self.names(who, user, host) =>
                {
                    return Err(Refusal::Excluded { line: *line });
                }
                Rule::Include { feature: f, who } if f == feature => {
                    let named = self.names(who, user, host);
                    included = Some(included.unwrap_or(false) || named);
                }
                _ => {}
            }
        }
        match included {
            Some(false) => Err(Refusal::NotIncluded),
            _ => Ok(()),
        }
    }

    /// Whether `user` on `host` may take one more seat of `feature`, of which `free` are
    /// free (at least one), where `holders` are the user and host of each seat of the
    /// feature held now (walked once, and only when a MAX or RESERVE applies). In order: EXCLUDE and INCLUDE ([`Options::admits`]); a MAX that
    /// names them and is reached; then the RESERVE rules that do not name them: the
    /// seats they still keep (their count less what their holders hold) must leave one
    /// free seat for this request.
    pub fn grants<'a>(
        &self,
        feature: &str,
        (user, host): (&str, &str),
        free: u32,
        holders: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), Refusal> {
        self.admits(feature, user, host)?;
        // The rules that count seats for this request: a MAX that names it, a RESERVE
        // that does not. Their holders' seats are counted in one walk, and only if any.
        let counted: Vec<(u32, &Rule)> = self
            .rules
            .iter()
            .filter(|(_, rule)| match rule {
                Rule::Max {
                    feature: f, who, ..
                } => f == feature && self.names(who, user, host),
                Rule::Reserve {
                    feature: f, who, ..
                } => f == feature && !self.names(who, user, host),
                _ => false,
            })
            .map(|(line, rule)| (*line, rule))
            .collect();
        if counted.is_empty() {
            return Ok(());
        }
        let mut held = vec![0u32; counted.len()];
        for (holder_user, holder_host) in holders {
            for ((_, rule), n) in counted.iter().zip(held.iter_mut()) {
                let (Rule::Max { who, .. } | Rule::Reserve { who, .. }) = rule else {
                    continue;
                };
                if self.names(who, holder_user, holder_host) {
                    *n = n.saturating_add(1);
                }
            }
        }
        let mut kept: u32 = 0;
        let mut keeping = None;
        for ((line, rule), held) in counted.iter().zip(held) {
            match rule {
                Rule::Max { count, .. } if held >= *count => {
                    return Err(Refusal::OverMax { line: *line });
                }
                Rule::Reserve { count, .. } => {
                    let unmet = count.saturating_sub(held);
                    if unmet > 0 {
                        kept = kept.saturating_add(unmet);
                        keeping.get_or_insert(*line);
                    }
                }
                _ => {}
            }
        }
        match keeping {
            Some(line) if free <= kept => Err(Refusal::Reserved { line }),
            _ => Ok(()),
        }
    }

    /// Whether a file read from a peer's snapshot is within what a file can hold: its
    /// rules and groups within [`RULES_MAX`], each group within [`GROUP_MEMBERS_MAX`],
    /// every name within the rules of [`crate::names`].
    pub fn validate(&self) -> Result<(), String> {
        if self.rules.len() > RULES_MAX {
            return Err(format!(
                "{} rules, over the limit of {RULES_MAX}",
                self.rules.len()
            ));
        }
        for groups in [&self.groups, &self.host_groups] {
            if groups.len() > RULES_MAX {
                return Err(format!(
                    "{} groups, over the limit of {RULES_MAX}",
                    groups.len()
                ));
            }
            for (name, members) in groups {
                if members.len() > GROUP_MEMBERS_MAX {
                    return Err(format!("group {name} lists {} members", members.len()));
                }
                for name in std::iter::once(name).chain(members) {
                    crate::names::check(name).map_err(|p| format!("a group's name {p}"))?;
                }
            }
        }
        Ok(())
    }

    /// The longest borrow of `feature` the options allow, if they limit it (the lowest of
    /// its MAX_BORROW_HOURS lines).
    pub fn max_borrow_hours(&self, feature: &str) -> Option<u32> {
        self.rules
            .iter()
            .filter_map(|(_, rule)| match rule {
                Rule::MaxBorrowHours { feature: f, hours } if f == feature => Some(*hours),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEATURES: &[&str] = &["cad", "cam"];

    fn errors(text: &str) -> Vec<String> {
        match parse("site.opt", text, FEATURES) {
            Ok(options) => panic!("accepted: {options:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_file_of_every_rule_reads_and_decides() {
        let text = "# Brandvik's options\n\
                    GROUP designers ann bob carl\n\
                    HOST_GROUP lab ws1 ws2\n\
                    \n\
                    INCLUDE cad GROUP designers   # the designers\n\
                    INCLUDE cad USER root\n\
                    EXCLUDE cad HOST_GROUP lab\n\
                    RESERVE 2 cad GROUP designers\n\
                    MAX 1 cad USER bob\n\
                    MAX_BORROW_HOURS cad 24\n\
                    MAX_BORROW_HOURS cad 48\n";
        let options = parse("site.opt", text, FEATURES).unwrap();
        assert_eq!(options.rules().count(), 7);
        assert_eq!(options.admits("cad", "ann", "ws9"), Ok(()));
        assert_eq!(options.admits("cad", "root", "ws9"), Ok(()));
        assert_eq!(
            options.admits("cad", "eve", "ws9"),
            Err(Refusal::NotIncluded)
        );
        assert_eq!(
            options.admits("cad", "ann", "ws2"),
            Err(Refusal::Excluded { line: 7 })
        );
        // A feature without INCLUDE rules admits everyone not excluded.
        assert_eq!(options.admits("cam", "eve", "ws2"), Ok(()));
        assert_eq!(options.max_borrow_hours("cad"), Some(24));
        assert_eq!(options.max_borrow_hours("cam"), None);
        assert!(options.names(&Who::Group("designers".into()), "carl", "x"));
        assert!(!options.names(&Who::Group("designers".into()), "eve", "x"));
        let reserve = options.rules().find_map(|(line, rule)| match rule {
            Rule::Reserve { count, who, .. } => Some((line, *count, who.to_string())),
            _ => None,
        });
        assert_eq!(reserve, Some((8, 2, "GROUP designers".to_string())));
    }

    /// Every mistake at once, in line order, each with its line and what would be right.
    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let text = "INCLUED cad USER ann\n\
                    INCLUDE cdd USER ann\n\
                    EXCLUDE cad USR ann\n\
                    RESERVE two cad USER ann\n\
                    MAX 0 cad USER ann\n\
                    MAX_BORROW_HOURS cad 9000\n\
                    GROUP designers\n\
                    INCLUDE cad GROUP desigers\n\
                    GROUP team ann\n\
                    GROUP team bob\n\
                    EXCLUDE cad USER an\u{1b}n\n\
                    INCLUDE cad\n";
        let found = errors(text);
        let expected = [
            "site.opt:1: unknown keyword `INCLUED` (did you mean `INCLUDE`?)",
            "site.opt:2: the license has no feature `cdd` (did you mean `cad`?)",
            "site.opt:3: `USR` is not who a rule is about (did you mean `USER`?)",
            "site.opt:4: RESERVE takes a number of seats from 1 to 1000000 first, not `two`",
            "site.opt:5: MAX takes a number of seats from 1 to 1000000 first, not `0`",
            "site.opt:6: MAX_BORROW_HOURS takes hours from 1 to 8760 (a year), not `9000`",
            "site.opt:7: GROUP designers lists no member",
            "site.opt:8: GROUP desigers is not defined",
            "site.opt:10: GROUP team is defined twice (first on line 9)",
            "site.opt:11: the name `an\\u{1b}n`",
            "site.opt:12: INCLUDE names who after the feature",
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (got, want) in found.iter().zip(expected) {
            assert!(
                got.starts_with(want),
                "{got}\n  does not start with\n{want}"
            );
        }
        // The group nearest to a misspelt one is suggested when one is defined.
        let found = errors("GROUP designers ann\nINCLUDE cad GROUP desigers\n");
        assert!(found[0].contains("did you mean `designers`?"), "{found:?}");
    }

    #[test]
    fn a_file_too_large_is_refused_whole() {
        let text = "# x\n".repeat(FILE_BYTES_MAX / 4 + 1);
        let found = errors(&text);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("site.opt:0: the file is"), "{found:?}");
    }
}
