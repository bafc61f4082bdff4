//! RFC 7512 `pkcs11:` URIs: strict path/query split, percent-decoding that refuses bad
//! escapes, unknown attributes refused, errors that name the bad part.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;

use crate::config::signer::MAX_SESSIONS_LIMIT;

/// Longest URI accepted (a URI comes from the command line or the config file; real ones are
/// a few hundred bytes, this leaves room for long module paths).
pub const MAX_URI_LEN: usize = 4096;

/// Where a URI came from: decides whether `pin-value` is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriOrigin {
    /// The command line: `pin-value` is refused (argv is visible to every local user).
    CommandLine,
    /// The configuration file: `pin-value` is accepted with a warning.
    ConfigFile,
}

/// How the token is selected (exactly one selector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    /// `token=`: the token label.
    Label(String),
    /// `serial=`: the token serial number.
    Serial(String),
    /// `slot-id=`: the slot number.
    SlotId(u64),
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSelector::Label(l) => write!(f, "token={l}"),
            TokenSelector::Serial(s) => write!(f, "serial={s}"),
            TokenSelector::SlotId(i) => write!(f, "slot-id={i}"),
        }
    }
}

/// Errors parsing a `pkcs11:` URI; each names the bad part.
#[derive(Debug, thiserror::Error)]
pub enum UriError {
    /// The URI is empty.
    #[error("PKCS#11 URI is empty")]
    Empty,
    /// The URI is longer than [`MAX_URI_LEN`].
    #[error("PKCS#11 URI is longer than {MAX_URI_LEN} bytes")]
    TooLong,
    /// The scheme is not `pkcs11:`.
    #[error("not a pkcs11: URI (it must start with \"pkcs11:\")")]
    Scheme,
    /// An attribute has no `=`.
    #[error("PKCS#11 URI attribute {part:?} has no '='")]
    MissingEquals {
        /// The attribute text.
        part: String,
    },
    /// An attribute the signer does not know.
    #[error("unknown PKCS#11 URI attribute {name:?}")]
    UnknownAttribute {
        /// The attribute name.
        name: String,
    },
    /// An attribute given twice.
    #[error("PKCS#11 URI attribute {name:?} given twice")]
    Duplicate {
        /// The attribute name.
        name: String,
    },
    /// A bad percent escape.
    #[error("bad percent-encoding in PKCS#11 URI attribute {name:?}")]
    BadEscape {
        /// The attribute name.
        name: String,
    },
    /// A value that must be text is not UTF-8.
    #[error("PKCS#11 URI attribute {name:?} is not valid UTF-8")]
    NotUtf8 {
        /// The attribute name.
        name: String,
    },
    /// A value out of range or of the wrong form.
    #[error("PKCS#11 URI attribute {name:?} has a bad value: {why}")]
    BadValue {
        /// The attribute name.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Not exactly one of `token`, `serial`, `slot-id`.
    #[error(
        "PKCS#11 URI must select the token by exactly one of token, serial, slot-id (found {found})"
    )]
    TokenSelector {
        /// The selectors found (or "none").
        found: String,
    },
    /// Neither `id` nor `object`.
    #[error("PKCS#11 URI must select the key by id and/or object")]
    NoKeySelector,
    /// No `module-path`.
    #[error("PKCS#11 URI has no module-path query attribute")]
    NoModulePath,
    /// `pin-value` on the command line.
    #[error(
        "pin-value is refused on the command line (it would be visible in argv); use pin-source=file:..."
    )]
    PinValueOnCommandLine,
    /// Both `pin-value` and `pin-source`.
    #[error("PKCS#11 URI has both pin-value and pin-source")]
    TwoPins,
}

/// A parsed `pkcs11:` URI naming one private key in one token.
#[derive(Clone)]
pub struct Pkcs11Uri {
    /// How the token is selected.
    pub token: TokenSelector,
    /// `manufacturer=` (token manufacturer), matched when given.
    pub manufacturer: Option<String>,
    /// `model=` (token model), matched when given.
    pub model: Option<String>,
    /// `id=`: the key's CKA_ID bytes.
    pub id: Option<Vec<u8>>,
    /// `object=`: the key's CKA_LABEL.
    pub object: Option<String>,
    /// `module-path=`: the PKCS#11 module to load.
    pub module_path: PathBuf,
    /// `pin-source=`: file holding the user PIN (path or `file:` URI).
    pub pin_source: Option<PathBuf>,
    /// `pin-value=` (config file only).
    pub pin_value: Option<SecretString>,
    /// `max-sessions=`: size of the session pool.
    pub max_sessions: Option<usize>,
    /// Where the URI came from.
    pub origin: UriOrigin,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("key", &self.key_selector())
            .field("module_path", &self.module_path)
            .field("pin_source", &self.pin_source)
            .field("pin_value", &self.pin_value.as_ref().map(|_| "[REDACTED]"))
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

const PATH_ATTRS: &[&str] = &[
    "token",
    "serial",
    "slot-id",
    "manufacturer",
    "model",
    "id",
    "object",
    "type",
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
];
const QUERY_ATTRS: &[&str] = &["module-path", "pin-source", "pin-value", "max-sessions"];

impl Pkcs11Uri {
    /// Parses `text`; `origin` decides whether `pin-value` is accepted.
    pub fn parse(text: &str, origin: UriOrigin) -> Result<Pkcs11Uri, UriError> {
        if text.is_empty() {
            return Err(UriError::Empty);
        }
        if text.len() > MAX_URI_LEN {
            return Err(UriError::TooLong);
        }
        let rest = strip_scheme(text).ok_or(UriError::Scheme)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut attrs: Vec<(String, Vec<u8>)> = Vec::new();
        collect(path, ';', PATH_ATTRS, &mut attrs)?;
        collect(query, '&', QUERY_ATTRS, &mut attrs)?;
        Self::from_attrs(&attrs, origin)
    }

    fn from_attrs(attrs: &[(String, Vec<u8>)], origin: UriOrigin) -> Result<Pkcs11Uri, UriError> {
        let get = |n: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_slice())
        };
        let text = |n: &str| get(n).map(|v| utf8(n, v)).transpose();
        let token = token_selector(text("token")?, text("serial")?, text("slot-id")?)?;
        if let Some(t) = text("type")?
            && t != "private"
        {
            return Err(UriError::BadValue {
                name: "type".into(),
                why: "only type=private (the signing key) is meaningful here",
            });
        }
        let id = get("id").map(<[u8]>::to_vec);
        let object = text("object")?;
        if id.is_none() && object.is_none() {
            return Err(UriError::NoKeySelector);
        }
        let module_path = PathBuf::from(text("module-path")?.ok_or(UriError::NoModulePath)?);
        let pin_source = text("pin-source")?
            .map(|s| pin_source_path(&s))
            .transpose()?;
        let pin_value = text("pin-value")?.map(SecretString::from);
        if pin_value.is_some() {
            if origin == UriOrigin::CommandLine {
                return Err(UriError::PinValueOnCommandLine);
            }
            if pin_source.is_some() {
                return Err(UriError::TwoPins);
            }
            tracing::warn!(
                "the PKCS#11 URI in the config file carries pin-value; prefer pin-source or a systemd credential"
            );
        }
        let max_sessions = text("max-sessions")?
            .map(|s| max_sessions(&s))
            .transpose()?;
        Ok(Pkcs11Uri {
            token,
            manufacturer: text("manufacturer")?,
            model: text("model")?,
            id,
            object,
            module_path,
            pin_source,
            pin_value,
            max_sessions,
            origin,
        })
    }

    /// The key selector in URI form, for messages (`id=%01;object=ca`).
    pub fn key_selector(&self) -> String {
        let mut parts = Vec::new();
        if let Some(id) = &self.id {
            parts.push(format!("id={}", encode(id)));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={}", encode(o.as_bytes())));
        }
        parts.join(";")
    }
}

fn strip_scheme(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once(':')?;
    scheme.eq_ignore_ascii_case("pkcs11").then_some(rest)
}

fn collect(
    part: &str,
    sep: char,
    known: &[&str],
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), UriError> {
    for item in part.split(sep).filter(|s| !s.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| UriError::MissingEquals {
                part: item.to_owned(),
            })?;
        if !known.contains(&name) {
            return Err(UriError::UnknownAttribute {
                name: name.to_owned(),
            });
        }
        if out.iter().any(|(k, _)| k == name) {
            return Err(UriError::Duplicate {
                name: name.to_owned(),
            });
        }
        let bytes = decode(value).ok_or_else(|| UriError::BadEscape {
            name: name.to_owned(),
        })?;
        out.push((name.to_owned(), bytes));
    }
    Ok(())
}

fn token_selector(
    label: Option<String>,
    serial: Option<String>,
    slot: Option<String>,
) -> Result<TokenSelector, UriError> {
    let found: Vec<&str> = [("token", &label), ("serial", &serial), ("slot-id", &slot)]
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| *n)
        .collect();
    match (label, serial, slot) {
        (Some(l), None, None) => Ok(TokenSelector::Label(l)),
        (None, Some(s), None) => Ok(TokenSelector::Serial(s)),
        (None, None, Some(i)) => {
            i.parse()
                .map(TokenSelector::SlotId)
                .map_err(|_| UriError::BadValue {
                    name: "slot-id".into(),
                    why: "not a decimal number",
                })
        }
        _ if found.is_empty() => Err(UriError::TokenSelector {
            found: "none".into(),
        }),
        _ => Err(UriError::TokenSelector {
            found: found.join(" and "),
        }),
    }
}

fn pin_source_path(s: &str) -> Result<PathBuf, UriError> {
    let path = s
        .strip_prefix("file://")
        .or_else(|| s.strip_prefix("file:"))
        .unwrap_or(s);
    if path.is_empty() || s.starts_with('|') || s.contains("://") && !s.starts_with("file://") {
        return Err(UriError::BadValue {
            name: "pin-source".into(),
            why: "must be a file path or a file: URI",
        });
    }
    Ok(PathBuf::from(path))
}

fn max_sessions(s: &str) -> Result<usize, UriError> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_SESSIONS_LIMIT).contains(&n) => Ok(n),
        _ => Err(UriError::BadValue {
            name: "max-sessions".into(),
            why: "must be a number from 1 to 64",
        }),
    }
}

fn utf8(name: &str, v: &[u8]) -> Result<String, UriError> {
    String::from_utf8(v.to_vec()).map_err(|_| UriError::NotUtf8 {
        name: name.to_owned(),
    })
}

/// Strict percent-decoding: `%` must be followed by two hex digits.
fn decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}
