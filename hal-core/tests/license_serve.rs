//! What one server may serve: HAL or normal network features, never a mix; and HostID
//! locks by role slot.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

use hal_core::license::{HostIdError, ServeError, ServeMode, ServerPosition, parse};
use hal_core::{HostId, ServerId};

fn hostid(text: &str) -> HostId {
    HostId::parse(text).unwrap()
}

const HAL: &str =
    "FEATURE cad {\n VENDOR = acme\n COUNT = 5\n HAL_SERVERS = 3\n HOSTID = aa bb cc\n}\n";
const HAL_UNLOCKED: &str = "FEATURE cam {\n VENDOR = acme\n COUNT = 5\n HAL_SERVERS = 3\n}\n";
const SINGLE: &str = "FEATURE viewer {\n VENDOR = acme\n COUNT = 50\n HOSTID = dd\n}\n";
const UNCOUNTED: &str = "FEATURE tool {\n VENDOR = acme\n}\n";

#[test]
fn all_hal_is_served_by_a_triad() {
    let license = parse("t", format!("{HAL}{HAL_UNLOCKED}").as_bytes()).unwrap();
    assert_eq!(license.serve_mode(), Ok(ServeMode::Hal));
}

#[test]
fn all_normal_is_served_by_one_server() {
    let license = parse("t", SINGLE.as_bytes()).unwrap();
    assert_eq!(license.serve_mode(), Ok(ServeMode::Single));
}

#[test]
fn a_mix_is_refused_naming_both_features() {
    let license = parse("mixed.lic", format!("{HAL}{SINGLE}").as_bytes()).unwrap();
    let error = license.serve_mode().unwrap_err();
    assert!(
        matches!(
            error,
            ServeError::Mixed {
                hal_line: 1,
                single_line: 7,
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message
            .starts_with("mixed.lic:1: FEATURE cad is a HAL feature but FEATURE viewer (line 7)"),
        "{message}"
    );
    assert!(message.contains("never both"), "{message}");
}

#[test]
fn an_uncounted_feature_cannot_be_served() {
    let license = parse("t", format!("{SINGLE}{UNCOUNTED}").as_bytes()).unwrap();
    let error = license.serve_mode().unwrap_err();
    assert!(
        matches!(error, ServeError::Uncounted { line: 6, .. }),
        "{error}"
    );
}

#[test]
fn each_triad_server_matches_its_own_slot() {
    let license = parse("t", HAL.as_bytes()).unwrap();
    let cad = &license.features[0];
    for (position, own) in [(1, "aa"), (2, "BB"), (3, "cc")] {
        let position = ServerPosition::Triad(ServerId::new(position).unwrap());
        assert_eq!(cad.check_hostid(position, &hostid(own)), Ok(()));
    }
    let second = ServerPosition::Triad(ServerId::SECONDARY);
    let error = cad.check_hostid(second, &hostid("aa")).unwrap_err();
    assert!(matches!(&error, HostIdError::Mismatch { expected, .. } if expected.as_str() == "bb"));
    assert_eq!(
        error.to_string(),
        "FEATURE cad is locked to HostID bb for HAL server #2, but this machine's HostID is aa"
    );
}

#[test]
fn an_unlocked_hal_feature_is_served_anywhere_in_the_triad() {
    let license = parse("t", HAL_UNLOCKED.as_bytes()).unwrap();
    for id in ServerId::ALL {
        let verdict = license.features[0].check_hostid(ServerPosition::Triad(id), &hostid("zz"));
        assert_eq!(verdict, Ok(()));
    }
}

#[test]
fn a_single_server_feature_matches_its_one_hostid() {
    let license = parse("t", SINGLE.as_bytes()).unwrap();
    let viewer = &license.features[0];
    assert_eq!(
        viewer.check_hostid(ServerPosition::Single, &hostid("dd")),
        Ok(())
    );
    assert!(matches!(
        viewer.check_hostid(ServerPosition::Single, &hostid("aa")),
        Err(HostIdError::Mismatch { .. })
    ));
}

#[test]
fn features_are_refused_by_the_wrong_kind_of_server() {
    let hal = parse("t", HAL_UNLOCKED.as_bytes()).unwrap();
    let error = hal.features[0].check_hostid(ServerPosition::Single, &hostid("aa"));
    assert!(matches!(error, Err(HostIdError::WrongMode { .. })));
    let single = parse("t", SINGLE.as_bytes()).unwrap();
    let error =
        single.features[0].check_hostid(ServerPosition::Triad(ServerId::PRIMARY), &hostid("dd"));
    assert!(matches!(error, Err(HostIdError::WrongMode { .. })));
}

#[test]
fn every_reason_not_to_serve_is_listed() {
    let text = format!(
        "{UNCOUNTED}{HAL}{SINGLE}{}",
        UNCOUNTED.replace("tool", "kit")
    );
    let license = parse("t", text.as_bytes()).unwrap();
    let errors = license.serve_errors();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(matches!(&errors[0], ServeError::Uncounted { line: 1, .. }));
    assert!(matches!(&errors[1], ServeError::Uncounted { line: 15, .. }));
    assert!(matches!(
        &errors[2],
        ServeError::Mixed {
            hal_line: 4,
            single_line: 10,
            ..
        }
    ));
    assert_eq!(license.serve_mode(), Err(errors[0].clone()));
    let good = parse("t", HAL.as_bytes()).unwrap();
    assert_eq!(good.serve_errors(), []);
}

#[test]
fn an_uncounted_feature_beside_hal_ones_is_no_mix() {
    let license = parse("t", format!("{HAL}{UNCOUNTED}").as_bytes()).unwrap();
    let errors = license.serve_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(matches!(&errors[0], ServeError::Uncounted { .. }));
}
