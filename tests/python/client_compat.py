"""The official Python `kubernetes` client against kubesigner: create, list, watch, approve via
replace_certificate_signing_request_approval. Run by tests/e2e/python.rs:

    python3 tests/python/client_compat.py ADMIN_KUBECONFIG CSR_PEM_FILE
Exit status 0 and a final line "ok" on success."""

import base64
import sys
import threading

from kubernetes import client, config, watch


def main() -> int:
    kubeconfig, csr_file = sys.argv[1], sys.argv[2]
    config.load_kube_config(config_file=kubeconfig)
    api = client.CertificatesV1Api()
    with open(csr_file, "rb") as f:
        request = base64.b64encode(f.read()).decode()

    body = client.V1CertificateSigningRequest(
        metadata=client.V1ObjectMeta(name="py-serving-1"),
        spec=client.V1CertificateSigningRequestSpec(
            request=request,
            signer_name="kubernetes.io/kubelet-serving",
            usages=["digital signature", "server auth"],
        ),
    )
    created = api.create_certificate_signing_request(body)
    assert created.metadata.uid, "create must return a uid"
    assert created.spec.username == "kubesigner-admin", created.spec.username

    names = [c.metadata.name for c in api.list_certificate_signing_request().items]
    assert "py-serving-1" in names, names

    seen = []

    def watcher():
        w = watch.Watch()
        for ev in w.stream(
            api.list_certificate_signing_request,
            field_selector="metadata.name=py-serving-1",
            timeout_seconds=20,
        ):
            obj = ev["object"]
            conds = [c.type for c in (obj.status.conditions or [])]
            seen.append((ev["type"], conds, bool(obj.status.certificate)))
            if obj.status.certificate:
                w.stop()

    t = threading.Thread(target=watcher)
    t.start()

    csr = api.read_certificate_signing_request("py-serving-1")
    csr.status.conditions = (csr.status.conditions or []) + [
        client.V1CertificateSigningRequestCondition(
            type="Approved", status="True", reason="PythonApprove", message="approved by the python client"
        )
    ]
    api.replace_certificate_signing_request_approval("py-serving-1", csr)
    t.join(30)
    assert not t.is_alive(), "watch did not end"
    assert any(issued for (_, _, issued) in seen), seen
    assert any("Approved" in conds for (_, conds, _) in seen), seen
    final = api.read_certificate_signing_request("py-serving-1")
    pem = base64.b64decode(final.status.certificate).decode()
    assert pem.startswith("-----BEGIN CERTIFICATE-----"), pem[:40]
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
