use super::*;
use crate::api::codec::protobuf::{MAGIC, decode_csr, encode_csr};
use std::collections::BTreeMap;

/// A protobuf field as an independent reader sees it.
#[derive(Debug, PartialEq)]
enum F<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
    }
    v
}

/// Every (field number, value) of one message, in wire order.
fn fields(b: &[u8]) -> Vec<(u64, F<'_>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let tag = varint(b, &mut at);
        match tag & 7 {
            0 => out.push((tag >> 3, F::Varint(varint(b, &mut at)))),
            2 => {
                let len = varint(b, &mut at) as usize;
                out.push((tag >> 3, F::Bytes(&b[at..at + len])));
                at += len;
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

fn bytes<'a>(fs: &[(u64, F<'a>)], n: u64) -> Vec<&'a [u8]> {
    fs.iter()
        .filter_map(|(k, v)| match v {
            F::Bytes(b) if *k == n => Some(*b),
            _ => None,
        })
        .collect()
}

fn one<'a>(fs: &[(u64, F<'a>)], n: u64) -> &'a [u8] {
    let all = bytes(fs, n);
    assert_eq!(all.len(), 1, "field {n}");
    all[0]
}

/// Checks magic and envelope type; returns `raw`.
fn open(body: &[u8], api_version: &str, kind: &str) -> Vec<u8> {
    assert_eq!(&body[..4], &MAGIC);
    let env = fields(&body[4..]);
    let tm = fields(one(&env, 1));
    assert_eq!(one(&tm, 1), api_version.as_bytes());
    assert_eq!(one(&tm, 2), kind.as_bytes());
    one(&env, 2).to_vec()
}

fn csr(name: &str) -> certv1::CertificateSigningRequest {
    let mut c = certv1::CertificateSigningRequest::default();
    c.metadata.name = Some(name.into());
    c.metadata.resource_version = Some("41".into());
    c.spec.signer_name = "kubernetes.io/kube-apiserver-client-kubelet".into();
    c.spec.request = k8s_openapi::ByteString(b"PEM".to_vec());
    c
}

#[test]
fn list_has_list_meta_and_items() {
    let list = k8s_openapi::List::<certv1::CertificateSigningRequest> {
        metadata: metav1::ListMeta {
            resource_version: Some("42".into()),
            ..Default::default()
        },
        items: vec![csr("a"), csr("b")],
    };
    let raw = open(&encode_csr_list(&list), "certificates.k8s.io/v1", LIST_KIND);
    let fs = fields(&raw);
    assert_eq!(one(&fields(one(&fs, 1)), 2), b"42");
    let items = bytes(&fs, 2);
    assert_eq!(items.len(), 2);
    for (item, want) in items.iter().zip(&list.items) {
        let body = crate::api::codec::protobuf::envelope(
            API_VERSION,
            "CertificateSigningRequest",
            item.to_vec(),
        );
        assert_eq!(&decode_csr(&body).unwrap(), want);
    }
}

#[test]
fn status_carries_code_reason_and_details() {
    let status = metav1::Status {
        status: Some("Failure".into()),
        message: Some("not found".into()),
        reason: Some("NotFound".into()),
        code: Some(404),
        details: Some(metav1::StatusDetails {
            name: Some("csr-x".into()),
            group: Some("certificates.k8s.io".into()),
            kind: Some("certificatesigningrequests".into()),
            causes: Some(vec![metav1::StatusCause {
                field: Some("spec.request".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let raw = open(&encode_status(&status), "v1", "Status");
    let fs = fields(&raw);
    assert_eq!(one(&fs, 2), b"Failure");
    assert_eq!(one(&fs, 3), b"not found");
    assert_eq!(one(&fs, 4), b"NotFound");
    assert!(fs.contains(&(6, F::Varint(404))));
    let details = fields(one(&fs, 5));
    assert_eq!(one(&details, 1), b"csr-x");
    assert_eq!(one(&details, 2), b"certificates.k8s.io");
    assert_eq!(one(&fields(one(&details, 4)), 3), b"spec.request");
}

#[test]
fn watch_frames_are_length_prefixed_events_with_enveloped_objects() {
    let mut bookmark = certv1::CertificateSigningRequest::default();
    bookmark.metadata.resource_version = Some("99".into());
    bookmark.metadata.annotations = Some(BTreeMap::from([(
        "k8s.io/initial-events-end".to_owned(),
        "true".to_owned(),
    )]));
    let mut stream = Vec::new();
    for (ty, obj) in [
        (EventType::Added, csr("a")),
        (EventType::Bookmark, bookmark),
    ] {
        stream.extend(encode_watch_frame(ty, encode_csr(&obj)).unwrap());
    }
    let mut rest = stream.as_slice();
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let event = fields(&rest[4..4 + len]);
        rest = &rest[4 + len..];
        let ty = String::from_utf8(one(&event, 1).to_vec()).unwrap();
        let raw = one(&fields(one(&event, 2)), 1);
        seen.push((ty, decode_csr(raw).unwrap()));
    }
    assert_eq!(seen[0].0, "ADDED");
    assert_eq!(seen[0].1, csr("a"));
    assert_eq!(seen[1].0, "BOOKMARK");
    assert_eq!(
        seen[1].1.metadata.annotations.as_ref().unwrap()["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(EventType::Error.as_str(), "ERROR");
}
