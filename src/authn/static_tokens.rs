//! The static token file (the seeds' `--token-auth-file`): CSV `token,user,uid,"group1,group2"`
//! (reference §5.1). Stricter than upstream: a malformed line or a duplicate token is a
//! configuration error naming the line; weak tokens are warned about. Tokens are held zeroized
//! and compared in constant time.

use std::collections::HashMap;
use std::path::Path;

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::{AuthnError, TokenLineProblem};

/// Most tokens in one file (a static file is for a handful of operators and bootstrap users).
pub const MAX_TOKENS: usize = 10_000;
/// Longest token accepted (Kubernetes service-account JWTs are far shorter than this).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Most columns on one line (4 are used; upstream ignores the rest, a bound keeps it small).
pub const MAX_COLUMNS: usize = 64;
/// Below this many bits of apparent entropy a token is warned about (design.md: ≥ 128 bits).
pub const MIN_TOKEN_BITS: f64 = 128.0;

/// The user a static token authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUser {
    /// User name (column 2).
    pub user: String,
    /// UID (column 3).
    pub uid: String,
    /// Groups (column 4, split on `,`).
    pub groups: Vec<String>,
}

/// One token, the secret held zeroized.
struct Entry {
    token: Zeroizing<Vec<u8>>,
    user: StaticUser,
    line: u64,
}

/// The tokens of the static token file, keyed by the SHA-256 of the token.
pub struct StaticTokens {
    by_hash: HashMap<[u8; 32], Entry>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("count", &self.by_hash.len())
            .finish_non_exhaustive()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Bits of entropy the token would have if each character were drawn uniformly from the
/// smallest usual alphabet that holds all of its characters (hex, `[a-z0-9]`, alphanumeric,
/// base64, printable ASCII).
pub fn apparent_entropy_bits(token: &[u8]) -> f64 {
    let all = |f: fn(&u8) -> bool| token.iter().all(f);
    let alphabet: f64 = if all(|b| b.is_ascii_hexdigit()) {
        16.0
    } else if all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        36.0
    } else if all(u8::is_ascii_alphanumeric) {
        62.0
    } else if all(|b| b.is_ascii_alphanumeric() || b"+/=-_.".contains(b)) {
        64.0
    } else {
        95.0
    };
    let mut seen = [false; 256];
    token.iter().for_each(|&b| seen[usize::from(b)] = true);
    let distinct = seen.iter().filter(|&&s| s).count().max(1) as f64;
    // A random token of n characters shows about min(n, alphabet) distinct ones; far fewer
    // means a pattern, so count only the distinct characters then.
    let expected = alphabet.min(token.len() as f64);
    let per_char = if distinct * 2.0 >= expected {
        alphabet.log2()
    } else {
        distinct.max(2.0).log2()
    };
    token.len() as f64 * per_char
}

fn check_token(token: &[u8]) -> Result<(), TokenLineProblem> {
    if token.is_empty() {
        return Err(TokenLineProblem::EmptyToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenLineProblem::TokenTooLong { max: MAX_TOKEN_LEN });
    }
    if !token.iter().all(|b| b.is_ascii_graphic()) {
        return Err(TokenLineProblem::TokenCharacters);
    }
    Ok(())
}

/// One parsed CSV line; the field bytes live in one zeroized buffer.
struct Fields {
    buf: Zeroizing<Vec<u8>>,
    ends: Vec<usize>,
}

impl Fields {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        self.buf.get(start..*self.ends.get(i)?)
    }
}

/// Parses one line as exactly one CSV record (RFC 4180 quoting) with `csv-core`, the csv
/// crate's own parser engine: it copies field bytes only into buffers given to it, so every
/// copy of a token is ours and zeroized.
fn parse_line(line: &[u8]) -> Result<Fields, TokenLineProblem> {
    let mut reader = csv_core::Reader::new();
    // Unquoting only shrinks a field, so the output never exceeds the input.
    let mut buf = Zeroizing::new(vec![0u8; line.len()]);
    let mut ends = [0usize; MAX_COLUMNS];
    let (res, nin, nout, nend) = reader.read_record(line, &mut buf, &mut ends);
    let (res, nend) = match res {
        csv_core::ReadRecordResult::InputEmpty if nin == line.len() => {
            let out = buf.get_mut(nout..).unwrap_or_default();
            let more_ends = ends.get_mut(nend..).unwrap_or_default();
            let (res, _, _, n2) = reader.read_record(&[], out, more_ends);
            (res, nend + n2)
        }
        other => (other, nend),
    };
    match res {
        csv_core::ReadRecordResult::Record if nin == line.len() => Ok(Fields {
            buf,
            ends: ends.get(..nend).unwrap_or_default().to_vec(),
        }),
        csv_core::ReadRecordResult::OutputEndsFull => {
            Err(TokenLineProblem::TooManyColumns { max: MAX_COLUMNS })
        }
        _ => Err(TokenLineProblem::Csv),
    }
}

fn parse_record(record: &Fields) -> Result<(Zeroizing<Vec<u8>>, StaticUser), TokenLineProblem> {
    if record.len() < 3 {
        return Err(TokenLineProblem::TooFewColumns);
    }
    let field = |i: usize| record.get(i).unwrap_or_default();
    let token = Zeroizing::new(field(0).to_vec());
    check_token(&token)?;
    let text = |i: usize| String::from_utf8(field(i).to_vec()).map_err(|_| TokenLineProblem::Csv);
    let user = text(1)?;
    if user.is_empty() {
        return Err(TokenLineProblem::EmptyUser);
    }
    let groups = match record.get(3) {
        Some(g) if !g.is_empty() => text(3)?.split(',').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Ok((
        token,
        StaticUser {
            user,
            uid: text(2)?,
            groups,
        },
    ))
}

impl StaticTokens {
    /// An empty set (no token file configured).
    pub fn empty() -> StaticTokens {
        StaticTokens {
            by_hash: HashMap::new(),
        }
    }

    /// Reads and parses the token file at `path`.
    pub fn load(path: &Path) -> Result<StaticTokens, AuthnError> {
        let bytes =
            Zeroizing::new(
                std::fs::read(path).map_err(|source| AuthnError::TokenFileRead {
                    path: path.to_owned(),
                    source,
                })?,
            );
        Self::parse(&bytes, path)
    }

    /// Parses token-file bytes; `path` only names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<StaticTokens, AuthnError> {
        let mut by_hash = HashMap::new();
        let line_err = |line, problem| AuthnError::TokenFileLine {
            path: path.to_owned(),
            line,
            problem,
        };
        // One CSV record per line (a quoted field may not span lines), so every error names
        // the exact line; blank lines are skipped.
        for (line, raw) in (1u64..).zip(bytes.split(|&b| b == b'\n')) {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = parse_line(raw).map_err(|p| line_err(line, p))?;
            let (token, user) = parse_record(&record).map_err(|p| line_err(line, p))?;
            let key = sha256(&token);
            if let Some(first) = by_hash.get(&key).map(|e: &Entry| e.line) {
                let problem = TokenLineProblem::DuplicateToken { first_line: first };
                return Err(line_err(line, problem));
            }
            if by_hash.len() >= MAX_TOKENS {
                return Err(AuthnError::TokenFileTooLarge {
                    path: path.to_owned(),
                    max: MAX_TOKENS,
                });
            }
            let bits = apparent_entropy_bits(&token);
            if bits < MIN_TOKEN_BITS {
                tracing::warn!(file = %path.display(), line, user = %user.user, bits = bits as u32,
                    "static token has less than 128 bits of apparent entropy; use `kubesigner token generate-static`");
            }
            by_hash.insert(key, Entry { token, user, line });
        }
        Ok(StaticTokens { by_hash })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The user for a presented token, compared in constant time.
    pub fn lookup(&self, presented: &[u8]) -> Option<&StaticUser> {
        let entry = self.by_hash.get(&sha256(presented))?;
        bool::from(entry.token.as_slice().ct_eq(presented)).then_some(&entry.user)
    }
}

/// A fresh 128-bit token as 32 lowercase hex digits (the seeds' format).
pub fn generate_static_token() -> Result<Zeroizing<String>, AuthnError> {
    let mut raw = Zeroizing::new([0u8; 16]);
    aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| AuthnError::Random)?;
    Ok(Zeroizing::new(hex::encode(raw.as_ref())))
}

#[cfg(test)]
mod tests;
