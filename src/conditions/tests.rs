use super::*;

#[test]
fn type_strings_round_trip_and_unknown_types_are_refused() {
    for t in ConditionType::ALL {
        assert_eq!(t.as_str().parse::<ConditionType>(), Ok(t));
        assert_eq!(t.to_string(), t.as_str());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{}\"", t.as_str()));
        assert_eq!(serde_json::from_str::<ConditionType>(&json).unwrap(), t);
    }
    assert_eq!(
        "approved".parse::<ConditionType>(),
        Err(UnknownConditionType("approved".to_owned()))
    );
    assert!(serde_json::from_str::<ConditionType>("\"Custom\"").is_err());
}

#[test]
fn unknown_types_are_kept_but_have_no_meaning() {
    let mut csr = CertificateSigningRequest::default();
    let mut custom = condition(ConditionType::Failed, "R", "m", &Time(Default::default()));
    custom.type_ = "Custom".to_owned();
    add_condition(&mut csr, custom.clone());
    assert_eq!(ConditionType::of(&custom), None);
    assert!(!is_decided(&csr));
    add_condition(
        &mut csr,
        condition(ConditionType::Approved, "R", "m", &Time(Default::default())),
    );
    assert!(needs_signing(&csr));
    let types: Vec<_> = conditions(&csr).iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Custom", "Approved"]);
    assert_eq!(
        find_condition(&csr, ConditionType::Approved).and_then(ConditionType::of),
        Some(ConditionType::Approved)
    );
}
