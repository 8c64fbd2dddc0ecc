//! The scenario format: what a support engineer gets for a mistake (file, line, key and
//! the nearest valid word), that expectations and checks can fail, that one seed gives
//! one history, that a scenario written back reads the same, and that `--shrink` turns a
//! planted bug's violation into a minimal file that replays it.

use std::path::Path;
use std::time::Duration;

use hal_core::record::{ClientEventRecord, Entry, FaultKind, Impostor, Record};
use hal_sim::scenario::{self, Verdict};
use hal_sim::shrink;
use hal_sim::world::{Planted, WorldConfig};

const HEAD: &str = r#"name = "test"
story = "a test"

[license]
text = """
FEATURE cad
{
  VENDOR = acme
  COUNT = 2
  HAL_SERVERS = 3
  BORROW = 24
}
"""

[timing]
client_lease = "8s"
client_heartbeat = "2s"

[[clients]]
name = "alice"

[[clients]]
name = "eng"
count = 3
"#;

fn parse(body: &str) -> Result<scenario::Scenario, String> {
    let text = format!("{HEAD}{body}");
    scenario::parse("t.toml", &text, Path::new(".")).map_err(|e| e.to_string())
}

fn error(body: &str) -> String {
    match parse(body) {
        Ok(_) => panic!("accepted:\n{body}"),
        Err(message) => message,
    }
}

/// The line `body`'s line `n` (1-based) has in the whole file.
fn line(n: usize) -> usize {
    HEAD.lines().count() + n
}

#[test]
fn typos_name_the_line_and_key_and_suggest_the_nearest() {
    let message =
        error("\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_bi = 1\n");
    assert_eq!(
        message,
        format!(
            "t.toml:{}:1: granted_bi: unknown key in a step; did you mean 'granted_by'?",
            line(6)
        )
    );
    let message = error("\n[[steps]]\nat = \"1s\"\ncrsh = 1\n");
    assert!(
        message.ends_with("crsh: unknown key in a step; did you mean 'crash'?"),
        "{message}"
    );
    let message = error(
        "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\nborrow = \"cad\"\nhours = 2\ndenied = \"borow_unavailable\"\n",
    );
    assert!(
        message.starts_with(&format!("t.toml:{}:10: denied:", line(7))),
        "{message}"
    );
    assert!(
        message.ends_with("did you mean 'borrow_unavailable'?"),
        "{message}"
    );
    let message = error("\n[[steps]]\nat = \"1s\"\nclient = \"alise\"\ncheckout = \"cad\"\n");
    assert!(
        message.ends_with("no client 'alise'; did you mean 'alice'?"),
        "{message}"
    );
    let message = error("\n[[checks]]\nat = \"1s\"\nactiv = 1\n");
    assert!(
        message.ends_with("activ: unknown key in a check; did you mean 'active'?"),
        "{message}"
    );
    let message = error("\n[network]\nlatncy = \"3ms\"\n");
    assert!(
        message.ends_with("latncy: unknown key in [network]; did you mean 'latency'?"),
        "{message}"
    );
}

#[test]
fn every_mistake_of_a_file_is_reported_at_once_in_file_order() {
    let body = "
[network]
latncy = \"3ms\"

[[clients]]
name = \"bob\"
count = 0

[[steps]]
at = \"1s\"
client = \"bob\"
checkout = \"cad\"

[[steps]]
at = \"1s\"
client = \"alice\"
checkout = \"cam\"

[[steps]]
at = \"soon\"
crash = 1
colour = 2

[[checks]]
at = \"2s\"
activ = 1
";
    let message = error(body);
    let lines: Vec<&str> = message.lines().collect();
    let expected = [
        format!(
            "t.toml:{}:1: latncy: unknown key in [network]; did you mean 'latency'?",
            line(3)
        ),
        format!(
            "t.toml:{}:9: clients.count: 0 is not from 1 to 1000",
            line(7)
        ),
        // bob's steps are not refused as well: his entry's mistake is reported.
        format!(
            "t.toml:{}:1: feature: the license has no feature 'cam'; did you mean 'cad'?",
            line(15)
        ),
        format!(
            "t.toml:{}:1: colour: unknown key in a step; allowed: at, client, crash,",
            line(22)
        ),
        format!(
            "t.toml:{}:1: activ: unknown key in a check; did you mean 'active'?",
            line(26)
        ),
    ];
    assert_eq!(lines.len(), expected.len(), "{message}");
    for (line, expected) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(expected.as_str()),
            "expected {expected}\n in {message}"
        );
    }
}

/// Checks over a window and of a group, run for real: a failover is one change of the
/// active server and never two active at once; a busy group's requests are denied only
/// for want of seats and answered in time; how many of a group hold a seat.
#[test]
fn window_and_group_checks_are_judged_over_the_run() {
    let body = |changes: u32, reasons: &str| {
        format!(
            "
[[steps]]
at = \"1s\"
client = \"alice\"
checkout = \"cad\"

[[steps]]
at = \"2s\"
client = \"eng\"
busy = \"cad\"
until = \"25s\"
hold = \"2s\"

[[steps]]
at = \"10s\"
crash = 1

[[checks]]
at = \"5s\"
holders = {{ alice = 1, eng = 1 }}

[[checks]]
from = \"0s\"
until = \"30s\"
active_max = 1
active_changes_max = {changes}

[[checks]]
from = \"2s\"
until = \"25s\"
client = \"eng\"
denied_only = [{reasons}]
answered_within = \"8s\"
"
        )
    };
    let loaded = parse(&body(1, "\"all_in_use\"")).unwrap();
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:#?}", outcome.judged);
    let saw: Vec<&str> = outcome.judged.iter().map(|j| j.saw.as_str()).collect();
    assert!(saw.contains(&"1 hold a seat (alice)"), "{saw:?}");
    assert!(
        saw.iter()
            .any(|s| s.starts_with("1 change(s): #1 to #2 at 1")),
        "{saw:?}"
    );
    let denials = saw.iter().find(|s| s.contains("all as allowed")).unwrap();
    assert!(
        !denials.contains(", 0 denied"),
        "the group was denied seats: {denials}"
    );

    // No change allowed, and denials only for want of a majority: both fail, and say why.
    let strict = parse(&body(0, "\"no_majority\"")).unwrap();
    let outcome = scenario::run(&strict, 1, None);
    let unmet: Vec<String> = outcome.unmet().collect();
    assert_eq!(outcome.verdict(), Verdict::Unmet(2), "{unmet:#?}");
    assert!(
        unmet[0].contains("the active server changes at most 0 time(s); saw 1 change(s)"),
        "{unmet:?}"
    );
    assert!(unmet[1].contains("answered otherwise"), "{unmet:?}");
    // Written back, the window reads the same.
    let again = scenario::parse("t.toml", &scenario::write(&strict), Path::new(".")).unwrap();
    let unlined = |checks: &[scenario::Check]| -> Vec<scenario::Check> {
        let mut checks = checks.to_vec();
        checks.iter_mut().for_each(|c| c.line = 0);
        checks
    };
    assert_eq!(unlined(&again.checks), unlined(&strict.checks));
}

#[test]
fn a_window_check_is_refused_with_why_when_it_makes_no_sense() {
    let cases = [
        ("from = \"1s\"\nactive_max = 1\n", "a window needs until"),
        (
            "at = \"1s\"\nuntil = \"3s\"\nactive_max = 1\n",
            "at an instant (at) or over a window",
        ),
        (
            "from = \"3s\"\nuntil = \"1s\"\nactive_max = 1\n",
            "the window ends before it starts",
        ),
        (
            "from = \"1s\"\nuntil = \"3s\"\nactive = 1\n",
            "'active' belongs to the other kind",
        ),
        (
            "at = \"1s\"\nactive_max = 1\n",
            "'active_max' belongs to the other kind",
        ),
        (
            "from = \"1s\"\nuntil = \"3s\"\ndenied_only = [\"all_in_use\"]\n",
            "say whose",
        ),
        (
            "from = \"1s\"\nuntil = \"3s\"\nclient = \"eng\"\n",
            "give one",
        ),
        (
            "from = \"1s\"\nuntil = \"3s\"\nclient = \"eng\"\ndenied_only = [\"al_in_use\"]\n",
            "did you mean 'all_in_use'?",
        ),
        (
            "from = \"1s\"\nuntil = \"3s\"\n",
            "a window needs at least one of",
        ),
        (
            "at = \"1s\"\nholders = { eng = 4 }\n",
            "holders.eng: 4 is not from 0 to 3",
        ),
        (
            "at = \"1s\"\nholders = { eng1 = 1 }\n",
            "no client or group 'eng1'",
        ),
    ];
    for (check, expected) in cases {
        let message = error(&format!("\n[[checks]]\n{check}"));
        assert!(
            message.contains(expected),
            "expected '{expected}' in: {message}"
        );
    }
}

/// A lease shorter than a client's give-up time is allowed, with a warning at its line.
#[test]
fn a_lease_shorter_than_the_give_up_time_is_warned_about() {
    let quiet = parse("").unwrap();
    assert_eq!(quiet.warnings, Vec::<String>::new());
    let text = HEAD.replace("client_lease = \"8s\"", "client_lease = \"4s\"");
    let loaded = scenario::parse("t.toml", &text, Path::new(".")).unwrap();
    let give_up = loaded.timing.client_give_up_after();
    assert!(give_up > Duration::from_secs(4), "{give_up:?}");
    let [warning] = &loaded.warnings[..] else {
        panic!("one warning: {:?}", loaded.warnings);
    };
    let lease_line = text
        .lines()
        .position(|l| l.starts_with("client_lease"))
        .unwrap()
        + 1;
    let expected = format!("t.toml:{lease_line}:16: timing.client_lease: 4s is shorter than the ");
    assert!(warning.starts_with(&expected), "{warning}");
}

#[test]
fn steps_that_make_no_sense_are_refused_with_why() {
    let cases = [
        (
            "\n[[steps]]\nat = \"1s\"\ncrash = 1\ncut = [1, 2]\n",
            "cut: a step does one thing, and this one also has 'crash'",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\ncheckout = \"cad\"\n",
            "'checkout' is a client's action: say whose",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncrash = 1\n",
            "'crash' is a fault of the servers; it takes no client",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\ncrash = 4\n",
            "crash: 4 is not a server; the servers are 1, 2 and 3",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\ncut = [1, 1]\n",
            "server 1 is listed twice",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckin = \"cad\"\ngranted_by = 1\n",
            "'checkin' takes only within, attempts_max",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\nattempts_max = 0\n",
            "attempts_max: 0 is not a number of sends: 1 to 1000",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\nattempts_max = \"two\"\n",
            "attempts_max: expected a whole number, found string",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\nfreeze = \"2s\"\nattempts_max = 1\n",
            "'freeze' takes only lost, within",
        ),
        (
            "\n[[steps]]\nat = \"soon\"\ncrash = 1\n",
            "at: 'soon' is not a duration",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cam\"\n",
            "the license has no feature 'cam'; did you mean 'cad'?",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"eng2\"\ndisconnect = \"5s\"\n",
            "'eng2' shares a machine with the other clients of 'eng'",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nslow = [1, 2]\n",
            "a slow link needs latency",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_by = 3\n",
            "#3 never grants",
        ),
        (
            "\n[servers.1]\ntriad = [\"6200@server1\", \"6200@lic9\", \"6200@server3\"]\n",
            "'6200@lic9' is not a machine of the simulation",
        ),
    ];
    let short = format!("duration = \"2s\"\n{HEAD}\n[[steps]]\nat = \"10s\"\ncrash = 1\n");
    let message = scenario::parse("t.toml", &short, Path::new("."))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.starts_with("t.toml:1:12: duration: 2s ends the run before the timeline does"),
        "{message}"
    );
    for (body, expected) in cases {
        let message = error(body);
        assert!(
            message.contains(expected),
            "expected '{expected}' in: {message}"
        );
        assert!(message.starts_with("t.toml"), "{message}");
    }
}

#[test]
fn license_errors_point_at_the_scenario_files_lines() {
    let text = "name = \"x\"\nstory = \"y\"\n[license]\ntext = \"\"\"\nFEATURE cad\n{\n  VENDOR = acme\n  COUNT = 2\n  HAL_SERVERS = 3\n  COLOUR = red\n}\n\"\"\"\n";
    let message = scenario::parse("t.toml", text, Path::new("."))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    // COLOUR is on line 10 of the scenario file.
    assert!(message.contains("t.toml:10"), "{message}");
}

fn body_crash_then_checkout(expectation: &str) -> String {
    format!(
        "\n[[steps]]\nat = \"2s\"\ncrash = 1\n\n[[steps]]\nat = \"5s\"\nclient = \"alice\"\ncheckout = \"cad\"\n{expectation}\n"
    )
}

#[test]
fn expectations_and_checks_are_judged_and_can_fail() {
    let met = parse(&body_crash_then_checkout("granted_by = 2\nwithin = \"3s\"")).unwrap();
    let outcome = scenario::run(&met, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:?}", outcome.judged);
    assert_eq!(outcome.judged.len(), 1);

    // #1 is down: #1 cannot grant it.
    let wrong = parse(&body_crash_then_checkout("granted_by = 1")).unwrap();
    let outcome = scenario::run(&wrong, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(1));
    assert_eq!(
        outcome.judged[0].saw.split(" after").next(),
        Some("granted by #2")
    );

    // No failover is that fast.
    let hasty = parse(&body_crash_then_checkout("within = \"10ms\"")).unwrap();
    assert_eq!(scenario::run(&hasty, 1, None).verdict(), Verdict::Unmet(1));

    let checks =
        "\n[[checks]]\nat = \"8s\"\nactive = 1\nin_use = { cad = 0 }\nholds = { alice = [] }\n";
    let wrong = parse(&format!("{}{checks}", body_crash_then_checkout(""))).unwrap();
    let outcome = scenario::run(&wrong, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(3), "{:?}", outcome.judged);
    let saw: Vec<&str> = outcome.judged.iter().map(|j| j.saw.as_str()).collect();
    assert!(saw.contains(&"active server: #2"), "{saw:?}");
    assert!(saw.contains(&"alice holds [cad]"), "{saw:?}");
    // The check waited for crashed #1's status; its records still come in time order.
    let times: Vec<u64> = records(&outcome.history)
        .iter()
        .filter_map(Record::t_ms)
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "{:?}",
        outcome.history
    );
}

#[test]
fn a_lost_seat_is_expected_and_seen() {
    // Cut off for longer than the 8 s lease: alice is told her seat is lost in time.
    let body = "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_by = 1\n\n[[steps]]\nat = \"3s\"\nclient = \"alice\"\ndisconnect = \"15s\"\nlost = true\nwithin = \"9s\"\n";
    let outcome = scenario::run(&parse(body).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:?}", outcome.judged);
    let body = body.replace("lost = true", "lost = false");
    let outcome = scenario::run(&parse(&body).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(1), "{:?}", outcome.judged);
}

/// `lost` on a checkout: the seat is watched from the request to the end of the run
/// (its `within` bounds the answer, not the watch).
#[test]
fn a_checkout_expects_its_seat_kept_or_lost() {
    let checkout = "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\nwithin = \"1s\"\nlost = false\n";
    let outcome = scenario::run(&parse(checkout).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:?}", outcome.judged);
    let kept = outcome
        .judged
        .iter()
        .find(|j| j.expected.contains("keeps its seats"));
    assert!(kept.is_some_and(|j| j.met), "{:?}", outcome.judged);
    // Cut off past her 8 s lease at 5 s: the same expectation is not met.
    let cut =
        format!("{checkout}\n[[steps]]\nat = \"5s\"\nclient = \"alice\"\ndisconnect = \"15s\"\n");
    let outcome = scenario::run(&parse(&cut).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(1), "{:?}", outcome.judged);
    let lost = outcome.judged.iter().find(|j| !j.met).unwrap();
    assert_eq!(lost.line, line(3), "{lost:?}");
    assert!(lost.saw.starts_with("seat lost at"), "{lost:?}");
    let busy = "\n[[steps]]\nat = \"1s\"\nclient = \"eng\"\nbusy = \"cad\"\nuntil = \"20s\"\nlost = false\n";
    let outcome = scenario::run(&parse(busy).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:?}", outcome.judged);
}

/// `unless_held` and `if_held` make a client's step conditional on what it holds: a step
/// not taken is recorded as skipped, not judged; without them the same steps fail.
#[test]
fn conditional_steps_follow_what_the_client_holds() {
    let step = |at: &str, verb: &str, extra: &str| {
        format!("\n[[steps]]\nat = \"{at}\"\nclient = \"alice\"\n{verb} = \"cad\"\n{extra}")
    };
    let body = [
        step("1s", "checkout", "granted_by = 1\n"),
        // Holds one already: asks nothing (one seat of two stays free for eng1).
        step("2s", "checkout", "unless_held = true\n"),
        "\n[[steps]]\nat = \"3s\"\nclient = \"eng1\"\ncheckout = \"cad\"\ngranted_by = 1\n".into(),
        step("4s", "checkin", ""),
        // Holds none now: does nothing, and that is no failure.
        step("5s", "checkin", "if_held = true\n"),
        step("6s", "checkout", "unless_held = true\ngranted_by = 1\n"),
    ]
    .concat();
    let loaded = parse(&body).unwrap();
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:?}", outcome.judged);
    let skipped: Vec<(u64, bool)> = records(&outcome.history)
        .into_iter()
        .filter_map(|r| match r {
            Record::Client(c) => match c.event {
                hal_core::record::ClientEventRecord::Skipped { line, held } => Some((line, held)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let first = HEAD.lines().count() as u64;
    assert_eq!(
        skipped.iter().map(|(_, held)| *held).collect::<Vec<_>>(),
        [true, false],
        "{skipped:?}"
    );
    assert!(skipped.iter().all(|(line, _)| *line > first), "{skipped:?}");
    // Unconditional, alice takes both seats at 2s and eng1 is denied.
    let strict = body
        .replace("unless_held = true\n", "")
        .replace("if_held = true\n", "");
    let outcome = scenario::run(&parse(&strict).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(1), "{:?}", outcome.judged);
    let unmet = outcome.judged.iter().find(|j| !j.met).unwrap();
    assert!(unmet.saw.starts_with("denied all_in_use"), "{unmet:?}");
    // A checkin with nothing held fails, unless it is conditional.
    let outcome = scenario::run(&parse(&step("1s", "checkin", "")).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(1), "{:?}", outcome.judged);
    assert_eq!(outcome.judged[0].saw, "alice holds no seat of cad");
    let outcome = scenario::run(
        &parse(&step("1s", "checkin", "if_held = true\n")).unwrap(),
        1,
        None,
    );
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:?}", outcome.judged);
    // A condition says only `true`, and only on the verbs it fits.
    let e = error(&step("1s", "checkin", "if_held = false\n"));
    assert!(e.contains("only 'if_held = true' says something"), "{e}");
    let e = error(&step("1s", "checkin", "unless_held = true\n"));
    assert!(e.contains("unless_held"), "{e}");
}

#[test]
fn one_seed_one_history() {
    let body = "\n[[steps]]\nat = \"0s\"\nclient = \"eng\"\nbusy = \"cad\"\nuntil = \"12s\"\n\n[[steps]]\nat = \"3s\"\nflap = [1, 2]\nfor = \"4s\"\n";
    let loaded = parse(body).unwrap();
    let a = scenario::run(&loaded, 9, None);
    let b = scenario::run(&loaded, 9, None);
    assert!(a.passed(), "{:?} {:?}", a.violation, a.failure);
    assert_eq!(a.history, b.history);
    let c = scenario::run(&loaded, 10, None);
    assert_ne!(a.history, c.history, "another seed, another run");
}

#[test]
fn a_scenario_written_back_reads_the_same() {
    let busy = parse("\n[[steps]]\nat = \"1s\"\nclient = \"eng\"\nbusy = \"cad\"\nuntil = \"9s\"\nhold = \"3s\"\n").unwrap();
    assert!(
        matches!(&busy.steps[0].action, scenario::Action::Client { act: scenario::ClientAct::Busy { hold: Some(h), .. }, .. } if h.as_secs() == 3),
        "`hold` of `busy` is its parameter, not the fault verb: {:?}",
        busy.steps[0].action
    );
    let busy_text = scenario::write(&busy);
    assert!(
        busy_text.contains("busy = \"cad\"\nuntil = \"9s\"\nhold = \"3s\""),
        "{busy_text}"
    );
    assert!(scenario::parse("t.toml", &busy_text, Path::new(".")).is_ok());

    let body = "seed = 4\n[network]\nlatency = \"5ms\"\njitter = \"2ms\"\n[servers.2]\nclock_offset = \"-90s\"\nclock_drift_ppm = 50\nhostid = \"ab12\"\n\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\nborrow = \"cad\"\nhours = 3\ngranted_by = 1\nwithin = \"2s\"\n\n[[steps]]\nat = \"2s\"\nslow = [1, 3]\nlatency = \"40ms\"\nfor = \"3s\"\n\n[[steps]]\nat = \"6s\"\nflap = [2, 3]\nfor = \"2s\"\ndown = \"200ms\"\nup = \"300ms\"\n\n[[steps]]\nat = \"9s\"\nclient = \"eng\"\nfreeze = \"1s\"\nlost = false\n\n[[checks]]\nat = \"12s\"\nactive = 1\nholds = { alice = [\"cad\"] }\n";
    // `seed` belongs before the tables: put it first.
    let text = format!(
        "{body_seed}{HEAD}{rest}",
        body_seed = "seed = 4\n",
        rest = &body["seed = 4\n".len()..]
    );
    let first = scenario::parse("t.toml", &text, Path::new(".")).unwrap();
    let written = scenario::write(&first);
    let second = scenario::parse("t.toml", &written, Path::new(".")).unwrap();
    assert_eq!(
        first
            .steps
            .iter()
            .map(|s| (&s.at, &s.action, &s.expect))
            .collect::<Vec<_>>(),
        second
            .steps
            .iter()
            .map(|s| (&s.at, &s.action, &s.expect))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        first
            .checks
            .iter()
            .map(|c| (&c.at, &c.active, &c.holds))
            .collect::<Vec<_>>(),
        second
            .checks
            .iter()
            .map(|c| (&c.at, &c.active, &c.holds))
            .collect::<Vec<_>>()
    );
    assert_eq!(first.servers, second.servers);
    assert_eq!(
        (first.latency, first.jitter, first.timing, first.seed),
        (second.latency, second.jitter, second.timing, second.seed)
    );
    assert_eq!(first.license.features.len(), second.license.features.len());
}

/// A planted role bug (no failback): the sweep's seed 5 violates the role rule; shrunk,
/// one fault and one client remain, the file replays the violation, and without the bug
/// the same file passes.
#[test]
fn shrinking_a_planted_bug_gives_a_minimal_file_that_replays_it() {
    let mut config = WorldConfig::lan(5, 5);
    config.planted = Some(Planted::NoFailback);
    let world = hal_sim::world::run(&config).unwrap();
    let violation = world
        .violation
        .expect("seed 5 violates with the bug planted");
    assert_eq!(violation.invariant, "2 role rule");

    let shrunk = shrink::shrink(&config, config.planted).unwrap();
    assert_eq!(shrunk.invariant, "2 role rule");
    assert!(shrunk.steps_before > 1, "{}", shrunk.steps_before);
    let faults: Vec<_> = shrunk
        .scenario
        .steps
        .iter()
        .filter(|s| !matches!(s.action, scenario::Action::Client { .. }))
        .collect();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(shrunk.scenario.clients[0].count, Some(1));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failing-5.toml");
    std::fs::write(&path, scenario::write(&shrunk.scenario)).unwrap();
    let replayed = scenario::load(&path).unwrap();
    assert_eq!(replayed.seed, Some(5));
    let outcome = scenario::run(&replayed, 5, Some(Planted::NoFailback));
    assert_eq!(outcome.violation.map(|v| v.invariant), Some("2 role rule"));
    let honest = scenario::run(&replayed, 5, None);
    assert!(
        honest.passed(),
        "{:?} {:?}",
        honest.violation,
        honest.failure
    );
}

/// Found in review: faults that overlap (a crash during an isolation, a cut during a
/// hold, two disconnects of one machine) are played without a false harness failure, a
/// crash's `for` does not power-cycle a server restarted meanwhile, and a step after a
/// long `busy` spell is still judged.
#[test]
fn overlapping_faults_and_late_steps_are_handled() {
    let body = "\n[[steps]]\nat = \"1s\"\nclient = \"eng\"\nbusy = \"cad\"\nuntil = \"6s\"\nhold = \"20s\"\n\
        \n[[steps]]\nat = \"2s\"\nisolate = 1\nfor = \"8s\"\n\n[[steps]]\nat = \"4s\"\ncrash = 1\nfor = \"10s\"\n\
        \n[[steps]]\nat = \"5s\"\nrestart = 1\n\n[[steps]]\nat = \"3s\"\nhold = [2, 3]\nfor = \"3s\"\n\
        \n[[steps]]\nat = \"4s\"\ncut = [2, 3]\nfor = \"1s\"\n\n[[steps]]\nat = \"3s\"\nclient = \"alice\"\ndisconnect = \"6s\"\n\
        \n[[steps]]\nat = \"4s\"\nclient = \"alice\"\ndisconnect = \"2s\"\n\
        \n[[steps]]\nat = \"7s\"\nclient = \"eng1\"\ncheckout = \"cad\"\ngranted_by = \"any\"\n";
    let loaded = parse(body).unwrap();
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(outcome.failure, None);
    assert_eq!(outcome.violation, None);
    assert_eq!(
        outcome.judged.len(),
        1,
        "eng1's checkout after its busy spell is judged"
    );
    let crashes = records(&outcome.history)
        .iter()
        .filter(|r| matches!(r, Record::Fault(fault) if fault.fault == FaultKind::Crash))
        .count();
    assert_eq!(crashes, 1, "the crash's 'for' found #1 restarted already");
}

#[test]
fn impostor_steps_name_the_line_and_key_of_a_mistake() {
    // Where the message must start, and the key it must name.
    let at = |n: usize, key: &str| (format!("t.toml:{}:", line(n)), format!(": {key}: "));
    let cases = [
        (
            "\n[[steps]]\nat = \"1s\"\nimpostr = 2\n",
            at(4, "impostr"),
            "unknown key in a step; did you mean 'impostor'?",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = 2\ntargt = 1\n",
            at(5, "targt"),
            "unknown key in a step; did you mean 'target'?",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = 4\n",
            at(4, "impostor"),
            "4 is not a server; the servers are 1, 2 and 3",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = \"two\"\n",
            at(4, "impostor"),
            "expected a server number (1, 2 or 3), found string",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = 2\ntarget = 2\n",
            at(5, "target"),
            "the impostor claims to be #2, and #2 takes no link from itself: target 1 or 3 (the default is both)",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = 2\ntarget = []\n",
            at(5, "target"),
            "dials no server",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = 2\ntarget = [1, 1]\n",
            at(5, "target"),
            "server 1 is listed twice",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = 2\nrefused = \"yes\"\n",
            at(5, "refused"),
            "expected true or false, found string",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nimpostor = 2\nwithin = \"1s\"\n",
            at(5, "within"),
            "'impostor' takes only refused",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\nimpostor = 2\n",
            at(4, "client"),
            "'impostor' is done by a machine of its own (the impostor); it takes no client",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\nrefused = true\n",
            at(6, "refused"),
            "'checkout' takes only granted_by, denied, unknown, within, attempts_max",
        ),
        (
            "\n[[steps]]\nat = \"1s\"\ncrash = 1\ntarget = 2\n",
            at(5, "target"),
            "'crash' does not take 'target'; it takes for",
        ),
    ];
    for (body, (start, key), problem) in cases {
        let message = error(body);
        assert!(
            message.starts_with(&start) && message.contains(&key) && message.contains(problem),
            "expected '{start}…{key}{problem}', got: {message}"
        );
    }
}

#[test]
fn an_impostor_step_dials_every_other_server_and_expects_a_refusal() {
    let both = parse("\n[[steps]]\nat = \"1s\"\nimpostor = 2\n").unwrap();
    let one =
        parse("\n[[steps]]\nat = \"1s\"\nimpostor = 3\ntarget = 1\nrefused = false\n").unwrap();
    let servers = |ids: &[u8]| -> Vec<hal_core::ServerId> {
        ids.iter()
            .map(|&n| hal_core::ServerId::new(n).unwrap())
            .collect()
    };
    assert_eq!(
        both.steps[0].action,
        scenario::Action::Impostor {
            claimed: hal_core::ServerId::SECONDARY,
            targets: servers(&[1, 3]),
        }
    );
    assert_eq!(both.steps[0].expect.refused, Some(true));
    assert_eq!(
        one.steps[0].action,
        scenario::Action::Impostor {
            claimed: hal_core::ServerId::TIEBREAKER,
            targets: servers(&[1]),
        }
    );
    assert_eq!(one.steps[0].expect.refused, Some(false));
    // The attacker waits up to 5 s for an answer: the run lasts until it is judged.
    assert!(both.duration >= std::time::Duration::from_secs(6));
    for loaded in [both, one] {
        let written = scenario::write(&loaded);
        let again = scenario::parse("t.toml", &written, Path::new(".")).unwrap();
        assert_eq!(
            (&again.steps[0].action, &again.steps[0].expect),
            (&loaded.steps[0].action, &loaded.steps[0].expect),
            "{written}"
        );
    }
}

/// alice and eng1 hold seats; at 3 s an impostor claims #2 to #1 and #3; at 9 s both
/// seats are still held (alice's lease of 8 s has been renewed by then).
const ATTACK: &str = "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_by = 1\n\
    \n[[steps]]\nat = \"1s\"\nclient = \"eng1\"\ncheckout = \"cad\"\ngranted_by = 1\n\
    \n[[steps]]\nat = \"3s\"\nimpostor = 2\n\
    \n[[checks]]\nat = \"9s\"\nactive = 1\nin_use = { cad = 2 }\nholds = { alice = [\"cad\"], eng1 = [\"cad\"] }\n";

/// A history's records.
fn records(history: &[String]) -> Vec<Record> {
    history
        .iter()
        .map(|line| {
            let entry: Entry = serde_json::from_str(line).expect("a history record");
            entry.record
        })
        .collect()
}

/// The impostor records of a history.
fn impostors(history: &[String]) -> Vec<Impostor> {
    records(history)
        .into_iter()
        .filter_map(|record| match record {
            Record::Impostor(impostor) => Some(impostor),
            _ => None,
        })
        .collect()
}

#[test]
fn an_impostor_is_refused_and_a_server_that_believes_hellos_is_caught() {
    let loaded = parse(ATTACK).unwrap();
    let honest = scenario::run(&loaded, 1, None);
    assert_eq!(honest.verdict(), Verdict::Passed, "{:?}", honest.judged);
    let tries = impostors(&honest.history);
    assert_eq!(tries.len(), 2, "{tries:?}");
    for (record, server) in tries.iter().zip([1, 3]) {
        assert_eq!(record.claimed, 2);
        assert_eq!(record.server, server);
        assert_eq!(record.result, "refused");
        let reason = record.reason.as_deref().unwrap();
        assert!(
            reason.starts_with("not authenticated as server #2 of this triad"),
            "{reason}"
        );
        assert!(
            !reason.contains("server1"),
            "the refusal tells the triad list: {reason}"
        );
    }
    let timeline: Vec<String> = {
        let mut timeline = hal_sim::timeline::Timeline::default();
        honest
            .history
            .iter()
            .filter_map(|l| timeline.line(l))
            .collect()
    };
    assert!(
        timeline
            .iter()
            .any(|l| l.contains("IMPOSTOR claims #2 to #1: refused (not authenticated")),
        "{timeline:#?}"
    );

    // The planted hole: the servers take a peer's hello at its word.
    let planted = scenario::run(&loaded, 1, Some(Planted::TrustHello));
    assert_ne!(planted.verdict(), Verdict::Passed);
    let unmet: Vec<_> = planted.judged.iter().filter(|j| !j.met).collect();
    assert_eq!(unmet.len(), 2, "{unmet:?}");
    for judged in unmet {
        assert_eq!(judged.line, line(15));
        assert!(
            judged
                .expected
                .starts_with("an impostor claiming #2 is refused by #")
        );
        assert!(
            judged
                .saw
                .starts_with("welcomed as #2; sent a forged snapshot"),
            "{}",
            judged.saw
        );
    }
    assert!(
        impostors(&planted.history)
            .iter()
            .all(|i| i.result == "welcomed" && i.term == Some(1_000_000)),
        "{:?}",
        planted.history
    );
    // The forged empty snapshot wipes the seat table: the first heartbeat after it hears
    // "unknown handle" while the seat's lease is intact.
    let violation = planted.violation.expect("the wiped seats went unnoticed");
    assert_eq!(violation.invariant, "4 no lost seat");
    assert!(violation.t_ms > 3_000, "{violation}");

    // The expectation can be turned round: a refusal then fails it.
    let welcome_expected =
        parse(&ATTACK.replace("impostor = 2\n", "impostor = 2\nrefused = false\n")).unwrap();
    let outcome = scenario::run(&welcome_expected, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(2), "{:?}", outcome.judged);
}

#[test]
fn an_impostor_that_reaches_no_server_meets_no_expectation() {
    let body =
        "\n[[steps]]\nat = \"1s\"\ncrash = 1\n\n[[steps]]\nat = \"2s\"\nimpostor = 2\ntarget = 1\n";
    let outcome = scenario::run(&parse(body).unwrap(), 1, None);
    assert_eq!(outcome.verdict(), Verdict::Unmet(1), "{:?}", outcome.judged);
    assert!(
        outcome.judged[0].saw.starts_with("unanswered: "),
        "{:?}",
        outcome.judged
    );
    assert_eq!(impostors(&outcome.history).len(), 1);
}

#[test]
fn one_seed_one_history_with_an_impostor() {
    let loaded = parse(ATTACK).unwrap();
    for planted in [None, Some(Planted::TrustHello)] {
        let a = scenario::run(&loaded, 4, planted);
        let b = scenario::run(&loaded, 4, planted);
        assert_eq!(impostors(&a.history).len(), 2, "{planted:?}");
        if let Some(at) = a.history.iter().zip(&b.history).position(|(x, y)| x != y) {
            panic!(
                "{planted:?}: two runs of seed 4 differ first at record {at}:\n{}\n{}",
                a.history[at], b.history[at]
            );
        }
        assert_eq!(a.history.len(), b.history.len(), "{planted:?}");
    }
}

/// Found in the security review: the files a scenario names are read with a limit, so a
/// huge license file or a device that never ends (`/dev/zero`) gets an error naming the
/// file and the key, not an unbounded read.
#[test]
fn files_a_scenario_reads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let with_path = |license: &str| {
        format!(
            "name = \"t\"\nstory = \"s\"\n\n[license]\npath = \"{license}\"\n\n[[clients]]\nname = \"a\"\n"
        )
    };
    let huge = dir.path().join("huge.lic");
    std::fs::write(&huge, "#".repeat(1024 * 1024 + 1)).unwrap();
    let error = scenario::parse("t.toml", &with_path("huge.lic"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(error.contains("t.toml:5"), "{error}");
    assert!(error.contains("license.path"), "{error}");
    assert!(error.contains("huge.lic"), "{error}");
    assert!(
        error.contains("more than 1048576 bytes; a license file is at most 1048576"),
        "{error}"
    );

    let error = scenario::parse("t.toml", &with_path("/dev/zero"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/dev/zero: more than 1048576 bytes"),
        "{error}"
    );

    let latin1 = dir.path().join("latin1.lic");
    std::fs::write(&latin1, b"FEATURE caf\xe9\n").unwrap();
    let error = scenario::parse("t.toml", &with_path("latin1.lic"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("latin1.lic: not UTF-8 text (byte 11)"),
        "{error}"
    );

    let error = scenario::load(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/dev/zero") && error.contains("a scenario file is at most 1048576"),
        "{error}"
    );
}

/// The client machine's link faults of a seed (cuts, holds and outages) go into the
/// scenario a shrink starts from, as `disconnect` steps (`held = true` for a hold), and
/// survive being written and read back.
#[test]
fn a_seeds_client_link_faults_become_disconnect_steps() {
    let disconnects = |scenario: &scenario::Scenario| -> Vec<(Duration, Duration, Vec<u8>, bool)> {
        scenario
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                scenario::Action::Client {
                    act:
                        scenario::ClientAct::Disconnect {
                            lasting,
                            from,
                            held,
                        },
                    ..
                } => Some((
                    s.at,
                    *lasting,
                    from.iter().map(|f| f.get()).collect(),
                    *held,
                )),
                _ => None,
            })
            .collect()
    };
    let (mut held, mut cut, mut everywhere) = (0, 0, 0);
    for seed in 0..12 {
        let mut full = hal_sim::world::scenario_of(&WorldConfig::lan(seed, 5)).unwrap();
        full.story = "A seed of the standard world.".into();
        let steps = disconnects(&full);
        held += steps.iter().filter(|s| s.3).count();
        cut += steps.iter().filter(|s| !s.3).count();
        everywhere += steps.iter().filter(|s| s.2 == [1, 2, 3]).count();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.toml");
        std::fs::write(&path, scenario::write(&full)).unwrap();
        let again = scenario::load(&path).unwrap();
        assert_eq!(disconnects(&again), steps, "seed {seed}");
    }
    assert!(held > 0 && cut > 0, "held {held}, cut {cut}");
    assert!(everywhere > 0, "no outage in 12 seeds");
}

/// `stop`: the server's process exits cleanly, recorded when it has; the machine refuses
/// connections at once, so a client's next request goes to the next server without a
/// timeout (an operator's status query too); `for` starts it again; one seed gives one
/// history.
#[test]
fn a_stopped_server_exits_cleanly_and_starts_again() {
    let body = "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_by = 1\n\n[[steps]]\nat = \"4s\"\nstop = 1\nfor = \"6s\"\n\n[[steps]]\nat = \"8s\"\nclient = \"alice\"\ncheckin = \"cad\"\nattempts_max = 2\nwithin = \"100ms\"\n\n[[checks]]\nat = \"7s\"\nactive = 2\n";
    let loaded = parse(body).unwrap();
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:#?}", outcome.judged);
    let faults: Vec<(u64, FaultKind)> = records(&outcome.history)
        .into_iter()
        .filter_map(|r| match r {
            Record::Fault(f) => Some((f.t_ms, f.fault)),
            _ => None,
        })
        .collect();
    let [(stopped, FaultKind::Stop), (restarted, FaultKind::Restart)] = faults[..] else {
        panic!("{faults:?}");
    };
    assert!((4_000..4_100).contains(&stopped), "{stopped}");
    assert_eq!(restarted, 10_000);
    // Written back, the step reads the same.
    let text = scenario::write(&loaded);
    assert!(text.contains("stop = 1\nfor = \"6s\""), "{text}");
    let again = scenario::run(&loaded, 1, None);
    assert_eq!(again.history, outcome.history);
    // The operator's status query is refused at once by the stopped server's machine;
    // after a power cut it waits out its timeout.
    let judged_at = |outcome: &scenario::Outcome| {
        outcome
            .judged
            .iter()
            .find(|j| j.expected.contains("active server"))
            .map(|j| j.t_ms)
    };
    assert!(
        judged_at(&outcome).is_some_and(|t| t < 7_100),
        "{:?}",
        outcome.judged
    );
    let crashed = parse(&body.replace("stop = 1", "crash = 1")).unwrap();
    let outcome = scenario::run(&crashed, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:#?}", outcome.judged);
    assert!(
        judged_at(&outcome).is_some_and(|t| t >= 7_500),
        "{:?}",
        outcome.judged
    );
}

/// `work`: a group works as a seed sweep's clients do (checkouts and borrows, holds,
/// retries after denials, and before `chaos` processes that die or freeze), drawn from
/// the seed: one seed gives one history, the invariants hold through a failover, and the
/// run does what it says.
#[test]
fn a_working_group_checks_out_borrows_dies_and_freezes_as_the_sweep_clients_do() {
    let body = "\n[[steps]]\nat = \"0s\"\nclient = \"eng\"\nwork = \"cad\"\nuntil = \"50s\"\nchaos = \"30s\"\n\n[[steps]]\nat = \"12s\"\ncrash = 1\nfor = \"8s\"\n\n[[checks]]\nfrom = \"0s\"\nuntil = \"60s\"\nactive_max = 1\n";
    let loaded = parse(body).unwrap();
    let text = scenario::write(&loaded);
    assert!(
        text.contains("work = \"cad\"\nuntil = \"50s\"\nchaos = \"30s\""),
        "{text}"
    );
    let mut events: std::collections::BTreeMap<String, usize> = Default::default();
    for seed in 0..6 {
        let outcome = scenario::run(&loaded, seed, None);
        assert_eq!(
            outcome.verdict(),
            Verdict::Passed,
            "seed {seed}: {:?} {:?}",
            outcome.violation,
            outcome.judged
        );
        for record in records(&outcome.history) {
            let kind = match record {
                Record::Client(c) => format!("{:?}", c.event)
                    .split([' ', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                Record::Request(r) => format!("{:?}", r.op),
                _ => continue,
            };
            *events.entry(kind).or_default() += 1;
        }
        if seed == 0 {
            assert_eq!(scenario::run(&loaded, 0, None).history, outcome.history);
        }
    }
    for kind in [
        "Checkout", "Borrow", "Checkin", "Return", "Granted", "Denied", "Crashed", "Frozen",
    ] {
        assert!(
            events.get(kind).is_some_and(|n| *n > 0),
            "no {kind} in six seeds: {events:?}"
        );
    }
}

/// `log_entries_max` makes a server snapshot often; `audit` reads the active server's
/// seat table for invariant 7 (no orphan seat) at its time; both are written back.
#[test]
fn a_scenario_can_snapshot_often_and_audit_its_seats() {
    let body = "\n[servers.1]\nlog_entries_max = 4\n\n[servers.2]\nlog_entries_max = 4\n\n[servers.3]\nlog_entries_max = 4\n\n[[steps]]\nat = \"0s\"\nclient = \"eng\"\nwork = \"cad\"\nuntil = \"25s\"\n\n[[steps]]\nat = \"5s\"\ncrash = 3\nfor = \"10s\"\n";
    let text = format!("audit = \"29s\"\n{HEAD}{body}");
    let loaded = scenario::parse("t.toml", &text, Path::new(".")).unwrap();
    assert_eq!(loaded.audit, Some(Duration::from_secs(29)));
    assert_eq!(loaded.servers[0].log_entries_max, Some(4));
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(
        outcome.verdict(),
        Verdict::Passed,
        "{:?}",
        outcome.violation
    );
    let records = records(&outcome.history);
    let audits = records
        .iter()
        .filter(|r| matches!(r, Record::Audit(a) if a.t_ms >= 29_000))
        .count();
    assert_eq!(audits, 1);
    let installed = records
        .iter()
        .filter(|r| matches!(r, Record::Checkpoint(c) if c.server == 3 && c.snapshot == hal_core::record::SnapshotHow::Installed))
        .count();
    assert!(installed > 0, "#3 came back behind and was sent a snapshot");
    let again = scenario::parse("t.toml", &scenario::write(&loaded), Path::new(".")).unwrap();
    assert_eq!(
        (again.audit, again.servers.clone()),
        (loaded.audit, loaded.servers.clone())
    );
    let error = scenario::parse("t.toml", &text.replace("= 4\n", "= 2\n"), Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("servers.1.log_entries_max: 2 is not from 4 to 1000000"),
        "{error}"
    );
}

/// `remove`: the operator's machine removes a user's seats through the active server; the
/// seat is free at once (another client gets it before the holder hears, and no overuse
/// is seen: the holding ends when a server applies the removal), and the holder is told
/// "removed" at its next heartbeat, not "lost". A removal of nothing held frees nothing;
/// the step is written back as read; and its mistakes are reported.
/// `set_count` pushes the scenario's license with a feature's COUNT changed, as
/// `hal-net license push` does: a lowered COUNT keeps the seats held and grants nothing
/// until below it, a raised one grants at once; every server switches (a `license`
/// record each), invariant 1 judges by the COUNT in force, and the step is written back
/// as read; its mistakes are reported.
#[test]
fn an_operator_pushes_a_license_with_another_count() {
    let body = "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_by = 1\n\n[[steps]]\nat = \"1.5s\"\nclient = \"eng\"\ncheckout = \"cad\"\nunless_held = true\n\n[[steps]]\nat = \"3s\"\nset_count = 1\nfeature = \"cad\"\npushed = true\nwithin = \"500ms\"\n\n[[steps]]\nat = \"4s\"\nclient = \"eng\"\ncheckout = \"cad\"\nunless_held = true\n\n[[checks]]\nat = \"4.5s\"\nin_use = { cad = 2 }\nholders = { alice = 1, eng = 1 }\n\n[[steps]]\nat = \"5s\"\nclient = \"alice\"\ncheckin = \"cad\"\n\n[[steps]]\nat = \"6s\"\nclient = \"eng\"\ncheckout = \"cad\"\nunless_held = true\n\n[[checks]]\nat = \"7s\"\nin_use = { cad = 1 }\nholders = { alice = 0, eng = 1 }\n\n[[steps]]\nat = \"8s\"\nset_count = 3\nfeature = \"cad\"\npushed = true\n\n[[steps]]\nat = \"9s\"\nclient = \"eng\"\ncheckout = \"cad\"\nunless_held = true\n\n[[checks]]\nat = \"10s\"\nin_use = { cad = 3 }\nholders = { eng = 3 }\n";
    let loaded = parse(body).unwrap();
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:#?}", outcome.judged);
    let switched: Vec<(u64, u8, u32)> = records(&outcome.history)
        .iter()
        .filter_map(|r| match r {
            Record::License(l) => Some((l.t_ms, l.server, l.features["cad"])),
            _ => None,
        })
        .collect();
    // Each push reaches all three servers, in time order.
    assert_eq!(switched.len(), 6, "{switched:?}");
    assert!(
        switched[..3]
            .iter()
            .all(|s| s.2 == 1 && (3_000..3_500).contains(&s.0))
    );
    assert!(switched[3..].iter().all(|s| s.2 == 3 && s.0 >= 8_000));
    let text = scenario::write(&loaded);
    assert!(
        text.contains("set_count = 1\nfeature = \"cad\"\nwithin = \"500ms\"\npushed = true"),
        "{text}"
    );
    let again = parse(&text[text.find("\n[[steps]]").unwrap()..]).unwrap();
    let unlined = |steps: &[scenario::Step]| {
        let steps = steps
            .iter()
            .map(|s| (s.at, s.action.clone(), s.expect.clone()));
        steps.collect::<Vec<_>>()
    };
    assert_eq!(unlined(&again.steps), unlined(&loaded.steps));
    let bad = error("\n[[steps]]\nat = \"1s\"\nset_count = 3\n");
    assert!(bad.contains("feature = \"cad\""), "{bad}");
    let bad = error("\n[[steps]]\nat = \"1s\"\nset_count = 3\nfeature = \"cam\"\n");
    assert!(bad.contains("the license has no feature 'cam'"), "{bad}");
    let bad = error("\n[[steps]]\nat = \"1s\"\nset_count = 0\nfeature = \"cad\"\n");
    assert!(bad.contains("not a COUNT to push"), "{bad}");
}

/// `options` pushes an options file, as `hal-net options push` does: every server
/// applies it (an `options` record each), its rules refuse by their own reasons, the step
/// is written back as read, and its mistakes are reported with the file's lines.
#[test]
fn an_operator_pushes_an_options_file() {
    let body = "\n[[steps]]\nat = \"1s\"\noptions = \"\"\"\nMAX 1 cad USER alice\n\"\"\"\npushed = true\n\n[[steps]]\nat = \"2s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_by = 1\n\n[[steps]]\nat = \"3s\"\nclient = \"alice\"\ncheckout = \"cad\"\ndenied = \"over_max\"\n";
    let loaded = parse(body).unwrap();
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:#?}", outcome.judged);
    let applied = records(&outcome.history)
        .iter()
        .filter(|r| matches!(r, Record::Options(o) if o.text.contains("MAX 1 cad")))
        .count();
    assert_eq!(applied, 3);
    let text = scenario::write(&loaded);
    let again = parse(&text[text.find("\n[[steps]]").unwrap()..]).unwrap();
    assert_eq!(again.steps[0].action, loaded.steps[0].action);
    let bad = error(
        "\n[[steps]]\nat = \"1s\"\noptions = \"\"\"\nGROUP d ann\nMAXX 1 cad USER ann\n\"\"\"\n",
    );
    assert!(
        bad.contains("its line 2: unknown keyword `MAXX` (did you mean `MAX`?)"),
        "{bad}"
    );
    let bad = error("\n[[steps]]\nat = \"1s\"\noptions = \"MAX 1 cam USER ann\"\n");
    assert!(bad.contains("the license has no feature 'cam'"), "{bad}");
}

#[test]
fn an_operator_removes_a_users_seats() {
    let body = "\n[[steps]]\nat = \"1s\"\nclient = \"alice\"\ncheckout = \"cad\"\ngranted_by = 1\n\n[[steps]]\nat = \"1s\"\nclient = \"eng\"\ncheckout = \"cad\"\nunless_held = true\n\n[[steps]]\nat = \"4s\"\nremove = \"alice\"\nfeature = \"cad\"\nremoved = 1\nwithin = \"500ms\"\n\n[[steps]]\nat = \"4.2s\"\nclient = \"eng3\"\ncheckout = \"cad\"\ngranted_by = 1\n\n[[steps]]\nat = \"5s\"\nremove = \"alice\"\nremoved = 0\n\n[[checks]]\nat = \"8s\"\nholders = { alice = 0, eng = 2 }\nin_use = { cad = 2 }\n";
    let loaded = parse(body).unwrap();
    let outcome = scenario::run(&loaded, 1, None);
    assert_eq!(outcome.verdict(), Verdict::Passed, "{:#?}", outcome.judged);
    let records = records(&outcome.history);
    let removed: Vec<(u64, String, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Removed(r) if r.server == 1 => Some((r.t_ms, r.client.clone(), r.by.clone())),
            _ => None,
        })
        .collect();
    let [(at, client, by)] = &removed[..] else {
        panic!("{removed:?}");
    };
    assert!((4_000..4_500).contains(at), "{at}");
    assert_eq!((client.as_str(), by.as_str()), ("alice", "admin@operator"));
    let told: Vec<u64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Client(c)
                if c.client == "alice" && matches!(c.event, ClientEventRecord::Removed { .. }) =>
            {
                Some(c.t_ms)
            }
            _ => None,
        })
        .collect();
    // At its next heartbeat (every 2 s), and never as a loss.
    assert!(
        matches!(told[..], [t] if t > *at && t < at + 2_500),
        "{told:?}"
    );
    assert!(!records.iter().any(|r| matches!(r,
        Record::Client(c) if c.client == "alice" && matches!(c.event, ClientEventRecord::Lost { .. }))));
    // Written back, the steps read the same.
    let text = scenario::write(&loaded);
    assert!(
        text.contains("remove = \"alice\"\nfeature = \"cad\"\nwithin = \"500ms\"\nremoved = 1"),
        "{text}"
    );
    let again = parse(&text[text.find("\n[[steps]]").unwrap()..]).unwrap();
    assert_eq!(again.steps.len(), loaded.steps.len());
    // Mistakes: a client, a bad name, a count out of range.
    let bad = error("\n[[steps]]\nat = \"1s\"\nremove = \"alice\"\nclient = \"alice\"\n");
    assert!(bad.contains("done by the operator's machine"), "{bad}");
    let bad = error("\n[[steps]]\nat = \"1s\"\nremove = \"al\\u0007ice\"\n");
    assert!(bad.contains("remove") && bad.contains("control"), "{bad}");
    let bad = error("\n[[steps]]\nat = \"1s\"\nremove = \"alice\"\nremoved = -1\n");
    assert!(bad.contains("not a number of seats"), "{bad}");
}
