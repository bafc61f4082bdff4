//! Issuance: CSR parsing and proof of possession, one profile per signer name, the certificate builder.
