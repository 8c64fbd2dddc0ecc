//! hal-sim: the deterministic simulator of the HAL triad.
//!
//! It runs hal-net's node driver and client session under `turmoil`, over simulated TCP
//! ([`net`]), a simulated clock with offset and drift ([`clock`]) and simulated disks
//! under hal-net's own file storage that lose unsynced writes on a crash ([`storage`];
//! most crashes of a sweep are aimed at a disk's syncs, [`aim`]), in a world of three
//! servers, clients and faults ([`world`]), and writes the history of the run ([`history`],
//! DESIGN §6.4). It depends on hal-net, never the other way round: the simulator runs the
//! very code that production runs.
//!
//! Faults come from [`faults`]; [`probe`] and [`effects`] prove each took effect; the
//! six invariants of DESIGN §6.3 are checked by [`check`] as records are written;
//! [`sweep`] runs many seeds in parallel, and [`summary`] splits a sweep into shards and
//! merges their results. [`discovery`] runs server discovery over turmoil UDP. A
//! scenario can also start an [`impostor`], a
//! host that claims a server's slot without its identity and must be refused.
//! [`import`] writes a scenario from the journals of a field incident. A run is shown as
//! a text [`timeline`] and as an HTML page ([`html`]), both telling which requests were
//! sent again and why ([`resend`]).

pub mod aim;
pub mod check;
pub mod clock;
pub mod discovery;
pub mod effects;
pub mod error;
pub mod faults;
pub mod field;
pub mod history;
pub mod html;
pub mod import;
pub mod impostor;
pub mod net;
pub mod probe;
pub mod resend;
pub mod scenario;
pub mod shrink;
pub mod storage;
pub mod summary;
pub mod sweep;
pub mod timeline;
pub mod world;
