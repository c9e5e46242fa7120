//! Running `git` and `cargo`.

use crate::bail;
use crate::error::Result;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

/// Identity and date for commits xtask creates, so hashes are reproducible.
pub const BOT_NAME: &str = "kaisui xtask";
/// See [`BOT_NAME`].
pub const BOT_EMAIL: &str = "xtask@kaisui.invalid";
/// Fixed date of the pristine upstream commit.
pub const BOT_DATE: &str = "2000-01-01T00:00:00+0000";

/// A `git -C dir` command. With `isolated`, the user's and system git
/// config are ignored so commits and patches come out byte-identical on
/// every machine; repository-local config still applies.
pub fn git(dir: &Path, isolated: bool) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    // A caller's hook environment must not redirect us to another repo.
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
    ] {
        c.env_remove(var);
    }
    if isolated {
        c.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_COMMITTER_NAME", BOT_NAME)
            .env("GIT_COMMITTER_EMAIL", BOT_EMAIL);
    }
    c
}

/// Run a command, capturing output; on failure the error carries what it printed.
pub fn capture(mut c: Command, what: &str) -> Result<String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| crate::Error(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !stdout.trim().is_empty() {
            msg = format!("{}\n{msg}", stdout.trim());
        }
        bail!("{what} failed ({}):\n{msg}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `git -C dir args...`, returning stdout.
pub fn git_out<I, S>(dir: &Path, isolated: bool, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = git(dir, isolated);
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let what = format!(
        "`git {}` in {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        dir.display()
    );
    c.args(&args);
    capture(c, &what)
}

/// The `cargo` that runs us (so toolchain overrides carry over).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Run a command with inherited stdio (output streams to the user); true on success.
pub fn stream(mut c: Command, what: &str) -> Result<bool> {
    let status = c
        .stdin(Stdio::null())
        .status()
        .map_err(|e| crate::Error(format!("cannot run {what}: {e}")))?;
    Ok(status.success())
}
