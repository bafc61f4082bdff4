use super::*;

#[test]
fn durations_like_kubectl() {
    assert_eq!(human_duration(5), "5s");
    assert_eq!(human_duration(150), "2m30s");
    assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
    assert_eq!(human_duration(86400 * 3), "3d");
    assert_eq!(human_duration(86400 * 365), "365d");
    assert!(wants_table(Some(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    )));
    assert!(!wants_table(Some("application/json")));
}
