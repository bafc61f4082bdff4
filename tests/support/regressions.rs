//! Where proptest keeps the failing cases it found: beside the test's source file
//! (`tests/core/agreement.rs` → `tests/core/agreement.proptest-regressions`, committed).
//! Proptest's default (`SourceParallel`) climbs to the nearest `main.rs`, which every test
//! binary now has, and would look in `tests/proptest-regressions/agreement.txt` instead.

use proptest::test_runner::{FailurePersistence, FileFailurePersistence};

/// `failure_persistence` for a `ProptestConfig` in `tests/`: `<source>.proptest-regressions`.
pub fn beside_source() -> Option<Box<dyn FailurePersistence>> {
    Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )))
}
