//! The proptest settings every property test of hal-core uses.

use proptest::prelude::ProptestConfig;
use proptest::test_runner::{FileFailurePersistence, RngSeed};

/// 256 cases from `seed`, so CI runs the same cases every time (set `PROPTEST_RNG_SEED`
/// and `PROPTEST_CASES` to explore further); failures are kept in the `.regressions`
/// file beside the test file and replayed first.
pub fn fixed_seed(seed: u64) -> ProptestConfig {
    let base = ProptestConfig::default();
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(seed),
        chosen => chosen,
    };
    ProptestConfig {
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..base
    }
}
