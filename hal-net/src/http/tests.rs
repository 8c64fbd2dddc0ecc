use super::*;
use crate::wire::{LicenseStatus, PeerStatus};

fn report(role: Role, leader: Option<ServerId>, linked: &[ServerId]) -> StatusReport {
    StatusReport {
        server: ServerId::SECONDARY,
        triad: true,
        role,
        term: 3,
        leader,
        last_index: 9,
        commit_index: 9,
        applied_index: 9,
        wall_ms: 1_800_000_000_000,
        certificate_expires_ms: None,
        peers: [ServerId::PRIMARY, ServerId::TIEBREAKER]
            .into_iter()
            .map(|id| PeerStatus {
                id,
                connected: linked.contains(&id),
                refused: None,
            })
            .collect(),
        features: vec![],
        license: LicenseStatus {
            digest: String::new(),
            index: 0,
            by: None,
            problems: vec![],
            file_differs: None,
        },
        options: None,
        software: None,
    }
}

#[test]
fn ready_means_part_of_a_majority_that_serves() {
    let me = ServerId::SECONDARY;
    let (one, three) = (ServerId::PRIMARY, ServerId::TIEBREAKER);
    let ready = |r: &StatusReport| readiness(Some(r), me);
    assert!(ready(&report(Role::Active, Some(me), &[three])).is_ok());
    assert_eq!(
        ready(&report(Role::Active, Some(me), &[])).unwrap_err(),
        "active, but linked to no peer: no majority"
    );
    assert_eq!(
        ready(&report(Role::Standby, Some(one), &[one])).unwrap(),
        "standby, following the active server #1"
    );
    assert!(ready(&report(Role::Standby, Some(one), &[three])).is_err());
    assert_eq!(
        ready(&report(Role::Standby, None, &[one, three])).unwrap_err(),
        "no active server known (no majority)"
    );
    assert!(readiness(None, me).is_err());
    let mut single = report(Role::Active, Some(ServerId::PRIMARY), &[]);
    single.triad = false;
    single.peers.clear();
    assert!(readiness(Some(&single), ServerId::PRIMARY).is_ok());
}

#[test]
fn requests_name_this_server_by_address_localhost_or_a_triad_name() {
    let names = vec!["lic1.example.com".to_string(), "lic2".to_string()];
    for host in [
        "127.0.0.1:9100",
        "10.1.2.3",
        "[::1]:9100",
        "localhost:9100",
        "LIC1.example.com:9100",
        "lic2",
    ] {
        assert!(host_allowed(host, &names), "{host}");
    }
    for host in [
        "",
        "evil.example:9100",
        "lic1.example.com.evil:9100",
        "[::1",
    ] {
        assert!(!host_allowed(host, &names), "{host}");
    }
    assert_eq!(host_of("lic1:6200"), Some("lic1"));
    assert_eq!(host_of("[fe80::1]:6200"), Some("fe80::1"));
}
