//! hal-sim: the deterministic simulator of the HAL triad.
//!
//! It will run hal-net's node driver under `turmoil` with partitions, crashes, flaky WAN
//! links and clock skew, check the HAL invariants, replay scenario files and sweep seeds
//! (DESIGN §6 and §7). It depends on hal-net, never the other way round: the simulator
//! runs the very code that production runs.
//!
//! Nothing is here yet; the work is tracked in the project's hal-sim and scenario issues.
