use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::*;

fn sample() -> CertificateSigningRequest {
    let mut c = CertificateSigningRequest::default();
    c.metadata.name = Some("csr-abcde".into());
    c.metadata.uid = Some("1b2c".into());
    c.spec.signer_name = "kubernetes.io/kube-apiserver-client-kubelet".into();
    c.spec.usages = Some(vec!["digital signature".into(), "client auth".into()]);
    c
}

#[test]
fn answers_decode_by_content_type() {
    let csr = sample();
    let pb = encode_csr(&csr);
    let got = decode_answer(Some(PROTOBUF.to_owned()), &pb).unwrap();
    assert_eq!(got.metadata.uid.as_deref(), Some("1b2c"));
    assert_eq!(got.spec.signer_name, csr.spec.signer_name);
    let json = serde_json::to_vec(&csr).unwrap();
    for ct in [Some("application/json; charset=utf-8".to_owned()), None] {
        let got = decode_answer(ct, &json).unwrap();
        assert_eq!(got.metadata.name.as_deref(), Some("csr-abcde"));
    }
    // A protobuf label on a JSON body (or the other way round) is an error, not a guess.
    assert!(matches!(
        decode_answer(Some(PROTOBUF.to_owned()), &json),
        Err(ClientError::DecodeProtobuf { .. })
    ));
    assert!(matches!(
        decode_answer(Some(JSON.to_owned()), &pb),
        Err(ClientError::Decode { .. })
    ));
}

#[test]
fn protobuf_clients_say_so_and_accept_json_too() {
    let ca = include_bytes!("../../api/gc/testdata/gc_leaf.pem");
    let token = Credential::Token(SecretString::from("abcdef.0123456789abcdef"));
    let json_client = ApiClient::new("https://127.0.0.1:1", ca, None, token).unwrap();
    assert_eq!(json_client.body_encoding(), "json");
    let c = json_client.clone().with_protobuf();
    assert_eq!(c.body_encoding(), "protobuf");
    let req = c
        .request(Method::POST, CSR_PATH, Some((vec![1, 2], PROTOBUF)))
        .unwrap();
    assert_eq!(req.headers()[header::CONTENT_TYPE], PROTOBUF);
    assert_eq!(req.headers()[header::ACCEPT], ACCEPT_PROTOBUF_OR_JSON);
    let req = json_client
        .request(Method::POST, CSR_PATH, Some((vec![1], JSON)))
        .unwrap();
    assert_eq!(req.headers()[header::CONTENT_TYPE], JSON);
    assert_eq!(req.headers()[header::ACCEPT], JSON);
    // A 415 switches the client to JSON for good (shared by its clones).
    c.protobuf.store(false, Ordering::Relaxed);
    assert_eq!(c.clone().body_encoding(), "json");
}
