//! Argument parsing (hand-rolled: a parser crate would dominate build time).

use crate::bail;
use crate::error::Result;
use std::path::PathBuf;

/// Usage text.
pub const USAGE: &str = "\
usage: cargo xtask [OPTIONS] <COMMAND> [-- ARGS]

commands:
  fork sync [--force]   materialize the fork from the pinned release + patches/
                        (no-op when up to date; refuses to discard unexported work
                        unless --force)
  fork export           rewrite patches/ (and series) from the fork's commits
  fork check            fail if the fork and patches/ disagree, or patches/ no
                        longer applies on the pinned release
  test [-- ARGS]        sync if needed, cargo test --workspace ARGS, then xtask's tests
  demo [-- ARGS]        sync if needed, cargo run -p kaisui-demo -- ARGS
  lint                  fmt check, sync if needed, clippy (-D warnings except
                        upstream's own code in the fork)
  ci                    lint, then test

options (also as environment variables):
  --fork-dir DIR        fork location       [KAISUI_FORK_DIR, default ractor_cluster_ext]
  --patches-dir DIR     patches location    [KAISUI_PATCHES_DIR, default patches]
  --crate-file FILE     use this .crate instead of cargo's cache/download
                                            [KAISUI_CRATE_FILE]
  (KAISUI_ROOT overrides the repository root; used by xtask's tests)
";

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `fork sync`.
    Sync {
        /// Discard local work.
        force: bool,
    },
    /// `fork export`.
    Export,
    /// `fork check`.
    Check,
    /// `test`, with args passed to `cargo test --workspace`.
    Test(Vec<String>),
    /// `demo`, with args passed to the demo.
    Demo(Vec<String>),
    /// `lint`.
    Lint,
    /// `ci`.
    Ci,
    /// `help`.
    Help,
}

/// Parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// The command.
    pub command: Command,
    /// `--fork-dir`.
    pub fork_dir: Option<PathBuf>,
    /// `--patches-dir`.
    pub patches_dir: Option<PathBuf>,
    /// `--crate-file`.
    pub crate_file: Option<PathBuf>,
}

/// Parse arguments (without the program name). Options may appear anywhere before `--`.
pub fn parse(args: &[String]) -> Result<Args> {
    let (mut fork_dir, mut patches_dir, mut crate_file) = (None, None, None);
    let mut force = false;
    let mut words = Vec::new();
    let mut extra = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |slot: &mut Option<PathBuf>| -> Result<()> {
            match inline.clone().or_else(|| it.next().cloned()) {
                Some(v) => *slot = Some(PathBuf::from(v)),
                None => bail!("{flag} needs a value\n\n{USAGE}"),
            }
            Ok(())
        };
        match flag {
            "--" => {
                extra.extend(it.by_ref().cloned());
                break;
            }
            "--fork-dir" => value(&mut fork_dir)?,
            "--patches-dir" => value(&mut patches_dir)?,
            "--crate-file" => value(&mut crate_file)?,
            "--force" | "-f" => force = true,
            "-h" | "--help" => words = vec!["help".to_string()],
            f if f.starts_with('-') => bail!("unknown option `{a}`\n\n{USAGE}"),
            _ => words.push(a.clone()),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let command = match words.as_slice() {
        ["fork", "sync"] => Command::Sync { force },
        ["fork", "export"] => Command::Export,
        ["fork", "check"] => Command::Check,
        ["test"] => Command::Test(extra.clone()),
        ["demo"] => Command::Demo(extra.clone()),
        ["lint"] => Command::Lint,
        ["ci"] => Command::Ci,
        ["help"] | [] => Command::Help,
        _ => bail!("unknown command `{}`\n\n{USAGE}", words.join(" ")),
    };
    if force && !matches!(command, Command::Sync { .. }) {
        bail!("--force only applies to `fork sync`");
    }
    if !extra.is_empty() && !matches!(command, Command::Test(_) | Command::Demo(_)) {
        bail!("arguments after `--` only apply to `test` and `demo`");
    }
    Ok(Args {
        command,
        fork_dir,
        patches_dir,
        crate_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args> {
        parse(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn parses_commands_and_options() {
        let a = p("fork sync --force --fork-dir /tmp/f").unwrap();
        assert_eq!(a.command, Command::Sync { force: true });
        assert_eq!(a.fork_dir, Some(PathBuf::from("/tmp/f")));
        let a = p("--patches-dir=/p test -- --nocapture x").unwrap();
        assert_eq!(
            a.command,
            Command::Test(vec!["--nocapture".into(), "x".into()])
        );
        assert_eq!(a.patches_dir, Some(PathBuf::from("/p")));
        assert_eq!(p("").unwrap().command, Command::Help);
    }

    #[test]
    fn rejects_misuse() {
        assert!(p("fork frob").is_err());
        assert!(p("fork export --force").is_err());
        assert!(p("ci -- x").is_err());
        assert!(p("fork sync --fork-dir").is_err());
    }
}
