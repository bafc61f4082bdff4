use super::*;
use proptest::prelude::*;
use serde_json::json;

/// A minimal protobuf writer, independent of the `prost` declarations under test, used to build
/// bodies byte for byte the way client-go's gogo-generated marshallers do.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn varint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }
    fn tag(&mut self, field: u64, wire: u64) -> &mut Self {
        self.varint(field << 3 | wire)
    }
    fn bytes(&mut self, field: u64, b: &[u8]) -> &mut Self {
        self.tag(field, 2).varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, field: u64, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn int(&mut self, field: u64, v: u64) -> &mut Self {
        self.tag(field, 0).varint(v)
    }
    fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

const PEM: &str =
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n";
const KUBELET_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = W::default().str(1, api_version).str(2, kind).done();
    let unknown = W::default()
        .bytes(1, &type_meta)
        .bytes(2, raw)
        .str(3, "")
        .str(4, "")
        .done();
    [MAGIC.as_slice(), &unknown].concat()
}

/// The create body of the kubelet's rotation path, as client-go marshals it: gogo writes every
/// non-pointer string (even empty), `generation` 0, a zero `creationTimestamp` as an empty
/// message, and an empty `status`.
fn kubelet_create_raw() -> Vec<u8> {
    let meta = W::default()
        .str(1, "")
        .str(2, "csr-")
        .str(3, "")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .bytes(8, &[])
        .done();
    let spec = W::default()
        .bytes(1, PEM.as_bytes())
        .str(2, "")
        .str(3, "")
        .str(5, "digital signature")
        .str(5, "client auth")
        .str(7, KUBELET_SIGNER)
        .done();
    W::default()
        .bytes(1, &meta)
        .bytes(2, &spec)
        .bytes(3, &[])
        .done()
}

fn kubelet_create_body() -> Vec<u8> {
    envelope(API_VERSION, KIND, &kubelet_create_raw())
}

fn from_json(v: serde_json::Value) -> certv1::CertificateSigningRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn client_go_create_body_decodes_like_the_equivalent_json() {
    let got = decode_csr(&kubelet_create_body()).unwrap();
    let want = from_json(json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "csr-", "creationTimestamp": null},
        "spec": {
            "request": base64_std(PEM.as_bytes()),
            "signerName": KUBELET_SIGNER,
            "usages": ["digital signature", "client auth"]
        },
        "status": {}
    }));
    assert_eq!(got, want);
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn full_csr_json() -> serde_json::Value {
    json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {
            "name": "node-csr-Ab3_x", "uid": "0b8c5a7e-1111-2222-3333-444455556666",
            "resourceVersion": "42", "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"a": "b"}, "annotations": {"k": "v"}
        },
        "spec": {
            "request": base64_std(PEM.as_bytes()),
            "signerName": KUBELET_SIGNER,
            "expirationSeconds": 86400,
            "usages": ["digital signature", "client auth"],
            "username": "system:node:n1", "uid": "u1",
            "groups": ["system:nodes", "system:authenticated"],
            "extra": {"scopes": ["x", "y"]}
        },
        "status": {
            "conditions": [{
                "type": "Approved", "status": "True", "reason": "AutoApproved",
                "message": "ok", "lastUpdateTime": "2026-01-01T00:00:05Z",
                "lastTransitionTime": "2026-01-01T00:00:05Z"
            }],
            "certificate": base64_std(b"-----BEGIN CERTIFICATE-----\n...")
        }
    })
}

#[test]
fn full_object_round_trips_through_protobuf() {
    let csr = from_json(full_csr_json());
    let body = encode_csr(&csr);
    assert!(body.starts_with(&MAGIC));
    assert_eq!(decode_csr(&body).unwrap(), csr);
}

#[test]
fn hand_built_condition_times_and_extra_decode() {
    let time = W::default().int(1, 1_767_225_605).int(2, 0).done();
    let cond = W::default()
        .str(1, "Approved")
        .str(2, "AutoApproved")
        .str(3, "ok")
        .bytes(4, &time)
        .bytes(5, &time)
        .str(6, "True")
        .done();
    let extra_entry = W::default()
        .str(1, "scopes")
        .bytes(2, &W::default().str(1, "x").str(1, "y").done())
        .done();
    let spec = W::default()
        .bytes(1, PEM.as_bytes())
        .bytes(6, &extra_entry)
        .str(7, KUBELET_SIGNER)
        .int(8, 86400)
        .done();
    let raw = W::default()
        .bytes(2, &spec)
        .bytes(3, &W::default().bytes(1, &cond).done())
        .done();
    let csr = decode_csr(&envelope(API_VERSION, KIND, &raw)).unwrap();
    let cond = &csr.status.unwrap().conditions.unwrap()[0];
    assert_eq!(cond.type_, "Approved");
    assert_eq!(cond.status, "True");
    assert_eq!(
        cond.last_update_time.as_ref().unwrap().0.to_string(),
        "2026-01-01T00:00:05Z"
    );
    assert_eq!(csr.spec.expiration_seconds, Some(86400));
    assert_eq!(csr.spec.extra.unwrap()["scopes"], vec!["x", "y"]);
}

#[test]
fn wrong_magic_is_refused() {
    let mut body = kubelet_create_body();
    body[3] = 1;
    assert_eq!(decode_csr(&body), Err(ProtobufError::BadMagic));
    assert_eq!(decode_csr(b""), Err(ProtobufError::BadMagic));
    assert_eq!(decode_csr(b"{\"kind\":1}"), Err(ProtobufError::BadMagic));
}

#[test]
fn truncated_envelope_is_refused() {
    let body = kubelet_create_body();
    // 10 bytes from the end lies inside `raw`: the envelope's length prefix overruns.
    let cut = &body[..body.len() - 10];
    assert!(matches!(decode_csr(cut), Err(ProtobufError::Envelope(_))));
    // Every shorter prefix is an error or a valid object, never a panic.
    for n in 0..body.len() {
        let _ = decode_csr(&body[..n]);
    }
}

#[test]
fn huge_length_prefixes_are_refused() {
    let mut body = MAGIC.to_vec();
    body.extend(W::default().tag(2, 2).varint(u64::MAX >> 1).done());
    assert!(matches!(decode_csr(&body), Err(ProtobufError::Envelope(_))));
    // Inside the object: spec claims 4 GiB.
    let raw = W::default().tag(2, 2).varint(1 << 32).done();
    let body = envelope(API_VERSION, KIND, &raw);
    assert!(matches!(decode_csr(&body), Err(ProtobufError::Message(_))));
}

#[test]
fn wrong_kind_is_refused() {
    let body = envelope("v1", "Secret", &kubelet_create_raw());
    assert_eq!(
        decode_csr(&body),
        Err(ProtobufError::WrongKind {
            api_version: "v1".into(),
            kind: "Secret".into()
        })
    );
    let body = envelope("certificates.k8s.io/v1beta1", KIND, &kubelet_create_raw());
    assert!(matches!(
        decode_csr(&body),
        Err(ProtobufError::WrongKind { .. })
    ));
}

#[test]
fn oversized_body_is_refused_before_parsing() {
    let mut body = MAGIC.to_vec();
    body.resize(MAX_BODY_BYTES + 1, 0);
    assert_eq!(
        decode_csr(&body),
        Err(ProtobufError::TooLarge {
            len: MAX_BODY_BYTES + 1,
            max: MAX_BODY_BYTES
        })
    );
}

#[test]
fn compressed_or_foreign_envelope_is_refused() {
    let type_meta = W::default().str(1, API_VERSION).str(2, KIND).done();
    let unknown = W::default()
        .bytes(1, &type_meta)
        .bytes(2, &kubelet_create_raw())
        .str(3, "gzip")
        .done();
    let body = [MAGIC.as_slice(), &unknown].concat();
    assert!(matches!(
        decode_csr(&body),
        Err(ProtobufError::UnsupportedEncoding { .. })
    ));
    let unknown = W::default().bytes(1, &type_meta).done();
    let body = [MAGIC.as_slice(), &unknown].concat();
    assert_eq!(decode_csr(&body), Err(ProtobufError::MissingObject));
}

#[test]
fn deeply_nested_unknown_groups_are_an_error_not_a_stack_overflow() {
    let mut raw = W::default();
    for _ in 0..100_000 {
        raw.tag(20, 3); // start-group of an unknown field, never closed
    }
    let body = envelope(API_VERSION, KIND, &raw.done());
    assert!(matches!(decode_csr(&body), Err(ProtobufError::Message(_))));
}

#[test]
fn bad_utf8_and_out_of_range_time_are_refused() {
    let spec = W::default().bytes(7, &[0xff, 0xfe]).done();
    let raw = W::default().bytes(2, &spec).done();
    let body = envelope(API_VERSION, KIND, &raw);
    assert!(matches!(decode_csr(&body), Err(ProtobufError::Message(_))));

    let time = W::default().int(1, i64::MAX as u64).done();
    let meta = W::default().bytes(8, &time).done();
    let raw = W::default().bytes(1, &meta).done();
    let body = envelope(API_VERSION, KIND, &raw);
    assert_eq!(
        decode_csr(&body),
        Err(ProtobufError::TimeOutOfRange { seconds: i64::MAX })
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_csr(&tail);
        let _ = decode_csr(&[MAGIC.as_slice(), &tail].concat());
        let _ = decode_csr(&envelope(API_VERSION, KIND, &tail));
    }

    #[test]
    fn mutated_valid_bodies_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut body = kubelet_create_body();
        for (i, b) in flips {
            let at = i.index(body.len());
            body[at] = b;
        }
        // Whatever decodes, re-encodes to the same object.
        if let Ok(csr) = decode_csr(&body) {
            prop_assert_eq!(decode_csr(&encode_csr(&csr)), Ok(csr));
        }
    }
}
