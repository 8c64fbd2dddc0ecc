//! One server's status report, built from hal-core's getters (what `hal-net status`
//! shows for this server).

use std::collections::BTreeMap;

use hal_core::license::ServerPosition;
use hal_core::server::Server;
use hal_core::time::Now;

use sha2::Digest as _;

use crate::wire::{
    FeatureStatus, Holder, LicenseStatus, OptionsStatus, PeerStatus, StatusReport, WaitingStatus,
};

/// The report of `server` at `now`, with its peer links as the driver sees them.
pub(super) fn report(
    server: &Server,
    now: Now,
    peers: Vec<PeerStatus>,
    license: LicenseStatus,
) -> StatusReport {
    StatusReport {
        server: server.id(),
        triad: server.config().position != ServerPosition::Single,
        role: server.role(),
        term: server.term().0,
        leader: server.leader(),
        last_index: server.last_index().0,
        commit_index: server.commit_index().0,
        applied_index: server.applied_index().0,
        wall_ms: now.wall.0,
        // Filled in by the acceptor, which knows the node's certificate.
        certificate_expires_ms: None,
        peers,
        features: features(server),
        license,
        options: server.seats().options().map(|o| OptionsStatus {
            digest: hex::encode(sha2::Sha256::digest(o.text.as_bytes())),
            index: o.index.0,
            by: o.by.to_string(),
            rules: o.options.rules().count(),
        }),
        software: Some(crate::wire::Software::this_build(crate::storage::FORMAT)),
    }
}

/// Every feature of the catalog with its count and the seats held, in name order.
fn features(server: &Server) -> Vec<FeatureStatus> {
    let seats = server.seats();
    let mut holders: BTreeMap<&str, Vec<Holder>> = BTreeMap::new();
    for (handle, seat) in seats.iter() {
        let (user, host) = seats.holder(seat.client).unwrap_or(("?", "?"));
        holders
            .entry(seats.feature_of(seat))
            .or_default()
            .push(Holder {
                handle: handle.0,
                user: user.to_string(),
                host: host.to_string(),
                borrow_end_ms: seat.borrow_end().map(|end| end.0),
                granted_ms: seat.granted().0,
            });
    }
    server
        .catalog()
        .iter()
        .map(|(name, rules)| FeatureStatus {
            name: name.to_string(),
            count: rules.count,
            used: seats.used(name),
            holders: holders.remove(name).unwrap_or_default(),
            waiting: seats
                .queues()
                .find(|(feature, _)| *feature == name)
                .map(|(_, queue)| {
                    queue
                        .iter()
                        .map(|w| WaitingStatus {
                            id: w.id.0,
                            user: w.user.to_string(),
                            host: w.host.to_string(),
                            since_ms: w.since().0,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            borrow_hours_max: rules.borrow_hours_max.map(|hours| {
                seats
                    .options()
                    .and_then(|o| o.options.max_borrow_hours(name))
                    .map_or(hours, |most| most.min(hours))
            }),
        })
        .collect()
}
