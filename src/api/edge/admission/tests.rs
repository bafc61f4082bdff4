#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn one_identity_gets_its_share_others_and_admins_still_get_in() {
    let p = Pool::new(
        "test",
        Shares {
            total: 10,
            per_identity: 4,
            admin_reserved: 2,
        },
    );
    let a: Vec<Slot> = (0..4)
        .map(|_| p.try_acquire(Class::User, "a").unwrap())
        .collect();
    assert_eq!(
        p.try_acquire(Class::User, "a").unwrap_err(),
        Refused::IdentityShare
    );
    let b: Vec<Slot> = (0..4)
        .map(|_| p.try_acquire(Class::User, "b").unwrap())
        .collect();
    // 8 of 10 held by non-admins: the 2 left are reserved.
    assert_eq!(p.try_acquire(Class::User, "c").unwrap_err(), Refused::Full);
    assert_eq!(
        p.try_acquire(Class::Anonymous, "x").unwrap_err(),
        Refused::Full
    );
    let admins: Vec<Slot> = (0..2)
        .map(|_| p.try_acquire(Class::Admin, "root").unwrap())
        .collect();
    assert_eq!(
        p.try_acquire(Class::Admin, "root").unwrap_err(),
        Refused::Full
    );
    drop(a);
    assert_eq!(p.held_by("a"), 0);
    assert!(p.try_acquire(Class::User, "c").is_ok());
    drop((b, admins));
}

#[test]
fn anonymous_callers_share_one_identity() {
    let p = Pool::new("test2", Shares::defaults(10));
    let held: Vec<Slot> = (0..5)
        .map(|i| p.try_acquire(Class::Anonymous, &i.to_string()).unwrap())
        .collect();
    assert_eq!(
        p.try_acquire(Class::Anonymous, "other").unwrap_err(),
        Refused::IdentityShare
    );
    drop(held);
}

#[test]
fn default_shares() {
    assert_eq!(
        Shares::defaults(400),
        Shares {
            total: 400,
            per_identity: 200,
            admin_reserved: 40
        }
    );
    assert_eq!(Shares::defaults(1).admin_reserved, 0);
}
