//! Unit tests for `validity.rs`.

use super::*;

const HOUR: u64 = 3600;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn long_ttl_lasts_exactly_ttl() {
    let now = at(1_800_000_000);
    let w = window(
        now,
        None,
        Duration::from_secs(8760 * HOUR),
        at(u32::MAX as u64),
    )
    .unwrap();
    assert_eq!(w.not_before, at(1_800_000_000 - 300));
    assert_eq!(
        w.not_after.duration_since(w.not_before).unwrap().as_secs(),
        8760 * HOUR
    );
}

#[test]
fn short_ttl_gets_the_backdate_on_top() {
    let now = at(1_800_000_000);
    let w = window(
        now,
        Some(Duration::from_secs(600)),
        Duration::from_secs(8760 * HOUR),
        at(u32::MAX as u64),
    )
    .unwrap();
    assert_eq!(w.not_after, at(1_800_000_600));
    assert_eq!(
        w.not_after.duration_since(w.not_before).unwrap().as_secs(),
        900
    );
}

#[test]
fn requested_ttl_is_capped_by_max_and_ca() {
    let now = at(1_800_000_000);
    let w = window(
        now,
        Some(Duration::from_secs(100 * 24 * HOUR)),
        Duration::from_secs(24 * HOUR),
        at(u32::MAX as u64),
    )
    .unwrap();
    assert_eq!(w.not_after, at(1_800_000_000 + 24 * HOUR - 300));
    let ca_end = at(1_800_000_000 + HOUR);
    let w = window(now, None, Duration::from_secs(8760 * HOUR), ca_end).unwrap();
    assert_eq!(w.not_after, ca_end);
}

#[test]
fn expired_ca_refuses() {
    let now = at(1_800_000_000);
    assert!(matches!(
        window(now, None, Duration::from_secs(HOUR), now),
        Err(IssueError::CaExpired)
    ));
    assert!(matches!(
        window(
            now,
            None,
            Duration::from_secs(HOUR),
            at(1_800_000_000 - 300)
        ),
        Err(IssueError::CaExpired)
    ));
}
