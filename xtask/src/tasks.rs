//! `test`, `demo` and `ci`: workspace-level tasks that need the fork.

use crate::bail;
use crate::cmd::{capture, cargo, stream};
use crate::error::Result;
use crate::fork;
use crate::Paths;
use std::process::Command;

/// Sync only when the fork is missing or patches/ changed; sync itself
/// refuses (with a diagnosis) rather than discard unexported work.
pub fn sync_if_needed(paths: &Paths) -> Result<()> {
    if !paths.fork_is_default() {
        eprintln!(
            "xtask: note: the root workspace builds {}, not {}",
            paths.root.join("ractor_cluster_ext").display(),
            paths.fork_dir.display()
        );
    }
    if fork::needs_sync(paths)? {
        fork::sync(paths, false)?;
    }
    Ok(())
}

fn header(step: &str) {
    eprintln!("\n==> {step}");
}

fn in_root(paths: &Paths, args: &[&str]) -> Command {
    let mut c = cargo();
    c.current_dir(&paths.root).args(args);
    c
}

fn run_step(c: Command, what: &str) -> Result<()> {
    header(what);
    if !stream(c, what)? {
        bail!("`{what}` failed (see output above)");
    }
    Ok(())
}

/// `cargo xtask test [-- args]`: workspace tests (upstream's included), then xtask's own.
pub fn test(paths: &Paths, extra: &[String]) -> Result<()> {
    sync_if_needed(paths)?;
    let mut failed = Vec::new();
    let mut ws = in_root(paths, &["test", "--workspace"]);
    ws.args(extra);
    let ws_what = format!("cargo test --workspace {}", extra.join(" "));
    if let Err(e) = run_step(ws, ws_what.trim()) {
        failed.push(e.0);
    }
    let own = in_root(paths, &["test", "--manifest-path", "xtask/Cargo.toml"]);
    if let Err(e) = run_step(own, "cargo test --manifest-path xtask/Cargo.toml") {
        failed.push(e.0);
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}

/// `cargo xtask demo [-- args]`: run the `kaisui-demo` package.
pub fn demo(paths: &Paths, extra: &[String]) -> Result<()> {
    sync_if_needed(paths)?;
    let meta = capture(
        in_root(paths, &["metadata", "--no-deps", "--format-version", "1"]),
        "cargo metadata",
    )?;
    if !meta.contains("\"name\":\"kaisui-demo\"") {
        bail!(
            "package `kaisui-demo` is not in the workspace yet: create examples/demo (package \
             name `kaisui-demo`) and add \"examples/demo\" to [workspace] members in {}",
            paths.root.join("Cargo.toml").display()
        );
    }
    let mut c = in_root(paths, &["run", "-p", "kaisui-demo", "--"]);
    c.args(extra);
    run_step(c, "cargo run -p kaisui-demo")
}

/// `cargo xtask ci`: [lint] then [test], failing fast.
pub fn ci(paths: &Paths) -> Result<()> {
    lint(paths)?;
    test(paths, &[])
}

/// `cargo xtask lint`: formatting and clippy, failing fast.
///
/// Clippy denies warnings in our crates; the fork's are shown but not fatal.
///
/// The fork is synced before the root `cargo fmt`, because cargo cannot
/// even load the root workspace without it.
pub fn lint(paths: &Paths) -> Result<()> {
    run_step(
        in_root(
            paths,
            &["fmt", "--manifest-path", "xtask/Cargo.toml", "--check"],
        ),
        "cargo fmt --manifest-path xtask/Cargo.toml --check",
    )?;
    header("sync the fork if needed");
    sync_if_needed(paths)?;
    run_step(
        in_root(paths, &["fmt", "--all", "--check"]),
        "cargo fmt --all --check",
    )?;
    let clippy = ["--all-targets", "--", "-D", "warnings"];
    // Upstream's own code trips newer clippy lints (4 with clippy 1.95); those
    // are reported for the fork but only our crates are held to -D warnings.
    let fork_pkg = crate::pin::load_pin(&paths.patches_dir)?.name;
    let mut c = in_root(paths, &["clippy", "--workspace", "--exclude", &fork_pkg]);
    c.args(clippy);
    run_step(
        c,
        &format!("cargo clippy --workspace --exclude {fork_pkg} --all-targets -- -D warnings"),
    )?;
    run_step(
        in_root(paths, &["clippy", "-p", &fork_pkg, "--all-targets"]),
        &format!(
            "cargo clippy -p {fork_pkg} --all-targets (upstream: warnings reported, not fatal)"
        ),
    )?;
    let mut c = in_root(paths, &["clippy", "--manifest-path", "xtask/Cargo.toml"]);
    c.args(clippy);
    run_step(
        c,
        "cargo clippy --manifest-path xtask/Cargo.toml --all-targets -- -D warnings",
    )
}
