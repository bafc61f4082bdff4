use super::*;

/// Every visible command path, `kubesigner-hsm-keygen` style.
fn visible(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    let name = if prefix.is_empty() {
        BIN.to_owned()
    } else {
        format!("{prefix}-{}", cmd.get_name())
    };
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        visible(sub, &name, out);
    }
    out.push(name);
}

#[test]
fn one_page_per_subcommand_with_its_flags_and_three_completions() {
    let dir = tempfile::tempdir().unwrap();
    let n = generate(dir.path()).unwrap();
    let mut names = Vec::new();
    visible(&Cli::command(), "", &mut names);
    assert_eq!(n, names.len());
    for name in &names {
        let page = dir.path().join("man").join(format!("{name}.1"));
        assert!(page.is_file(), "{} missing", page.display());
    }
    // The hidden generator has no page.
    assert!(!dir.path().join("man/kubesigner-generate-docs.1").exists());
    // Every long flag of `serve` is on its page (roff escapes '-' as '\-').
    let serve = std::fs::read_to_string(dir.path().join("man/kubesigner-serve.1")).unwrap();
    let cli = Cli::command();
    let serve_cmd = cli.find_subcommand("serve").unwrap();
    for arg in serve_cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            let escaped = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(serve.contains(&escaped), "--{long} not on the serve page");
        }
    }
    for f in ["kubesigner.bash", "_kubesigner", "kubesigner.fish"] {
        let text = std::fs::read_to_string(dir.path().join("completions").join(f)).unwrap();
        assert!(text.contains("bootstrap"), "{f}: {text}");
    }
}
