use std::path::Path;

use super::*;

const SEED: &str =
    "02b50b05283e98dd0fd71db496ef01e8,kubelet-bootstrap,10001,\"system:kubelet-bootstrap\"\n";

fn parse(text: &str) -> Result<StaticTokens, AuthnError> {
    StaticTokens::parse(text.as_bytes(), Path::new("tokens.csv"))
}

fn line_problem(text: &str) -> (u64, TokenLineProblem) {
    match parse(text) {
        Err(AuthnError::TokenFileLine { line, problem, .. }) => (line, problem),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn seed_line_parses() {
    let t = parse(SEED).unwrap();
    let u = t.lookup(b"02b50b05283e98dd0fd71db496ef01e8").unwrap();
    assert_eq!(u.user, "kubelet-bootstrap");
    assert_eq!(u.uid, "10001");
    assert_eq!(u.groups, vec!["system:kubelet-bootstrap".to_owned()]);
    assert!(t.lookup(b"02b50b05283e98dd0fd71db496ef01e9").is_none());
    assert!(t.lookup(b"").is_none());
}

#[test]
fn groups_columns_and_blank_lines() {
    let text = format!(
        "\n{SEED}\n\naaaabbbbccccddddeeeeffff00001111,admin,1,\"system:masters,ops\",ignored\nbbbbccccddddeeeeffff000011112222,plain,2\n"
    );
    let t = parse(&text).unwrap();
    assert_eq!(t.len(), 3);
    let admin = t.lookup(b"aaaabbbbccccddddeeeeffff00001111").unwrap();
    assert_eq!(
        admin.groups,
        vec!["system:masters".to_owned(), "ops".to_owned()]
    );
    let plain = t.lookup(b"bbbbccccddddeeeeffff000011112222").unwrap();
    assert!(plain.groups.is_empty());
}

#[test]
fn malformed_lines_name_the_line_and_not_the_token() {
    let (line, p) = line_problem(&format!("{SEED}\nsecrettoken-xyz,onlyuser\n"));
    assert_eq!((line, p), (3, TokenLineProblem::TooFewColumns));
    assert_eq!(line_problem(",u,1\n"), (1, TokenLineProblem::EmptyToken));
    assert_eq!(line_problem("tok,,1\n"), (1, TokenLineProblem::EmptyUser));
    assert_eq!(
        line_problem("tok en,u,1\n"),
        (1, TokenLineProblem::TokenCharacters)
    );
    let err = parse(&format!("{SEED}secrettoken-xyz,onlyuser\n")).unwrap_err();
    assert!(!err.to_string().contains("secrettoken-xyz"), "{err}");
}

#[test]
fn duplicate_token_is_an_error() {
    let text = format!("{SEED}\n{SEED}");
    assert_eq!(
        line_problem(&text),
        (3, TokenLineProblem::DuplicateToken { first_line: 1 })
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(!err.contains("02b50b05283e98dd0fd71db496ef01e8"), "{err}");
}

#[test]
fn entropy_estimate() {
    assert!(apparent_entropy_bits(b"02b50b05283e98dd0fd71db496ef01e8") >= MIN_TOKEN_BITS);
    assert!(apparent_entropy_bits(b"0123456789abcdef") < MIN_TOKEN_BITS);
    assert!(apparent_entropy_bits(&[b'a'; 64]) < MIN_TOKEN_BITS);
    assert!(apparent_entropy_bits(b"password") < MIN_TOKEN_BITS);
    let generated = generate_static_token().unwrap();
    assert_eq!(generated.len(), 32);
    assert!(
        generated
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn debug_does_not_show_tokens() {
    let t = parse(SEED).unwrap();
    assert!(!format!("{t:?}").contains("02b50b05"));
}

#[test]
fn crlf_line_endings() {
    let t = parse(&SEED.replace('\n', "\r\n")).unwrap();
    assert_eq!(
        t.lookup(b"02b50b05283e98dd0fd71db496ef01e8")
            .unwrap()
            .groups,
        vec!["system:kubelet-bootstrap".to_owned()]
    );
}

#[test]
fn quoting_follows_rfc4180() {
    let t = parse("\"tok,en-with-comma-aaaaaaaaaaaaaaaaaaaaaaaaa\",\"u \"\"q\"\"\",7,\"g1,g2\"\n")
        .unwrap();
    let u = t
        .lookup(b"tok,en-with-comma-aaaaaaaaaaaaaaaaaaaaaaaaa")
        .unwrap();
    assert_eq!(u.user, "u \"q\"");
    assert_eq!(u.groups, vec!["g1".to_owned(), "g2".to_owned()]);
    let many = format!("tok,u,1{}\n", ",x".repeat(MAX_COLUMNS));
    assert_eq!(
        line_problem(&many),
        (1, TokenLineProblem::TooManyColumns { max: MAX_COLUMNS })
    );
    assert_eq!(
        line_problem("tok,u,1\rother,v,2\n"),
        (1, TokenLineProblem::Csv)
    );
}

/// Captures what `tracing` writes while `f` runs.
fn captured_log(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn weak_tokens_are_warned_about_without_the_token() {
    let log = captured_log(|| {
        parse("weakpassword1,bob,3,\n").unwrap();
    });
    assert!(
        log.contains("WARN") && log.contains("line=1") && log.contains("bob"),
        "{log}"
    );
    assert!(!log.contains("weakpassword1"), "{log}");
    let quiet = captured_log(|| {
        parse(SEED).unwrap();
    });
    assert!(!quiet.contains("WARN"), "{quiet}");
}
