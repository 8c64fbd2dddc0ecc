//! The license in force, changed without a restart: an administrator's push
//! ([`crate::protocol::Op::PushLicense`]) becomes a log entry, and every server switches
//! to the new license when it applies that entry, so all three change at the same index.
//!
//! The leader checks a pushed license whole before proposing it (it parses, it suits the
//! server's position, every feature is signed by the vendor key) and refuses it with the
//! reason otherwise. A server applying the entry parses it again to build its own rules
//! (its HostID decides which features it may serve) and reports what it cannot serve.
//!
//! A triad's first leader also puts its own license file in the log
//! ([`Command::AdoptLicense`]): from then on the log says which license the triad serves,
//! so servers started with different files still serve one license.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use super::{Output, Server, ServerEvent};
use crate::HostId;
use crate::catalog::Catalog;
use crate::license::{License, ServeMode, ServerPosition, canonical_bytes, limits, parse};
use crate::protocol::{LogIndex, ReplyResult};
use crate::seats::Command;

/// What a server needs to take a license from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licensing {
    /// This machine's HostID: features locked to another one are not served here.
    pub hostid: HostId,
    /// The vendor's public key: every feature of a pushed license must carry its
    /// signature. `None` (the simulator's unsigned licenses): signatures are not checked.
    pub vendor_key: Option<VerifyingKey>,
    /// The license file this server started with, which a first leader puts in the log.
    pub file: Option<Arc<str>>,
}

/// The most bytes of a refusal's reason (a license with many errors lists the first).
const REASON_BYTES_MAX: usize = 8 * 1024;

/// How a server sees a license it is to serve.
#[derive(Debug)]
pub(super) struct Built {
    pub catalog: Catalog,
    /// What this server cannot serve of it, in words for its log and status.
    pub problems: Vec<String>,
}

/// The source name a pushed license's messages use.
const SOURCE: &str = "pushed license";

impl Licensing {
    /// The rules for `text` on the server at `position`. With `strict` (the leader
    /// checking a push) a feature without a valid signature refuses the whole license;
    /// otherwise (a server applying a committed entry) such a feature is left out and
    /// reported.
    pub(super) fn build(
        &self,
        text: &str,
        position: ServerPosition,
        strict: bool,
    ) -> Result<Built, String> {
        if text.len() > limits::FILE_BYTES_MAX {
            return Err(format!(
                "the license is {} bytes, over the limit of {}",
                text.len(),
                limits::FILE_BYTES_MAX
            ));
        }
        let mut license = parse(SOURCE, text.as_bytes()).map_err(|e| e.to_string())?;
        let mode = license.serve_mode().map_err(|e| e.to_string())?;
        match (mode, position) {
            (ServeMode::Hal, ServerPosition::Single) => {
                return Err(
                    "the license has HAL features (HAL_SERVERS = 3), but this is a \
                            single server: a HAL license needs a triad"
                        .into(),
                );
            }
            (ServeMode::Single, ServerPosition::Triad(_)) => {
                return Err("the license has normal network features (no HAL_SERVERS), \
                            but this is a HAL triad: it serves only HAL features"
                    .into());
            }
            _ => {}
        }
        let mut problems = Vec::new();
        if let Some(key) = &self.vendor_key {
            let bad: Vec<(String, String)> = license
                .verify(key)
                .into_iter()
                .filter_map(|(f, verdict)| {
                    let why = verdict.err()?;
                    Some((
                        f.name.to_string(),
                        format!("{SOURCE}:{}: FEATURE {}: {why}", f.origin.line, f.name),
                    ))
                })
                .collect();
            if strict && !bad.is_empty() {
                let lines: Vec<&str> = bad.iter().map(|(_, why)| why.as_str()).collect();
                return Err(lines.join("\n"));
            }
            if bad.len() == license.features.len() {
                return Err("no feature carries a valid signature by the vendor key".into());
            }
            license
                .features
                .retain(|f| !bad.iter().any(|(name, _)| name == f.name.as_str()));
            problems.extend(bad.into_iter().map(|(_, why)| format!("{why}; not served")));
        }
        for feature in &license.features {
            if let Err(error) = feature.check_hostid(position, &self.hostid) {
                problems.push(format!("{error}; this server refuses it (hostid_mismatch)"));
            }
        }
        Ok(Built {
            catalog: Catalog::new(&license, position, &self.hostid),
            problems,
        })
    }
}

/// Whether two license texts have the same terms (each feature's canonical form, in
/// order): a reformatted file or new comments are no change.
fn same_terms(a: &str, b: &str) -> bool {
    let terms = |text: &str| {
        parse(SOURCE, text.as_bytes()).ok().map(|license: License| {
            license
                .features
                .iter()
                .map(canonical_bytes)
                .collect::<Vec<_>>()
        })
    };
    match (terms(a), terms(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `reason` cut to [`REASON_BYTES_MAX`] at a character boundary.
fn bounded(mut reason: String) -> String {
    if reason.len() > REASON_BYTES_MAX {
        let end = (0..=REASON_BYTES_MAX)
            .rev()
            .find(|&i| reason.is_char_boundary(i))
            .unwrap_or(0);
        reason.truncate(end);
        reason.push_str("\n(cut short)");
    }
    reason
}

impl Server {
    /// The license text in force: the log's, else this server's own file.
    pub fn license_text(&self) -> Option<&Arc<str>> {
        match self.seats.license() {
            Some(license) => Some(&license.text),
            None => self.config.licensing.as_ref()?.file.as_ref(),
        }
    }

    /// The leader's answer to a push: the command to propose, or the reply to send now
    /// (refused, or no change).
    pub(super) fn check_push(&self, text: &Arc<str>) -> Result<(), ReplyResult> {
        let refused = |reason: String| ReplyResult::LicenseRefused {
            reason: bounded(reason),
        };
        let Some(licensing) = &self.config.licensing else {
            return Err(refused(
                "this server was started without what a license push needs (its HostID \
                 and the vendor key)"
                    .into(),
            ));
        };
        // The cheap checks first: the whole check of a large license takes a while.
        if self.license_in_flight() {
            return Err(refused(
                "another license push is being committed: push again once it is".into(),
            ));
        }
        if self
            .license_text()
            .is_some_and(|current| same_terms(current, text))
        {
            return Err(ReplyResult::LicensePushed {
                index: self.seats.license().map_or(LogIndex(0), |l| l.index),
                changed: false,
            });
        }
        licensing
            .build(text, self.config.position, true)
            .map_err(refused)?;
        Ok(())
    }

    /// The leader's check of an options push: `Err` is the reply to send now (refused
    /// with every mistake of the file, or no change).
    pub(super) fn check_options_push(&self, text: &Arc<str>) -> Result<(), ReplyResult> {
        let features: Vec<&str> = self.catalog.iter().map(|(name, _)| name).collect();
        if let Err(errors) = crate::options::parse("pushed options", text, &features) {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(ReplyResult::OptionsRefused {
                reason: bounded(lines.join("\n")),
            });
        }
        let current = self.seats.options();
        let same = match current {
            Some(current) => *current.text == **text,
            None => text.trim().is_empty(),
        };
        if same {
            return Err(ReplyResult::OptionsPushed {
                index: current.map_or(LogIndex(0), |o| o.index),
                changed: false,
            });
        }
        Ok(())
    }

    /// Whether the log holds a license entry not applied yet.
    fn license_in_flight(&self) -> bool {
        (self.applied.0.saturating_add(1)..=self.log.last_index().0).any(|index| {
            self.log.get(LogIndex(index)).is_some_and(|e| {
                matches!(
                    e.command,
                    Command::License { .. } | Command::AdoptLicense { .. }
                )
            })
        })
    }

    /// As a new leader whose log has no license yet, the command that puts this server's
    /// own license file in it.
    pub(super) fn license_to_adopt(&self) -> Option<Command> {
        let file = self.config.licensing.as_ref()?.file.clone()?;
        if self.seats.license().is_some() || self.license_in_flight() {
            return None;
        }
        Some(Command::AdoptLicense {
            text: file,
            by: self.id(),
        })
    }

    /// Switches to the license in the applied state if it took effect at `index` (or, with
    /// `None`, whatever license the state holds: at start and after a snapshot), and
    /// reports it (`restart`: as the server starts).
    pub(super) fn take_license(&mut self, index: Option<LogIndex>, restart: bool) {
        let Some(license) = self.seats.license().cloned() else {
            return;
        };
        if index.is_some_and(|i| i != license.index) {
            return;
        }
        let Some(licensing) = &self.config.licensing else {
            return;
        };
        let serving = match licensing.build(&license.text, self.config.position, false) {
            Ok(built) => {
                self.catalog = built.catalog;
                Ok(built.problems)
            }
            Err(why) => Err(why),
        };
        self.push(Output::Event(ServerEvent::LicenseChanged {
            index: license.index,
            text: license.text,
            by: license.by,
            serving,
            restart,
        }));
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::ServerId;
    use crate::protocol::{ClientId, Denial, Op, RequestSeq, ServerReply};
    use crate::server::testkit::{Driver, append, at, checkout, noop};
    use crate::server::{Config, Durable};
    use crate::timing::Timing;

    fn vendor() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// A signed license of `cad` with `count` seats (a HAL one for a triad); `hostid`
    /// locks it to machines.
    fn license(count: u32, hal: bool, hostid: Option<&str>) -> Arc<str> {
        let mut text = format!("FEATURE cad {{\n VENDOR = acme\n COUNT = {count}\n BORROW = 24\n");
        if hal {
            text.push_str(" HAL_SERVERS = 3\n");
        }
        if let Some(hostid) = hostid {
            text.push_str(&format!(" HOSTID = {hostid}\n"));
        }
        text.push_str("}\n");
        let mut parsed = parse("test", text.as_bytes()).unwrap();
        parsed.sign(&vendor());
        parsed.to_text().into()
    }

    fn licensing(file: Arc<str>) -> Licensing {
        Licensing {
            hostid: HostId::parse("aa").unwrap(),
            vendor_key: Some(vendor().verifying_key()),
            file: Some(file),
        }
    }

    /// A single server started with a file of `count` seats, leading, its adopted
    /// license applied.
    fn single(count: u32) -> Driver {
        let mut config = Config::single(Timing::lan());
        config.licensing = Some(licensing(license(count, false, None)));
        let mut driver = Driver::with_config(config);
        driver.tick_to(10);
        driver
    }

    fn push(driver: &mut Driver, seq: u64, text: Arc<str>) -> Vec<Output> {
        let op = Op::PushLicense {
            text,
            by: "root@admin".into(),
        };
        driver.ask(900, seq, op)
    }

    fn replies(outputs: &[Output]) -> Vec<ReplyResult> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Reply(ServerReply { result, .. }) => Some(result.clone()),
                _ => None,
            })
            .collect()
    }

    fn license_events(outputs: &[Output]) -> Vec<(LogIndex, Result<Vec<String>, String>)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(ServerEvent::LicenseChanged { index, serving, .. }) => {
                    Some((*index, serving.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_first_leader_puts_its_license_file_in_the_log() {
        let driver = single(2);
        let license = driver.server.seats().license().expect("adopted");
        assert_eq!(&*license.by, "server #1");
        assert_eq!(driver.server.catalog().count("cad"), Some(2));
        assert_eq!(driver.server.license_text(), Some(&license.text));
    }

    #[test]
    fn a_pushed_license_takes_effect_when_its_entry_applies() {
        let mut driver = single(2);
        let outputs = push(&mut driver, 1, license(7, false, None));
        let index = driver.server.applied_index();
        assert_eq!(
            replies(&outputs),
            [ReplyResult::LicensePushed {
                index,
                changed: true
            }]
        );
        assert_eq!(license_events(&outputs), [(index, Ok(vec![]))]);
        assert_eq!(driver.server.catalog().count("cad"), Some(7));
        assert_eq!(&*driver.server.seats().license().unwrap().by, "root@admin");
        // The same terms again: nothing proposed, the index of the one in force.
        let last = driver.server.last_index();
        let outputs = push(&mut driver, 2, license(7, false, None));
        assert_eq!(
            replies(&outputs),
            [ReplyResult::LicensePushed {
                index,
                changed: false
            }]
        );
        assert_eq!(driver.server.last_index(), last);
    }

    #[test]
    fn a_license_that_does_not_hold_is_refused_with_the_reason() {
        let mut driver = single(2);
        let refused = |outputs: &[Output]| match replies(outputs).as_slice() {
            [ReplyResult::LicenseRefused { reason }] => reason.clone(),
            other => panic!("not refused: {other:?}"),
        };
        let unsigned: Arc<str> = "FEATURE cad {\n VENDOR = acme\n COUNT = 9\n}\n".into();
        let reason = refused(&push(&mut driver, 1, unsigned));
        assert!(reason.contains("pushed license:1: FEATURE cad"), "{reason}");
        assert!(reason.contains("no KEY"), "{reason}");
        let reason = refused(&push(&mut driver, 2, license(9, true, None)));
        assert!(reason.contains("single server"), "{reason}");
        let reason = refused(&push(&mut driver, 3, "FEATURE {\n".into()));
        assert!(reason.contains("pushed license:1"), "{reason}");
        let huge: Arc<str> = "#".repeat(limits::FILE_BYTES_MAX + 1).into();
        let reason = refused(&push(&mut driver, 4, huge));
        assert!(reason.contains("over the limit"), "{reason}");
        assert_eq!(driver.server.catalog().count("cad"), Some(2));
    }

    #[test]
    fn a_lowered_count_keeps_the_seats_and_grants_nothing_until_below_it() {
        let mut driver = single(3);
        let mut handles = Vec::new();
        for client in 1..=3 {
            match replies(&driver.ask(client, 1, checkout())).as_slice() {
                [ReplyResult::Granted { handle, .. }] => handles.push(*handle),
                other => panic!("{other:?}"),
            }
        }
        push(&mut driver, 1, license(1, false, None));
        assert_eq!(driver.server.seats().used("cad"), 3, "held seats are kept");
        let denied = ReplyResult::Denied(Denial::AllInUse { used: 3, count: 1 });
        assert_eq!(replies(&driver.ask(4, 1, checkout())), [denied]);
        for (client, handle) in (1..=2).zip(&handles) {
            driver.ask(client, 2, Op::Checkin { handle: *handle });
        }
        let denied = ReplyResult::Denied(Denial::AllInUse { used: 1, count: 1 });
        assert_eq!(replies(&driver.ask(4, 2, checkout())), [denied]);
        driver.ask(3, 2, Op::Checkin { handle: handles[2] });
        assert!(matches!(
            replies(&driver.ask(4, 3, checkout())).as_slice(),
            [ReplyResult::Granted { .. }]
        ));
    }

    #[test]
    fn a_restarted_server_serves_the_license_in_its_log() {
        let mut driver = single(2);
        push(&mut driver, 1, license(6, false, None));
        // The whole log, as the server's disk holds it.
        let entries: Vec<_> = (1..=driver.server.last_index().0)
            .map(|i| driver.server.log.get(LogIndex(i)).unwrap().clone())
            .collect();
        let durable = Durable {
            term: driver.server.term(),
            voted_for: Some(ServerId::PRIMARY),
            snapshot: None,
            entries,
        };
        let config = driver.server.config().clone();
        // Started with the old catalog (its file says 2), it serves the log's license
        // once the entry is applied again; a snapshot carries it.
        let mut restarted =
            Server::new(config, crate::server::testkit::catalog(), durable, at(200));
        let mut outputs: Vec<Output> = std::iter::from_fn(|| restarted.poll_output()).collect();
        restarted.handle_timeout(at(300));
        outputs.extend(std::iter::from_fn(|| restarted.poll_output()));
        assert_eq!(restarted.catalog().count("cad"), Some(6));
        assert!(!license_events(&outputs).is_empty());
        let snapshot = restarted.current_snapshot().unwrap();
        let durable = Durable {
            snapshot: Some(snapshot),
            ..Durable::default()
        };
        let config = restarted.config().clone();
        let mut again = Server::new(config, crate::server::testkit::catalog(), durable, at(400));
        assert_eq!(again.catalog().count("cad"), Some(6));
        let outputs: Vec<Output> = std::iter::from_fn(|| again.poll_output()).collect();
        assert_eq!(license_events(&outputs).len(), 1, "reported at start");
    }

    #[test]
    fn a_follower_switches_at_the_entry_and_says_what_its_hostid_cannot_serve() {
        let mut config = Config::triad(ServerId::SECONDARY, Timing::lan());
        config.licensing = Some(licensing(license(2, true, None)));
        let mut driver = Driver::with_config(config);
        // Locked to another machine for #2's slot.
        let locked = license(4, true, Some("aa bb cc"));
        let entry = |command| {
            Arc::new(crate::protocol::Entry {
                term: crate::protocol::Term(1),
                command,
            })
        };
        let pushed = entry(Command::License {
            client: ClientId(900),
            seq: RequestSeq(1),
            text: locked,
            by: "root@admin".into(),
        });
        let outputs = driver.hear_in(
            ServerId::PRIMARY,
            crate::protocol::Term(1),
            append((0, 0), vec![noop(1), pushed], 2),
        );
        let events = license_events(&outputs);
        assert_eq!(events.len(), 1, "{outputs:?}");
        assert_eq!(events[0].0, LogIndex(2));
        let problems = events[0].1.as_ref().unwrap();
        assert!(
            problems.iter().any(|p| p.contains("hostid_mismatch")),
            "{problems:?}"
        );
        assert_eq!(driver.server.catalog().count("cad"), Some(4));
        assert_eq!(
            driver.server.catalog().check("cad", at(0).wall, None).err(),
            Some(Denial::HostIdMismatch)
        );
    }

    fn checkout_as(driver: &mut Driver, client: u64, user: &str) -> ReplyResult {
        let op = Op::Checkout {
            feature: "cad".into(),
            user: user.into(),
            host: "ws1".into(),
        };
        let outputs = driver.ask(client, 1, op);
        replies(&outputs).pop().expect("answered")
    }

    fn push_options(driver: &mut Driver, seq: u64, text: &str) -> ReplyResult {
        let op = Op::PushOptions {
            text: text.into(),
            by: "root@admin".into(),
        };
        replies(&driver.ask(900, seq, op)).pop().expect("answered")
    }

    fn denied(reason: Denial) -> ReplyResult {
        ReplyResult::Denied(reason)
    }

    #[test]
    fn an_options_file_with_mistakes_is_refused_with_each_line() {
        let mut driver = single(3);
        let reply = push_options(
            &mut driver,
            1,
            "GROUP d ann\nINCLUD cad USER ann\nMAX 1 cax USER bob\n",
        );
        let ReplyResult::OptionsRefused { reason } = reply else {
            panic!("{reply:?}");
        };
        assert!(
            reason.contains("pushed options:2: unknown keyword `INCLUD` (did you mean `INCLUDE`?)"),
            "{reason}"
        );
        assert!(
            reason.contains(
                "pushed options:3: the license has no feature `cax` (did you mean `cad`?)"
            ),
            "{reason}"
        );
        assert!(driver.server.seats().options().is_none());
    }

    #[test]
    fn pushed_options_refuse_each_by_its_own_reason() {
        let mut driver = single(4);
        let text = "GROUP designers ann\nEXCLUDE cad USER mallory\nMAX 1 cad USER bob\nRESERVE 1 cad GROUP designers\n";
        let reply = push_options(&mut driver, 1, text);
        assert!(
            matches!(reply, ReplyResult::OptionsPushed { changed: true, .. }),
            "{reply:?}"
        );
        assert_eq!(
            checkout_as(&mut driver, 1, "mallory"),
            denied(Denial::Excluded)
        );
        assert!(matches!(
            checkout_as(&mut driver, 2, "bob"),
            ReplyResult::Granted { .. }
        ));
        assert_eq!(checkout_as(&mut driver, 3, "bob"), denied(Denial::OverMax));
        assert!(matches!(
            checkout_as(&mut driver, 4, "carl"),
            ReplyResult::Granted { .. }
        ));
        // Two of four free, one kept for the designers: dora takes the other.
        assert!(matches!(
            checkout_as(&mut driver, 5, "dora"),
            ReplyResult::Granted { .. }
        ));
        assert_eq!(
            checkout_as(&mut driver, 6, "emil"),
            denied(Denial::Reserved)
        );
        assert!(matches!(
            checkout_as(&mut driver, 7, "ann"),
            ReplyResult::Granted { .. }
        ));
        // The same file again is no change; another replaces it; an empty one clears it.
        let again = push_options(&mut driver, 2, text);
        assert!(
            matches!(again, ReplyResult::OptionsPushed { changed: false, .. }),
            "{again:?}"
        );
        push_options(&mut driver, 3, "INCLUDE cad USER ann\n");
        let mut more = single(4);
        push_options(&mut more, 1, "INCLUDE cad USER ann\n");
        assert_eq!(
            checkout_as(&mut more, 1, "bob"),
            denied(Denial::NotIncluded)
        );
        assert!(matches!(
            checkout_as(&mut more, 2, "ann"),
            ReplyResult::Granted { .. }
        ));
        let cleared = push_options(&mut more, 2, "");
        assert!(
            matches!(cleared, ReplyResult::OptionsPushed { changed: true, .. }),
            "{cleared:?}"
        );
        assert!(more.server.seats().options().is_none());
        assert!(matches!(
            checkout_as(&mut more, 3, "bob"),
            ReplyResult::Granted { .. }
        ));
    }

    #[test]
    fn a_borrow_longer_than_the_options_allow_is_refused_as_such() {
        let mut driver = single(3);
        push_options(&mut driver, 1, "MAX_BORROW_HOURS cad 4\n");
        let borrow = |hours| Op::Borrow {
            feature: "cad".into(),
            user: "ann".into(),
            host: "ws1".into(),
            hours,
        };
        let long = replies(&driver.ask(1, 1, borrow(8))).pop();
        assert_eq!(long, Some(denied(Denial::BorrowOverMax)));
        let short = replies(&driver.ask(2, 1, borrow(4))).pop();
        assert!(
            matches!(short, Some(ReplyResult::Granted { .. })),
            "{short:?}"
        );
        // Beyond the license's own BORROW it stays the license's refusal.
        let mut plain = single(3);
        let over = replies(&plain.ask(1, 1, borrow(48))).pop();
        assert_eq!(over, Some(denied(Denial::BorrowNotAllowed)));
    }

    /// The options are applied where the grant applies, too: a follower that applies two
    /// grants to one user past a MAX refuses the second, as the leader would have.
    #[test]
    fn every_server_applies_the_options_to_each_grant_alike() {
        use crate::seats::{Outcome, Seats};
        use crate::time::WallTime;
        let mut seats = Seats::new();
        let options = Command::Options {
            client: ClientId(900),
            seq: RequestSeq(1),
            text: "MAX 1 cad USER bob\n".into(),
            by: "root@admin".into(),
        };
        seats.apply(LogIndex(1), &options, |_| Some(5));
        let grant = |client: u64| Command::Grant {
            client: ClientId(client),
            seq: RequestSeq(1),
            feature: "cad".into(),
            user: "bob".into(),
            host: "ws1".into(),
            borrow_end: None,
            by: ServerId::PRIMARY,
            at: WallTime(0),
        };
        let first = seats.apply(LogIndex(2), &grant(1), |_| Some(5));
        assert!(matches!(first, Some(Outcome::Granted { .. })), "{first:?}");
        let second = seats.apply(LogIndex(3), &grant(2), |_| Some(5));
        assert_eq!(second, Some(Outcome::Denied(Denial::OverMax)));
        assert_eq!(seats.used("cad"), 1);
    }
}
