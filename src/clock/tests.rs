use super::*;

#[test]
fn seconds_round_trip_and_clamp_at_the_edges() {
    assert_eq!(unix_secs(from_unix(1_800_000_000)), 1_800_000_000);
    assert_eq!(from_unix(-5), UNIX_EPOCH);
    assert_eq!(from_unix_checked(-5), None);
    assert_eq!(
        from_unix_checked(7),
        Some(UNIX_EPOCH + Duration::from_secs(7))
    );
    assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), 0);
    assert!(unix_now() > 1_700_000_000);
}
