//! End-to-end tests of `fork sync/export/check` on tiny fake releases, in
//! throwaway directories (never the real fork). No network: cargo runs offline.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STEM: &str = "fakecrate-0.1.0";

/// A fake repository root with its own patches/, CARGO_HOME and fork.
struct Sandbox {
    root: PathBuf,
}

/// A `.crate`: gzip'd tar with a `name-version/` top directory.
fn release(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_cksum();
        tar.append_data(&mut h, format!("{STEM}/{path}"), body.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn good_release() -> Vec<u8> {
    release(&[
        (
            "Cargo.toml",
            "[package]\nname = \"fakecrate\"\nversion = \"0.1.0\"\n",
        ),
        ("src/lib.rs", "pub fn a() {}\n\npub fn b() {}\n"),
        ("README.md", "hello\n"),
    ])
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        let root = std::env::temp_dir().join(format!("xtask-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("patches")).unwrap();
        let s = Sandbox { root };
        s.install_release(&good_release());
        s
    }

    fn crate_path(&self) -> PathBuf {
        self.root
            .join("cargo-home/registry/cache/test-registry")
            .join(format!("{STEM}.crate"))
    }

    /// Put `bytes` in the fake cargo cache and pin their checksum.
    fn install_release(&self, bytes: &[u8]) {
        let p = self.crate_path();
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        self.pin(&xtask::archive::sha256_file(&p).unwrap());
    }

    fn pin(&self, sha: &str) {
        let text = format!("crate = \"fakecrate\"\nversion = \"0.1.0\"\nsha256 = \"{sha}\"\n");
        fs::write(self.root.join("patches/upstream.toml"), text).unwrap();
    }

    fn fork(&self) -> PathBuf {
        self.root.join("ractor_cluster_ext")
    }

    fn patches(&self) -> PathBuf {
        self.root.join("patches")
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .env("KAISUI_ROOT", &self.root)
            .env("CARGO_HOME", self.root.join("cargo-home"))
            .env("CARGO_NET_OFFLINE", "true")
            .env_remove("KAISUI_FORK_DIR")
            .env_remove("KAISUI_PATCHES_DIR")
            .env_remove("KAISUI_CRATE_FILE")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "xtask {args:?} failed:\n{text}");
        text
    }

    fn fail(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(!ok, "xtask {args:?} unexpectedly succeeded:\n{text}");
        text
    }

    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.invalid")
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Write a file in the fork and commit it.
    fn commit(&self, file: &str, body: &str, msg: &str) {
        let p = self.fork().join(file);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
        self.git(&self.fork(), &["add", file]);
        self.git(&self.fork(), &["commit", "-q", "-m", msg]);
    }

    fn head(&self, dir: &Path) -> String {
        self.git(dir, &["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Patch files and series, by name.
    fn snapshot_patches(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(self.patches())
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .filter(|(n, _)| n != "upstream.toml")
            .collect();
        v.sort();
        v
    }

    /// Half-made temporary trees that a failed sync must not leave behind.
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(&self.root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".xtask-"))
            .collect()
    }

    /// Assert a failed run left the previous fork exactly as it was.
    fn assert_fork_untouched(&self, head: &str, lib_rs: &str) {
        assert_eq!(self.head(&self.fork()), head);
        assert_eq!(
            fs::read_to_string(self.fork().join("src/lib.rs")).unwrap(),
            lib_rs
        );
        assert!(
            self.leftovers().is_empty(),
            "left behind: {:?}",
            self.leftovers()
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[test]
fn sync_is_noop_when_up_to_date_and_refuses_unexported_commits() {
    let s = Sandbox::new("noop");
    s.ok(&["fork", "sync"]);
    assert_eq!(s.git(&s.fork(), &["tag"]).trim(), "upstream");
    assert!(s.ok(&["fork", "sync"]).contains("up to date"));

    s.commit("src/lib.rs", "pub fn changed() {}\n", "Change lib");
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("src/lib.rs"), "{msg}");
    assert!(msg.contains("cargo xtask fork export"), "{msg}");
    assert!(msg.contains("--force"), "{msg}");

    s.ok(&["fork", "sync", "--force"]);
    assert!(fs::read_to_string(s.fork().join("src/lib.rs"))
        .unwrap()
        .contains("pub fn a()"));
}

#[test]
fn checksum_mismatch_stops_and_keeps_old_fork() {
    let s = Sandbox::new("checksum");
    s.ok(&["fork", "sync"]);
    let (head, lib) = (
        s.head(&s.fork()),
        fs::read_to_string(s.fork().join("src/lib.rs")).unwrap(),
    );
    s.pin(&"0".repeat(64));
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(msg.contains(&s.crate_path().display().to_string()), "{msg}");
    assert!(msg.contains("upstream.toml"), "{msg}");
    s.assert_fork_untouched(&head, &lib);
}

#[test]
fn checksum_mismatch_without_fork_creates_nothing() {
    let s = Sandbox::new("checksum-fresh");
    s.pin(&"a".repeat(64));
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(!s.fork().exists());
    assert!(s.leftovers().is_empty());
}

#[test]
fn corrupt_archive_is_reported_and_old_fork_kept() {
    let s = Sandbox::new("corrupt");
    s.ok(&["fork", "sync"]);
    let (head, lib) = (
        s.head(&s.fork()),
        fs::read_to_string(s.fork().join("src/lib.rs")).unwrap(),
    );

    // Not gzip at all (pinned as-is, so only unpacking can catch it).
    s.install_release(b"this is not a tarball");
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("corrupt archive"), "{msg}");
    assert!(msg.contains(&s.crate_path().display().to_string()), "{msg}");
    s.assert_fork_untouched(&head, &lib);

    // A real release cut short.
    let good = good_release();
    s.install_release(&good[..good.len() / 2]);
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("corrupt archive"), "{msg}");
    s.assert_fork_untouched(&head, &lib);

    // gzip'd, but not a crate layout.
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    std::io::Write::write_all(&mut enc, &[7u8; 4096]).unwrap();
    s.install_release(&enc.finish().unwrap());
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("corrupt archive"), "{msg}");
    s.assert_fork_untouched(&head, &lib);
}

#[test]
fn missing_download_is_reported() {
    let s = Sandbox::new("missing");
    fs::remove_file(s.crate_path()).unwrap();
    // Offline with an empty CARGO_HOME: cargo fetch cannot succeed.
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("could not download fakecrate-0.1.0"), "{msg}");
    assert!(msg.contains("cargo fetch"), "{msg}");
    assert!(!s.fork().exists());
    assert!(s.leftovers().is_empty());

    let absent = s.root.join("nowhere.crate");
    let msg = s.fail(&["fork", "sync", "--crate-file", absent.to_str().unwrap()]);
    assert!(msg.contains(&absent.display().to_string()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn patch_that_does_not_apply_keeps_old_fork() {
    let s = Sandbox::new("badpatch");
    s.ok(&["fork", "sync"]);
    s.commit(
        "src/lib.rs",
        "pub fn a() {}\n\npub fn b2() {}\n",
        "Rename b",
    );
    s.ok(&["fork", "export"]);
    let (head, lib) = (
        s.head(&s.fork()),
        fs::read_to_string(s.fork().join("src/lib.rs")).unwrap(),
    );

    let name = "0001-Rename-b.patch";
    let patch = s.patches().join(name);
    let text = fs::read_to_string(&patch).unwrap();
    fs::write(&patch, text.replace("-pub fn b() {}", "-pub fn zzz() {}")).unwrap();

    let msg = s.fail(&["fork", "sync"]);
    assert!(
        msg.contains(name) && msg.contains("does not apply"),
        "{msg}"
    );
    assert!(
        msg.contains("src/lib.rs"),
        "git's message should be shown: {msg}"
    );
    s.assert_fork_untouched(&head, &lib);

    let msg = s.fail(&["fork", "check"]);
    assert!(
        msg.contains(name) && msg.contains("does not apply"),
        "{msg}"
    );
}

#[test]
fn export_sync_round_trip_is_identical() {
    let s = Sandbox::new("roundtrip");
    s.ok(&["fork", "sync"]);
    s.commit(
        "src/lib.rs",
        "pub fn a() {}\n\npub fn b() -> u8 { 1 }\n",
        "Make b return a value",
    );
    s.commit(
        "src/extra.rs",
        "// new file\n",
        "[proto] Add extra module\n\nWhy: body text kept.",
    );
    s.ok(&["fork", "export"]);
    let first = s.snapshot_patches();
    let series = fs::read_to_string(s.patches().join("series")).unwrap();
    assert!(
        series.contains("0001-Make-b-return-a-value.patch"),
        "{series}"
    );
    assert!(
        series.contains("0002-proto-Add-extra-module.patch"),
        "{series}"
    );
    assert!(s
        .ok(&["fork", "check"])
        .contains("in sync with patches/ (2 patches)"));

    // Rebuild from patches/: same content, subjects kept verbatim.
    s.ok(&["fork", "sync", "--force"]);
    let log = s.git(&s.fork(), &["log", "--format=%s|%b|%an"]);
    assert!(
        log.contains("[proto] Add extra module|Why: body text kept.\n|Dev"),
        "{log}"
    );
    let rebuilt = s.head(&s.fork());
    s.ok(&["fork", "export"]);
    assert_eq!(s.snapshot_patches(), first, "re-export changed patches/");

    // A second materialization elsewhere yields the very same commits.
    let other = s.root.join("other-fork");
    s.ok(&["fork", "sync", "--fork-dir", other.to_str().unwrap()]);
    assert_eq!(s.head(&other), rebuilt);
    assert!(s.ok(&["fork", "check"]).contains("in sync"));
}

#[test]
fn export_removes_stale_patches() {
    let s = Sandbox::new("stale");
    s.ok(&["fork", "sync"]);
    s.commit("README.md", "one\n", "First");
    s.commit("README.md", "two\n", "Second");
    s.ok(&["fork", "export"]);
    s.git(&s.fork(), &["reset", "-q", "--hard", "HEAD~1"]);
    s.git(&s.fork(), &["commit", "-q", "--amend", "-m", "Only one"]);
    let msg = s.ok(&["fork", "export"]);
    assert!(msg.contains("removed stale"), "{msg}");
    let names: Vec<_> = s.snapshot_patches().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0001-Only-one.patch", "series"]);
}

#[test]
fn check_names_unexported_edit_then_unexported_commit() {
    let s = Sandbox::new("check");
    s.ok(&["fork", "sync"]);
    assert!(s
        .ok(&["fork", "check"])
        .contains("in sync with patches/ (0 patches)"));

    fs::write(s.fork().join("README.md"), "edited\n").unwrap();
    let msg = s.fail(&["fork", "check"]);
    assert!(
        msg.contains("uncommitted edit") && msg.contains("README.md"),
        "{msg}"
    );

    s.git(&s.fork(), &["commit", "-q", "-am", "Edit readme"]);
    let msg = s.fail(&["fork", "check"]);
    assert!(
        msg.contains("0001-Edit-readme.patch") && msg.contains("README.md"),
        "{msg}"
    );

    s.ok(&["fork", "export"]);
    assert!(s.ok(&["fork", "check"]).contains("(1 patches)"));
}

/// Uses the real pinned release when cargo has it cached (no network).
#[test]
fn real_pinned_release_materializes_when_cached() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pin_text = fs::read_to_string(repo.join("patches/upstream.toml")).unwrap();
    let pin = xtask::pin::parse_pin(&pin_text, Path::new("upstream.toml")).unwrap();
    let Some(cached) = xtask::fetch::cached(&pin).into_iter().next() else {
        eprintln!("skipped: {}.crate not in cargo's cache", pin.stem());
        return;
    };
    let s = Sandbox::new("real");
    fs::write(s.patches().join("upstream.toml"), &pin_text).unwrap();
    let fork = s.root.join("real-fork");
    s.ok(&[
        "fork",
        "sync",
        "--crate-file",
        cached.to_str().unwrap(),
        "--fork-dir",
        fork.to_str().unwrap(),
    ]);
    let manifest = fs::read_to_string(fork.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("name = \"{}\"", pin.name)),
        "{manifest}"
    );
    assert_eq!(s.git(&fork, &["tag"]).trim(), "upstream");
}

/// A fork set up by hand (no `upstream` tag, no stamp) exports relative to
/// its root commit, and sync then adopts it without losing anything.
#[test]
fn hand_made_fork_exports_from_its_root_commit() {
    let s = Sandbox::new("handmade");
    let fork = s.fork();
    for (path, body) in [
        (
            "Cargo.toml",
            "[package]\nname = \"fakecrate\"\nversion = \"0.1.0\"\n",
        ),
        ("src/lib.rs", "pub fn a() {}\n\npub fn b() {}\n"),
        ("README.md", "hello\n"),
    ] {
        fs::create_dir_all(fork.join(path).parent().unwrap()).unwrap();
        fs::write(fork.join(path), body).unwrap();
    }
    s.git(&fork, &["init", "-q"]);
    s.git(&fork, &["add", "-A"]);
    s.git(&fork, &["commit", "-q", "-m", "fakecrate 0.1.0 by hand"]);
    s.commit("README.md", "patched\n", "Patch readme");

    // Unexported: sync must refuse rather than replace the hand-made fork.
    let msg = s.fail(&["fork", "sync"]);
    assert!(msg.contains("0001-Patch-readme.patch"), "{msg}");

    s.ok(&["fork", "export"]);
    assert!(s.ok(&["fork", "check"]).contains("(1 patches)"));
    s.ok(&["fork", "sync", "--force"]);
    assert_eq!(
        fs::read_to_string(fork.join("README.md")).unwrap(),
        "patched\n"
    );
    assert_eq!(s.git(&fork, &["tag"]).trim(), "upstream");
}
