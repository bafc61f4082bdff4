use super::*;

#[test]
fn request_bodies() {
    use BodyFormat::*;
    assert_eq!(
        BodyFormat::from_content_type("application/json"),
        Some(Json)
    );
    assert_eq!(
        BodyFormat::from_content_type("application/json; charset=utf-8"),
        Some(Json)
    );
    assert_eq!(BodyFormat::from_content_type(PROTOBUF), Some(Protobuf));
    assert_eq!(BodyFormat::from_content_type("application/cbor"), None);
    assert_eq!(BodyFormat::from_content_type("application/yaml"), None);
}

#[test]
fn responses() {
    use ResponseFormat::*;
    let cases = [
        (None, Some(Json)),
        (Some(""), Some(Json)),
        // client-go with protobuf preferred (the kubelet): JSON is fine.
        (
            Some("application/vnd.kubernetes.protobuf, application/json"),
            Some(Json),
        ),
        (Some("application/vnd.kubernetes.protobuf"), Some(Protobuf)),
        (
            Some("application/vnd.kubernetes.protobuf, application/json;q=0"),
            Some(Protobuf),
        ),
        (
            Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
            Some(Json),
        ),
        (Some("*/*"), Some(Json)),
        (Some("application/cbor"), None),
        (Some("text/html"), None),
    ];
    for (accept, want) in cases {
        assert_eq!(ResponseFormat::negotiate(accept), want, "{accept:?}");
    }
}
