//! The scenario format: what a support engineer gets for a mistake (file, line, key and
//! the nearest valid word), that expectations and checks can fail, that one seed gives
//! one history, that a scenario written back reads the same, and that `--shrink` turns a
//! planted bug's violation into a minimal file that replays it.

use std::path::Path;

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
            "'checkin' takes only within",
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
    let times: Vec<u64> = outcome
        .history
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| r["t_ms"].as_u64().unwrap_or(0))
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

/// A planted role bug (no failback): the sweep's seed 34 violates the role rule; shrunk,
/// one fault and one client remain, the file replays the violation, and without the bug
/// the same file passes.
#[test]
fn shrinking_a_planted_bug_gives_a_minimal_file_that_replays_it() {
    let mut config = WorldConfig::lan(34, 5);
    config.planted = Some(Planted::NoFailback);
    let world = hal_sim::world::run(&config).unwrap();
    let violation = world
        .violation
        .expect("seed 34 violates with the bug planted");
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
    let path = dir.path().join("failing-34.toml");
    std::fs::write(&path, scenario::write(&shrunk.scenario)).unwrap();
    let replayed = scenario::load(&path).unwrap();
    assert_eq!(replayed.seed, Some(34));
    let outcome = scenario::run(&replayed, 34, Some(Planted::NoFailback));
    assert_eq!(outcome.violation.map(|v| v.invariant), Some("2 role rule"));
    let honest = scenario::run(&replayed, 34, None);
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
    let crashes = outcome
        .history
        .iter()
        .filter(|l| l.contains("\"fault\":\"crash\""))
        .count();
    assert_eq!(crashes, 1, "the crash's 'for' found #1 restarted already");
}
