//! Test PKI made with the real `openssl` command line: a CA, a server certificate for
//! localhost, and client certificates with chosen subjects and EKUs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::PathBuf;

use super::tools;

pub struct Pki {
    pub dir: tempfile::TempDir,
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

impl Pki {
    /// A CA named `ca` plus a server certificate `server` for localhost / 127.0.0.1.
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.ca("ca", "test-ca");
        pki.leaf(
            "ca",
            "server",
            "/CN=localhost",
            "serverAuth",
            Some("DNS:localhost,IP:127.0.0.1"),
        );
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A self-signed CA `<name>.crt` / `<name>.key`.
    pub fn ca(&self, name: &str, cn: &str) {
        let (crt, key, subj) = (
            format!("{name}.crt"),
            format!("{name}.key"),
            format!("/CN={cn}"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend(EC);
        args.extend([
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            &subj,
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        tools::openssl(self.dir.path(), &args);
    }

    /// A leaf `<name>.crt` / `<name>.key` signed by CA `ca`, with the EKU list given
    /// (e.g. "clientAuth", "serverAuth"; "" for no EKU extension).
    pub fn leaf(&self, ca: &str, name: &str, subj: &str, eku: &str, san: Option<&str>) {
        let (crt, key, csr) = (
            format!("{name}.crt"),
            format!("{name}.key"),
            format!("{name}.csr"),
        );
        let mut args = vec!["req", "-new"];
        args.extend(EC);
        args.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", subj]);
        tools::openssl(self.dir.path(), &args);
        let mut ext =
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n".to_owned();
        if !eku.is_empty() {
            ext.push_str(&format!("extendedKeyUsage={eku}\n"));
        }
        if let Some(san) = san {
            ext.push_str(&format!("subjectAltName={san}\n"));
        }
        let ext_file = format!("{name}.ext");
        std::fs::write(self.path(&ext_file), ext).unwrap();
        let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
        tools::openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "1",
                "-extfile",
                &ext_file,
            ],
        );
    }
}
