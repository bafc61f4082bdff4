#![allow(clippy::unwrap_used)]
use rustix::process::{DumpableBehavior, Resource, dumpable_behavior, getrlimit};

#[test]
fn process_is_not_dumpable_and_has_no_core_limit() {
    super::forbid_core_dumps().unwrap();
    assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
    let lim = getrlimit(Resource::Core);
    assert_eq!((lim.current, lim.maximum), (Some(0), Some(0)));
}
