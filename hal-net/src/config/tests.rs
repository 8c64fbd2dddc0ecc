use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hal_core::license::ServerPosition;
use hal_core::timing::Timing;
use hal_core::{HostId, ServerId};

use super::*;

/// A triad member's config. Line 1 id, 2 triad, 3 data_dir, 4 license, 5 vendor_key,
/// 6 insecure_plaintext, 7 [timing], 8 profile.
const BASE: &str = r#"id = 1
triad = ["6200@lic1", "6200@lic2", "6200@lic3"]
data_dir = "data"
license = "demo.lic"
vendor_key = "vendor.pub"
insecure_plaintext = true
[timing]
profile = "lan"
"#;

fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
    ServerConfig::parse("server1.toml", text, Path::new("/etc/hal"))
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(error) => error.to_string(),
    }
}

fn addr(text: &str) -> ServerAddr {
    ServerAddr::parse(text).unwrap()
}

#[test]
fn the_example_in_the_module_documentation_is_valid() {
    let source = include_str!("../config.rs");
    let example: String = source
        .lines()
        .skip_while(|line| *line != "//! ```toml")
        .skip(1)
        .take_while(|line| *line != "//! ```")
        .map(|line| format!("{}\n", line.trim_start_matches("//!").trim_start()))
        .collect();
    assert!(example.contains("[timing]"), "{example}");
    let config = parse(&example).unwrap();
    assert_eq!(config.position, ServerPosition::Triad(ServerId::PRIMARY));
    assert_eq!(
        config.listen,
        "127.0.0.1:6200".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn a_minimal_triad_member_gets_the_defaults() {
    let config = parse(BASE).unwrap();
    assert_eq!(config.source_name, "server1.toml");
    assert_eq!(config.position, ServerPosition::Triad(ServerId::PRIMARY));
    assert_eq!(config.triad.len(), 3);
    assert_eq!(config.listen, "0.0.0.0:6200".parse::<SocketAddr>().unwrap());
    assert_eq!(config.hostid, None);
    assert_eq!(
        config.client_connections_max,
        CLIENT_CONNECTIONS_MAX_DEFAULT
    );
    assert_eq!(config.timing_profile, TimingProfile::Lan);
    assert_eq!(config.timing, Timing::lan());
    assert_eq!(config.core_config().position, config.position);
    assert_eq!(config.core_config().timing, Timing::lan());
}

#[test]
fn the_listen_port_defaults_to_this_servers_triad_entry() {
    let text = BASE
        .replace("id = 1", "id = 2")
        .replace("6200@lic2", "6201@lic2");
    let config = parse(&text).unwrap();
    assert_eq!(config.listen, "0.0.0.0:6201".parse::<SocketAddr>().unwrap());
    assert_eq!(config.own_addr(), Some(&addr("6201@lic2")));
    assert_eq!(
        config.addr_of(ServerId::TIEBREAKER),
        Some(&addr("6200@lic3"))
    );
    let peers: Vec<(ServerId, String)> = config
        .peers()
        .into_iter()
        .map(|(id, a)| (id, a.to_string()))
        .collect();
    assert_eq!(
        peers,
        [
            (ServerId::PRIMARY, "6200@lic1".to_string()),
            (ServerId::TIEBREAKER, "6200@lic3".to_string())
        ]
    );
}

#[test]
fn a_single_server_needs_no_triad_and_no_id() {
    let text = "data_dir = \"d\"\nlicense = \"l\"\nvendor_key = \"k\"\ninsecure_plaintext = true\n";
    let config = parse(text).unwrap();
    assert_eq!(config.position, ServerPosition::Single);
    assert_eq!(config.listen.port(), DEFAULT_PORT);
    assert_eq!(config.own_addr(), None);
    assert!(config.peers().is_empty());
    assert_eq!(config.addr_of(ServerId::PRIMARY), None);

    let one = format!("id = 1\ntriad = [\"7000@solo\"]\n{text}");
    let config = parse(&one).unwrap();
    assert_eq!(config.position, ServerPosition::Single);
    assert_eq!(config.listen.port(), 7000);
    assert_eq!(config.own_addr(), Some(&addr("7000@solo")));
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let text = BASE
        .replace("\"demo.lic\"", "\"../licenses/demo.lic\"")
        .replace("\"vendor.pub\"", "\"/keys/vendor.pub\"");
    let config = parse(&text).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/etc/hal/data"));
    assert_eq!(
        config.license,
        PathBuf::from("/etc/hal/../licenses/demo.lic")
    );
    assert_eq!(config.vendor_key, PathBuf::from("/keys/vendor.pub"));
}

#[test]
fn load_reads_the_file_and_resolves_paths_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server1.toml");
    std::fs::write(&path, BASE).unwrap();
    let config = ServerConfig::load(&path).unwrap();
    assert_eq!(config.data_dir, dir.path().join("data"));
    assert_eq!(config.source_name, path.display().to_string());
    assert!(config.data_dir.is_absolute());
}

#[test]
fn load_reports_a_missing_file_a_large_one_and_bad_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let error = ServerConfig::load(&missing).unwrap_err();
    assert!(matches!(error, ConfigError::Io { .. }));
    assert!(error.to_string().contains("nope.toml"), "{error}");

    let large = dir.path().join("large.toml");
    std::fs::write(&large, "#".repeat(CONFIG_BYTES_MAX + 10)).unwrap();
    let error = ServerConfig::load(&large).unwrap_err();
    assert!(matches!(error, ConfigError::TooLarge { .. }), "{error}");

    let binary = dir.path().join("bad.toml");
    std::fs::write(&binary, b"id = 1\nlicense = \"\xff\"\n").unwrap();
    let error = ServerConfig::load(&binary).unwrap_err().to_string();
    assert!(error.ends_with("bad.toml:2:12: not UTF-8 text"), "{error}");
}

#[test]
fn a_rendered_file_parses_back_to_the_same_config() {
    let mut timing = Timing::wan();
    timing.election_timeout = Duration::from_millis(4500);
    timing.failback_hold = Duration::from_secs(90);
    let file = ConfigFile {
        listen: Some("[::1]:7001".parse().unwrap()),
        hostid: Some(HostId::parse("0a1b2c3d4e5f").unwrap()),
        client_connections_max: Some(50),
        client_connections_per_address_max: Some(5),
        discovery: Some(true),
        discovery_multicast: Some("239.255.62.62".parse().unwrap()),
        security: Security::Tls(TlsFiles {
            ca: "/etc/hal/tls/ca.pem".into(),
            cert: "/etc/hal/tls/server2.pem".into(),
            key: "/etc/hal/tls/server2.key".into(),
        }),
        timing_profile: TimingProfile::Wan,
        timing,
        ..ConfigFile::triad_member(
            [addr("7000@[::1]"), addr("7001@[::1]"), addr("7002@[::1]")],
            ServerId::SECONDARY,
            Path::new("/var/lib/hal \"two\""),
            Path::new("/etc/hal/demo.lic"),
            Path::new("/etc/hal/vendor.pub"),
        )
    };
    let text = file.render();
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.to_config_file(), file, "{text}");
    assert_eq!(config.timing, timing);
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/hal \"two\""));
    // Only the timers that differ from the profile are written.
    assert!(text.contains("election_timeout = \"4s 500ms\""), "{text}");
    assert!(!text.contains("peer_heartbeat"), "{text}");
}

#[test]
fn a_rendered_single_server_parses_with_its_defaults() {
    let file = ConfigFile::single(
        Path::new("data"),
        Path::new("demo.lic"),
        Path::new("vendor.pub"),
    );
    let text = file.render();
    let config = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.position, ServerPosition::Single);
    assert_eq!(config.license, PathBuf::from("/etc/hal/demo.lic"));
    assert!(!text.contains("id ="), "{text}");
    assert!(!text.contains("triad"), "{text}");
}

#[test]
fn unknown_keys_are_refused_with_the_nearest_key_suggested() {
    let text = BASE.replace("data_dir", "data_dri");
    assert_eq!(
        error(&text),
        "server1.toml:3:1: unknown key 'data_dri' at the top level; did you mean 'data_dir'?"
    );
    let text = format!("{BASE}election_timout = \"2s\"\n");
    assert_eq!(
        error(&text),
        "server1.toml:9:1: unknown key 'election_timout' in [timing]; did you mean \
         'election_timeout'?"
    );
    let text = BASE.replace("[timing]", "election_timeout = \"2s\"\n[timing]");
    assert!(error(&text).ends_with("it belongs in the [timing] section"));
    let text = format!("colour = 1\n{BASE}");
    let message = error(&text);
    assert!(
        message.starts_with("server1.toml:1:1: unknown key 'colour'"),
        "{message}"
    );
    assert!(message.contains("allowed: triad, id, listen"), "{message}");
    // The first unknown key in the file is reported, not the first in sorted order.
    let text = format!("zz = 1\naa = 2\n{BASE}");
    assert!(error(&text).starts_with("server1.toml:1:1: unknown key 'zz'"));
}

#[test]
fn a_triad_has_three_entries_one_or_none() {
    for (entries, count) in [
        ("[]", 0),
        ("[\"1@a\", \"2@b\"]", 2),
        ("[\"1@a\", \"2@b\", \"3@c\", \"4@d\"]", 4),
    ] {
        let text = BASE.replace(r#"["6200@lic1", "6200@lic2", "6200@lic3"]"#, entries);
        let message = error(&text);
        let expected = format!("server1.toml:2:9: triad: has {count} entries; a HAL triad has 3");
        assert!(message.starts_with(&expected), "{message}");
    }
}

#[test]
fn bad_triad_entries_are_named_by_number() {
    let text = BASE.replace("6200@lic2", "6200@");
    assert_eq!(
        error(&text),
        "server1.toml:2:23: triad entry 2: '6200@' has no host after the '@'"
    );
    let text = BASE.replace("6200@lic3", "6200@LIC1");
    assert_eq!(
        error(&text),
        "server1.toml:2:36: triad: entries 1 and 3 are both 6200@LIC1"
    );
    let text = BASE.replace("\"6200@lic2\"", "6200");
    assert!(
        error(&text).starts_with("server1.toml:2:23: triad entry 2: expected a server address")
    );
    let text = BASE.replace(
        r#"["6200@lic1", "6200@lic2", "6200@lic3"]"#,
        "\"6200@lic1\"",
    );
    assert!(error(&text).starts_with("server1.toml:2:9: triad: expected a list"));
}

#[test]
fn the_id_is_a_position_in_the_triad() {
    assert_eq!(
        error(&BASE.replace("id = 1", "id = 4")),
        "server1.toml:1:6: id: 4 is not a position in the triad; allowed: 1, 2, 3"
    );
    assert!(error(&BASE.replace("id = 1", "id = 0")).contains("0 is not a position"));
    assert!(error(&BASE.replace("id = 1", "id = -300")).contains("-300 is not a position"));
    assert_eq!(
        error(&BASE.replace("id = 1", "id = \"1\"")),
        "server1.toml:1:6: id: expected a whole number, found string"
    );
    assert!(error(&BASE.replace("id = 1", "id = 99999999999999999999")).contains("far too large"));
    let message = error(&BASE.replace("id = 1\n", ""));
    assert!(
        message.starts_with("server1.toml: missing key 'id': this server's position"),
        "{message}"
    );
    let single = "id = 2\ndata_dir = \"d\"\nlicense = \"l\"\nvendor_key = \"k\"\n";
    assert!(error(single).starts_with("server1.toml:1:6: id: 2: a single server"));
}

#[test]
fn each_bad_value_names_its_key_and_place() {
    let cases = [
        (
            "id = 1",
            "id = 1\nlisten = \"lic1:6200\"",
            "server1.toml:2:10: listen: 'lic1:6200' is not an IP address",
        ),
        (
            "id = 1",
            "id = 1\nlisten = 6200",
            "server1.toml:2:10: listen: expected an IP address",
        ),
        (
            "data_dir = \"data\"",
            "data_dir = \"\"",
            "server1.toml:3:12: data_dir: the path is empty",
        ),
        (
            "data_dir = \"data\"",
            "data_dir = 5",
            "server1.toml:3:12: data_dir: expected a path in quotes, found integer",
        ),
        (
            "license = \"demo.lic\"",
            "license = [\"a\"]",
            "server1.toml:4:11: license: expected a path",
        ),
        (
            "id = 1",
            "id = 1\nhostid = \"ab cd\"",
            "server1.toml:2:10: hostid: 'ab cd': a HostID has only",
        ),
        (
            "id = 1",
            "id = 1\nhostid = 12",
            "server1.toml:2:10: hostid: expected a HostID in quotes",
        ),
        (
            "id = 1",
            "id = 1\nclient_connections_max = 0",
            "server1.toml:2:26: client_connections_max: 0 is not from 1 to 100000",
        ),
        (
            "id = 1",
            "id = 1\nclient_connections_max = 100001",
            "server1.toml:2:26: client_connections_max: 100001 is not from",
        ),
        (
            "id = 1",
            "id = 1\nclient_connections_max = -1",
            "server1.toml:2:26: client_connections_max: -1 is not from",
        ),
        (
            "id = 1",
            "id = 1\nclient_connections_max = 1.5",
            "server1.toml:2:26: client_connections_max: expected a whole number, found float",
        ),
        (
            "profile = \"lan\"",
            "profile = \"lam\"",
            "server1.toml:8:11: timing.profile: 'lam' is not a timing profile; allowed: lan, wan",
        ),
        (
            "profile = \"lan\"",
            "profile = 1",
            "server1.toml:8:11: timing.profile: expected one of lan, wan, found integer",
        ),
        (
            "profile = \"lan\"",
            "peer_heartbeat = \"fast\"",
            "server1.toml:8:18: timing.peer_heartbeat: 'fast' is not a duration",
        ),
        (
            "profile = \"lan\"",
            "client_lease = 120",
            "server1.toml:8:16: timing.client_lease: expected a duration in quotes",
        ),
        (
            "profile = \"lan\"",
            "failback_hold = \"8days\"",
            "server1.toml:8:17: timing.failback_hold: '8days' is longer than the 7 days allowed",
        ),
        (
            "profile = \"lan\"",
            "failback_hold = \"99999999999999999999999s\"",
            "server1.toml:8:17: timing.failback_hold: '99999999999999999999999s' is not a duration",
        ),
        (
            "[timing]\nprofile = \"lan\"",
            "timing = \"lan\"",
            "server1.toml:7:10: timing: expected a section",
        ),
    ];
    for (old, new, expected) in cases {
        assert!(BASE.contains(old), "{old}");
        let message = error(&BASE.replacen(old, new, 1));
        assert!(
            message.starts_with(expected),
            "{new}:\n  got  {message}\n  want {expected}"
        );
    }
}

#[test]
fn missing_paths_say_what_they_are_for() {
    for key in ["data_dir", "license", "vendor_key"] {
        let text: String = BASE
            .lines()
            .filter(|l| !l.starts_with(key))
            .map(|l| format!("{l}\n"))
            .collect();
        let message = error(&text);
        assert!(
            message.starts_with(&format!("server1.toml: missing key '{key}': ")),
            "{message}"
        );
        assert!(message.contains(&format!("{key} = \"")), "{message}");
    }
}

#[test]
fn timing_overrides_apply_to_the_chosen_profile() {
    let text = BASE.replace(
        "profile = \"lan\"",
        "election_timeout = \"2s\"\nclient_lease = \"3min\"",
    );
    let timing = parse(&text).unwrap().timing;
    assert_eq!(timing.election_timeout, Duration::from_secs(2));
    assert_eq!(timing.client_lease, Duration::from_secs(180));
    assert_eq!(timing.peer_heartbeat, Timing::lan().peer_heartbeat);

    let text = BASE.replace("\"lan\"", "\"wan\"\nmax_clock_skew = \"1min 30s\"");
    let config = parse(&text).unwrap();
    assert_eq!(config.timing_profile, TimingProfile::Wan);
    assert_eq!(config.timing.failback_hold, Timing::wan().failback_hold);
    assert_eq!(config.timing.max_clock_skew, Duration::from_secs(90));

    // Every documented timer is a key that works.
    for key in parse::TIMING_FIELDS {
        let text = format!("{BASE}{key} = \"7d\"\n");
        let result = parse(&text);
        assert!(
            !matches!(result, Err(ConfigError::UnknownKey { .. })),
            "{key}: {result:?}"
        );
    }
}

#[test]
fn a_timing_combination_the_protocol_cannot_use_is_refused() {
    let text = format!("{BASE}election_timeout = \"100ms\"\n");
    assert_eq!(
        error(&text),
        "server1.toml:7:1: [timing]: election_timeout must be at least three peer heartbeats \
         (after the overrides to the 'lan' profile)"
    );
    let text = format!("{BASE}peer_heartbeat = \"0s\"\n");
    assert!(error(&text).contains("heartbeat intervals must be more than zero"));
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let text = BASE.replace("id = 1", "id = ");
    let message = error(&text);
    assert!(
        message.starts_with("server1.toml:1:6: not valid TOML: "),
        "{message}"
    );
    let text = format!("{BASE}[timing]\n");
    assert!(error(&text).starts_with("server1.toml:9:"));
}

#[test]
fn an_oversized_text_is_refused_before_parsing() {
    let text = format!("{BASE}#{}\n", "x".repeat(CONFIG_BYTES_MAX));
    assert!(matches!(parse(&text), Err(ConfigError::TooLarge { .. })));
}

#[test]
fn no_prefix_or_mangling_of_a_config_panics_and_errors_point_inside_the_text() {
    let full = ConfigFile {
        hostid: Some(HostId::parse("0a1b2c3d4e5f").unwrap()),
        client_connections_max: Some(10),
        discovery: Some(true),
        discovery_multicast: Some("239.1.2.3".parse().unwrap()),
        listen: Some("127.0.0.1:1".parse().unwrap()),
        ..ConfigFile::triad_member(
            [addr("1@a"), addr("2@[::1]"), addr("3@c")],
            ServerId::TIEBREAKER,
            Path::new("d"),
            Path::new("l"),
            Path::new("k"),
        )
    }
    .render();
    assert!(parse(&full).is_ok());
    let lines = full.lines().count() + 1;
    let check = |text: &str| {
        if let Err(error) = parse(text)
            && let Some(at) = error.location()
        {
            assert!(at.line <= lines, "{error} for {text:?}");
        }
    };
    for (index, ch) in full.char_indices() {
        check(&full[..index]);
        for junk in ["\"", "[", "]", "=", "\n", "9", "x", "é", "\0", "@", ":"] {
            let mut mangled = full.clone();
            mangled.replace_range(index..index + ch.len_utf8(), junk);
            check(&mangled);
        }
    }
}

/// BASE with a `[tls]` section instead of `insecure_plaintext`.
fn with_tls(section: &str) -> String {
    BASE.replace("insecure_plaintext = true\n", "") + section
}

#[test]
fn tls_files_are_read_relative_to_the_config() {
    let text = with_tls("[tls]\nca = \"tls/ca.pem\"\ncert = \"tls/s1.pem\"\nkey = \"/k/s1.key\"\n");
    let config = parse(&text).unwrap();
    let expected = TlsFiles {
        ca: PathBuf::from("/etc/hal/tls/ca.pem"),
        cert: PathBuf::from("/etc/hal/tls/s1.pem"),
        key: PathBuf::from("/k/s1.key"),
    };
    assert_eq!(config.security, Security::Tls(expected));
    assert_eq!(
        config.client_connections_per_address_max,
        CLIENT_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT
    );
}

#[test]
fn a_server_must_say_how_it_secures_its_connections() {
    let neither = error(&with_tls(""));
    assert!(
        neither.contains("missing 'tls'") || neither.contains("tls"),
        "{neither}"
    );
    assert!(neither.contains("hal-net tls init"), "{neither}");
    assert!(neither.contains("insecure_plaintext = true"), "{neither}");
    let both = error(&format!(
        "{BASE}[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n"
    ));
    assert!(both.contains("contradict each other"), "{both}");
    let half = error(&with_tls("[tls]\nca = \"a\"\ncert = \"b\"\n"));
    assert!(half.contains("tls.key: missing key"), "{half}");
    let typo = error(&with_tls("[tls]\nca = \"a\"\ncert = \"b\"\nkye = \"c\"\n"));
    assert!(
        typo.contains("'kye'") && typo.contains("did you mean 'key'"),
        "{typo}"
    );
    let not_bool =
        error(&BASE.replace("insecure_plaintext = true", "insecure_plaintext = \"yes\""));
    assert!(
        not_bool.contains("expected true or false, found string"),
        "{not_bool}"
    );
}

#[test]
fn discovery_is_on_by_default_and_takes_a_multicast_group() {
    let config = parse(BASE).unwrap();
    assert!(config.discovery);
    assert_eq!(config.discovery_multicast, None);
    let off = parse(&format!("discovery = false\n{BASE}")).unwrap();
    assert!(!off.discovery);
    let group = parse(&format!("discovery_multicast = \"239.255.62.62\"\n{BASE}")).unwrap();
    assert!(group.discovery);
    assert_eq!(
        group.discovery_multicast,
        Some(std::net::Ipv4Addr::new(239, 255, 62, 62))
    );
    // Written back out, the file keeps both settings.
    let text = off.to_config_file().render();
    assert!(text.contains("discovery = false"), "{text}");
    assert!(!parse(&text).unwrap().discovery);
}

#[test]
fn bad_discovery_settings_name_the_key_and_what_is_allowed() {
    let cases = [
        (
            "discovery = \"yes\"",
            "server1.toml:1:13: discovery: expected true or false, found string",
        ),
        (
            "discovery_multicast = \"10.0.0.1\"",
            "server1.toml:1:23: discovery_multicast: 10.0.0.1 is not a multicast address",
        ),
        (
            "discovery_multicast = \"lic1\"",
            "server1.toml:1:23: discovery_multicast: 'lic1' is not an IPv4 address",
        ),
        (
            "discovery_multicast = \"ff02::1\"",
            "server1.toml:1:23: discovery_multicast: 'ff02::1' is not an IPv4 address",
        ),
        (
            "discovery_multicast = 239",
            "server1.toml:1:23: discovery_multicast: expected an IPv4 multicast address",
        ),
        (
            "discovery = false\ndiscovery_multicast = \"239.255.62.62\"",
            "server1.toml:2:23: discovery_multicast: set, but discovery = false",
        ),
        (
            "discovery_multicst = \"239.255.62.62\"",
            "server1.toml:1:1: unknown key 'discovery_multicst' at the top level; did you mean 'discovery_multicast'?",
        ),
    ];
    for (line, want) in cases {
        let message = error(&format!("{line}\n{BASE}"));
        assert!(message.starts_with(want), "{line}: {message}");
    }
}

#[test]
fn the_journal_is_on_by_default_and_its_bounds_are_set_in_megabytes_and_days() {
    let config = parse(BASE).unwrap();
    assert_eq!(config.journal, JournalConfig::default());
    assert!(config.journal.enabled);
    assert_eq!(config.journal_dir(), Path::new("/etc/hal/data/journal"));
    let text = format!(
        "{BASE}[journal]\nenabled = true\nfile_mb = 8\nkeep_mb = 100\nkeep_days = 7\nheartbeats = true\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.journal.limits.file_bytes, 8 << 20);
    assert_eq!(config.journal.limits.keep_bytes, 100 << 20);
    assert_eq!(
        config.journal.limits.keep_age,
        Duration::from_secs(7 * 24 * 3600)
    );
    assert!(config.journal.heartbeats);
    // Rendered and read back, the section is the same.
    let rendered = config.to_config_file().render();
    let back = ServerConfig::parse("server1.toml", &rendered, Path::new("/")).unwrap();
    assert_eq!(back.journal, config.journal);
}

#[test]
fn bad_journal_settings_name_the_key_and_what_is_allowed() {
    let bad = |section: &str| error(&format!("{BASE}[journal]\n{section}\n"));
    let err = bad("file_mb = 0");
    assert!(
        err.contains("server1.toml:10:11: journal.file_mb: 0 is not from 1 to 4096"),
        "{err}"
    );
    let err = bad("keep_days = \"forever\"");
    assert!(
        err.contains("journal.keep_days: expected a whole number"),
        "{err}"
    );
    let err = bad("enabled = 1");
    assert!(
        err.contains("journal.enabled: expected true or false"),
        "{err}"
    );
    let err = bad("keep_mbs = 10");
    assert!(
        err.contains("keep_mb"),
        "the nearest key is suggested: {err}"
    );
    let err = bad("file_mb = 100\nkeep_mb = 10");
    assert!(err.contains("keep_mb is smaller than file_mb"), "{err}");
    let err = error(&format!("journal = true\n{BASE}"));
    assert!(err.contains("expected a section"), "{err}");
}
