use super::*;

#[test]
fn renews_sixty_days_ahead_or_at_half_life() {
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let year = Duration::from_secs(365 * 86_400);
    assert_eq!(renew_at(end, year), end - RENEW_BEFORE);
    let month = Duration::from_secs(30 * 86_400);
    assert_eq!(renew_at(end, month), end - month / 2);
}
