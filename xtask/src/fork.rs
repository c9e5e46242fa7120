//! `fork sync`, `fork export` and `fork check`.
//!
//! The fork is a git repo whose first commit is the pristine crates.io
//! release (tagged `upstream`) and whose later commits are exactly
//! `patches/series`, one commit per patch. patches/ is the source of truth
//! in our repo; the fork is where patches are edited.

use crate::archive::{unpack_crate, verify};
use crate::bail;
use crate::cmd::{git, git_out, BOT_DATE, BOT_EMAIL, BOT_NAME};
use crate::error::{Context, Result};
use crate::fetch::{locate_or_fetch, write_if_changed};
use crate::pin::{inputs_hash, load_pin, load_series, Pin};
use crate::Paths;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Tag on the pristine release commit.
pub const UPSTREAM_TAG: &str = "upstream";
/// Stamp file inside the fork's `.git`.
pub const STAMP: &str = "kaisui-stamp";

/// A directory removed on drop, so a failed run leaves nothing half-made.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create a fresh, uniquely named directory `parent/<prefix>-<pid>-<n>`.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<TempDir> {
        static N: AtomicUsize = AtomicUsize::new(0);
        fs::create_dir_all(parent).ctx(|| format!("cannot create {}", parent.display()))?;
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("{prefix}-{}-{n}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).ctx(|| format!("cannot remove {}", path.display()))?;
        }
        fs::create_dir(&path).ctx(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// What the fork looked like after its last sync or export.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inputs: String,
    head: String,
}

fn stamp_path(fork: &Path) -> PathBuf {
    fork.join(".git").join(STAMP)
}

fn read_stamp(fork: &Path) -> Option<Stamp> {
    let text = fs::read_to_string(stamp_path(fork)).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim().to_string())
    };
    Some(Stamp {
        inputs: get("inputs")?,
        head: get("head")?,
    })
}

fn write_stamp(fork: &Path, stamp: &Stamp) -> Result<()> {
    let text = format!(
        "# Written by cargo xtask: hash of patches/ inputs and the fork's HEAD after the\n\
         # last sync/export. Lets sync skip work and notice unexported commits.\n\
         inputs={}\nhead={}\n",
        stamp.inputs, stamp.head
    );
    let p = stamp_path(fork);
    fs::write(&p, text).ctx(|| format!("cannot write {}", p.display()))
}

fn rev(dir: &Path, spec: &str) -> Result<String> {
    Ok(git_out(dir, false, ["rev-parse", "--verify", "-q", spec])?
        .trim()
        .to_string())
}

/// Uncommitted changes in the fork, as `git status --porcelain` lines.
pub fn dirty_files(fork: &Path) -> Result<Vec<String>> {
    let out = git_out(
        fork,
        false,
        ["status", "--porcelain=v1", "--untracked-files=all"],
    )?;
    Ok(out
        .lines()
        .filter(|l| l.len() > 3)
        .map(|l| format!("{} ({})", &l[3..], l[..2].trim()))
        .collect())
}

fn ensure_repo(fork: &Path) -> Result<()> {
    // Without its own .git, git would walk up and act on *our* repo.
    if !fork.join(".git").is_dir() {
        bail!(
            "{} exists but is not a git repository (no .git).\nMove it away, or run \
             `cargo xtask fork sync --force` to replace it.",
            fork.display()
        );
    }
    Ok(())
}

/// The commit patches are exported relative to: the `upstream` tag, or
/// (for forks made by hand) the single root commit.
fn find_base(fork: &Path) -> Result<String> {
    if let Ok(c) = rev(fork, &format!("refs/tags/{UPSTREAM_TAG}^{{commit}}")) {
        return Ok(c);
    }
    let roots = git_out(fork, false, ["rev-list", "--max-parents=0", "HEAD"])?;
    let roots: Vec<&str> = roots.lines().collect();
    match roots.as_slice() {
        [one] => Ok(one.to_string()),
        _ => bail!(
            "{}: no `{UPSTREAM_TAG}` tag and not exactly one root commit, so I cannot tell which \
             commits are patches. Tag the pristine release commit: `git -C {} tag {UPSTREAM_TAG} <commit>`.",
            fork.display(),
            fork.display()
        ),
    }
}

/// `git format-patch` of base..HEAD into `out`; returns file names in order.
/// The options pin down everything that could vary between runs, machines
/// or user configs, so re-exporting unchanged commits is byte-identical.
fn format_patches(fork: &Path, base: &str, out: &Path) -> Result<Vec<String>> {
    let range = format!("{base}..HEAD");
    let mut args: Vec<String> = [
        "format-patch",
        "--zero-commit",
        "--no-signature",
        "--keep-subject",
        "--full-index",
        "--no-thread",
        "--no-cover-letter",
        "--no-notes",
        "--encode-email-headers",
        "--diff-algorithm=myers",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(out.display().to_string());
    args.push(range);
    let listed = git_out(fork, true, &args)?;
    Ok(listed
        .lines()
        .filter_map(|l| Path::new(l.trim()).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect())
}

/// Files a patch touches, from its `diff --git` lines.
fn touched(patch: &str) -> Vec<String> {
    let mut v: Vec<String> = patch
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .filter_map(|l| l.split(" b/").next())
        .map(str::to_string)
        .collect();
    v.dedup();
    v
}

/// Differences between the fork's commits and patches/, one line each,
/// naming the patch files (and the fork files they touch).
fn compare_with_patches(paths: &Paths, series: &[String]) -> Result<Vec<String>> {
    let base = find_base(&paths.fork_dir)?;
    let tmp = TempDir::new_in(&paths.scratch(), "export")?;
    let fresh = format_patches(&paths.fork_dir, &base, tmp.path())?;
    let show = |n: &str| paths.show(&paths.patches_dir.join(n));
    let mut problems = Vec::new();
    for name in &fresh {
        let new = fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
        let files = touched(&new).join(", ");
        if !series.contains(name) {
            problems.push(format!(
                "{}: fork commit not exported to patches/ (touches {files})",
                show(name)
            ));
        } else if fs::read_to_string(paths.patches_dir.join(name))
            .ok()
            .as_deref()
            != Some(&new)
        {
            problems.push(format!(
                "{}: differs from the fork's commit (touches {files})",
                show(name)
            ));
        }
    }
    for name in series.iter().filter(|n| !fresh.contains(n)) {
        problems.push(format!(
            "{}: listed in patches/series but no fork commit produces it (dropped, reworded or \
             not yet synced)",
            show(name)
        ));
    }
    if problems.is_empty() && fresh != series {
        problems.push("patches/series lists the patches in a different order than the fork".into());
    }
    Ok(problems)
}

/// Build the fork in the empty directory `dest`: pristine release commit
/// tagged `upstream`, then one `git am` commit per patch in `series`.
pub fn materialize(paths: &Paths, pin: &Pin, series: &[String], dest: &Path) -> Result<()> {
    let pin_file = paths.patches_dir.join("upstream.toml");
    let krate = locate_or_fetch(paths, pin)?;
    verify(&krate, pin, &pin_file, paths.crate_file.is_none())?;
    unpack_crate(&krate, pin, dest)?;

    git_out(dest, true, ["init", "-q", "-b", "main"])?;
    git_out(dest, true, ["add", "-A", "-f", "."])?;
    let msg = format!(
        "{} {} from crates.io\n\nPristine release, sha256 {}.\n\
         Made by `cargo xtask fork sync`; commits after the `{UPSTREAM_TAG}` tag are patches/.\n",
        pin.name, pin.version, pin.sha256
    );
    let mut c = git(dest, true);
    c.args(["commit", "-q", "--no-verify", "-m", &msg])
        .env("GIT_AUTHOR_NAME", BOT_NAME)
        .env("GIT_AUTHOR_EMAIL", BOT_EMAIL)
        .env("GIT_AUTHOR_DATE", BOT_DATE)
        .env("GIT_COMMITTER_DATE", BOT_DATE);
    crate::cmd::capture(c, "git commit of the pristine release")?;
    git_out(dest, true, ["tag", UPSTREAM_TAG])?;

    let series_file = paths.patches_dir.join("series");
    for (i, name) in series.iter().enumerate() {
        let patch = paths.patches_dir.join(name);
        if !patch.is_file() {
            bail!(
                "patch {} (listed in {}) does not exist.\nRestore it, or remove the line from \
                 the series (`cargo xtask fork export` from a good fork rewrites both).",
                patch.display(),
                series_file.display()
            );
        }
        let mut c = git(dest, true);
        c.args([
            "am",
            "-q",
            "--keep",
            "--keep-cr",
            "--no-3way",
            "--whitespace=nowarn",
            "--committer-date-is-author-date",
        ])
        .arg(&patch);
        if let Err(e) = crate::cmd::capture(c, "git am") {
            // git's hints are about resuming `git am`, which is moot in a throwaway tree.
            let e: Vec<&str> = e.0.lines().filter(|l| !l.starts_with("hint:")).collect();
            let e = e.join("\n");
            bail!(
                "patch {} ({}/{}) does not apply on {} {}{}.\n{e}\n\
                 Next: rebase the fork's commits onto the pin and `cargo xtask fork export`, or \
                 fix/drop this patch in {}.",
                patch.display(),
                i + 1,
                series.len(),
                pin.name,
                pin.version,
                if i > 0 {
                    " plus the patches before it"
                } else {
                    ""
                },
                series_file.display()
            );
        }
    }
    Ok(())
}

/// Replace `dest` with `new`: move the old one aside, rename, delete the old.
fn swap_in(new: &Path, dest: &Path) -> Result<()> {
    if !dest.exists() {
        return fs::rename(new, dest)
            .ctx(|| format!("cannot move the new fork to {}", dest.display()));
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let old = dest.with_file_name(format!(".{name}.xtask-old-{}", std::process::id()));
    fs::rename(dest, &old).ctx(|| format!("cannot move {} aside", dest.display()))?;
    if let Err(e) = fs::rename(new, dest) {
        let _ = fs::rename(&old, dest);
        bail!(
            "cannot move the new fork to {}: {e} (old fork restored)",
            dest.display()
        );
    }
    if let Err(e) = fs::remove_dir_all(&old) {
        eprintln!(
            "xtask: warning: could not delete the old fork at {}: {e}",
            old.display()
        );
    }
    Ok(())
}

/// True when sync has something to do: fork missing, or patches/ changed
/// since the last sync/export.
pub fn needs_sync(paths: &Paths) -> Result<bool> {
    if !paths.fork_dir.exists() {
        return Ok(true);
    }
    let series = load_series(&paths.patches_dir)?;
    let inputs = inputs_hash(&paths.patches_dir, &series);
    Ok(read_stamp(&paths.fork_dir).is_none_or(|s| s.inputs != inputs))
}

/// `cargo xtask fork sync [--force]`.
pub fn sync(paths: &Paths, force: bool) -> Result<()> {
    let pin = load_pin(&paths.patches_dir)?;
    let series = load_series(&paths.patches_dir)?;
    let inputs = inputs_hash(&paths.patches_dir, &series);
    let fork = &paths.fork_dir;
    let exists = fork.exists();
    let mut must_compare = false;
    if exists && !force {
        ensure_repo(fork)?;
        let dirty = dirty_files(fork)?;
        if !dirty.is_empty() {
            bail!(
                "{} has uncommitted edits:\n{}\nCommit them in the fork and run `cargo xtask \
                 fork export` first, or `cargo xtask fork sync --force` to discard them.",
                fork.display(),
                indent(&dirty)
            );
        }
        let head = rev(fork, "HEAD")?;
        match read_stamp(fork) {
            Some(s) if s.head == head && s.inputs == inputs => {
                eprintln!(
                    "xtask: {} is up to date with patches/ ({} patches)",
                    paths.show(fork),
                    series.len()
                );
                return Ok(());
            }
            Some(s) if s.head == head => {}
            _ => must_compare = true,
        }
    }

    let parent = fork.parent().unwrap_or(Path::new("."));
    let name = fork
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = TempDir::new_in(parent, &format!(".{name}.xtask-new"))?;
    materialize(paths, &pin, &series, tmp.path())?;
    if must_compare {
        let mut problems = compare_with_patches(paths, &series)?;
        if problems.is_empty() {
            problems.extend(tree_difference(fork, tmp.path())?);
        }
        if !problems.is_empty() {
            bail!(
                "{} has commits not carried by patches/:\n{}\nRun `cargo xtask fork export` \
                 first, or `cargo xtask fork sync --force` to discard them.",
                fork.display(),
                indent(&problems)
            );
        }
    }
    let head = rev(tmp.path(), "HEAD")?;
    write_stamp(
        tmp.path(),
        &Stamp {
            inputs,
            head: head.clone(),
        },
    )?;
    if exists && force {
        eprintln!(
            "xtask: --force: discarding the previous {}",
            paths.show(fork)
        );
    }
    swap_in(tmp.path(), fork)?;
    eprintln!(
        "xtask: materialized {} {} + {} patches into {} (HEAD {})",
        pin.name,
        pin.version,
        series.len(),
        paths.show(fork),
        &head[..12]
    );
    Ok(())
}

/// If the fork's HEAD tree differs from `other`'s, a problem line naming the files.
fn tree_difference(fork: &Path, other: &Path) -> Result<Option<String>> {
    if rev(fork, "HEAD^{tree}")? == rev(other, "HEAD^{tree}")? {
        return Ok(None);
    }
    // Fetch into the throwaway repo, never into the fork.
    git_out(
        other,
        true,
        [
            std::ffi::OsStr::new("fetch"),
            std::ffi::OsStr::new("-q"),
            fork.as_os_str(),
            std::ffi::OsStr::new("HEAD"),
        ],
    )?;
    let files = git_out(other, true, ["diff", "--name-only", "HEAD", "FETCH_HEAD"])?;
    Ok(Some(format!(
        "the fork's files differ from patches/ applied to the release (a base commit that is \
         not the pristine release, or merge commits format-patch skips): {}",
        files.lines().collect::<Vec<_>>().join(", ")
    )))
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("  - {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `cargo xtask fork export`.
pub fn export(paths: &Paths) -> Result<()> {
    let fork = &paths.fork_dir;
    if !fork.exists() {
        bail!(
            "{} does not exist; run `cargo xtask fork sync` first",
            fork.display()
        );
    }
    ensure_repo(fork)?;
    let dirty = dirty_files(fork)?;
    if !dirty.is_empty() {
        eprintln!(
            "xtask: warning: uncommitted edits in {} are NOT exported (commit them first):\n{}",
            paths.show(fork),
            indent(&dirty)
        );
    }
    let base = find_base(fork)?;
    let tmp = TempDir::new_in(&paths.scratch(), "export")?;
    let names = format_patches(fork, &base, tmp.path())?;

    let dir = &paths.patches_dir;
    fs::create_dir_all(dir).ctx(|| format!("cannot create {}", dir.display()))?;
    let old_series = load_series(dir)?;
    let mut removed = Vec::new();
    let stale = fs::read_dir(dir)
        .ctx(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".patch"))
        .chain(old_series);
    for name in stale {
        if !names.contains(&name) && dir.join(&name).is_file() {
            fs::remove_file(dir.join(&name)).ctx(|| format!("cannot delete {name}"))?;
            removed.push(name);
        }
    }
    for name in &names {
        let bytes =
            fs::read(tmp.path().join(name)).ctx(|| format!("cannot read exported {name}"))?;
        write_if_changed(&dir.join(name), &bytes)?;
    }
    let mut series = String::from(
        "# Patches on top of the pinned release (upstream.toml), applied in this order.\n\
         # Written by `cargo xtask fork export`; edit the fork, not these files.\n",
    );
    for n in &names {
        series.push_str(n);
        series.push('\n');
    }
    write_if_changed(&dir.join("series"), series.as_bytes())?;

    let inputs = inputs_hash(dir, &names);
    write_stamp(
        fork,
        &Stamp {
            inputs,
            head: rev(fork, "HEAD")?,
        },
    )?;
    eprintln!(
        "xtask: exported {} patches to {}{}",
        names.len(),
        paths.show(dir),
        if removed.is_empty() {
            String::new()
        } else {
            format!(" (removed stale: {})", removed.join(", "))
        }
    );
    Ok(())
}

/// `cargo xtask fork check`: every way the fork and patches/ can disagree.
pub fn check(paths: &Paths) -> Result<()> {
    let pin = load_pin(&paths.patches_dir)?;
    let series = load_series(&paths.patches_dir)?;
    let fork = &paths.fork_dir;
    let mut problems = Vec::new();
    let mut fork_ok = false;
    if !fork.exists() {
        problems.push(format!(
            "{} does not exist: run `cargo xtask fork sync`",
            fork.display()
        ));
    } else if let Err(e) = ensure_repo(fork) {
        problems.push(e.0);
    } else {
        for line in dirty_files(fork)? {
            problems.push(format!("uncommitted edit in {}: {line}", paths.show(fork)));
        }
        match compare_with_patches(paths, &series) {
            Ok(p) => problems.extend(p),
            Err(e) => problems.push(e.0),
        }
        fork_ok = problems.is_empty();
    }
    let tmp = TempDir::new_in(&paths.scratch(), "check")?;
    match materialize(paths, &pin, &series, tmp.path()) {
        Err(e) => problems.push(e.0),
        Ok(()) if fork_ok => problems.extend(tree_difference(fork, tmp.path())?),
        Ok(()) => {}
    }
    if !problems.is_empty() {
        bail!(
            "fork check failed ({} problem{}):\n{}\nTo keep fork changes: commit them in the fork, \
             then `cargo xtask fork export`. To take patches/ as truth: `cargo xtask fork sync --force`.",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            indent(&problems)
        );
    }
    println!("fork is in sync with patches/ ({} patches)", series.len());
    Ok(())
}
