use super::*;

#[test]
fn renewal_falls_in_70_to_90_percent_of_the_lifetime() {
    let nb = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let na = nb + Duration::from_secs(10_000);
    assert_eq!(
        renewal_point((nb, na), 700),
        nb + Duration::from_secs(7_000)
    );
    assert_eq!(
        renewal_point((nb, na), 900),
        nb + Duration::from_secs(9_000)
    );
    for _ in 0..500 {
        let d = RenewAt::Lifetime.delay((nb, na), nb);
        assert!(
            d >= Duration::from_secs(7_000) && d <= Duration::from_secs(9_000),
            "{d:?}"
        );
    }
    // Past the point: renew now.
    assert_eq!(RenewAt::Lifetime.delay((nb, na), na), Duration::ZERO);
    assert_eq!(
        RenewAt::After(Duration::from_secs(3)).delay((nb, na), nb),
        Duration::from_secs(3)
    );
}

#[test]
fn retries_back_off_to_32_seconds() {
    let d: Vec<u64> = (0..7).map(|a| retry_delay(a).as_secs()).collect();
    assert_eq!(d, [2, 4, 8, 16, 32, 32, 32]);
    assert_eq!(retry_delay(u32::MAX).as_secs(), 32);
}
