//! `cargo xtask`: manages kaisui's fork of `ractor_cluster`.
//!
//! The fork at `ractor_cluster_ext/` is never committed; it is rebuilt from
//! the pinned crates.io release plus `patches/series`. See [`fork`].

pub mod archive;
pub mod cli;
pub mod cmd;
mod error;
pub mod fetch;
pub mod fork;
pub mod pin;
pub mod tasks;

pub use error::{Context, Error, Result};

use std::path::{Path, PathBuf};

/// Where things live. Every path can be overridden so tests (and careful
/// humans) can work on a copy instead of the real fork.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Repository root (holds the root `Cargo.toml`).
    pub root: PathBuf,
    /// The materialized fork (default `<root>/ractor_cluster_ext`).
    pub fork_dir: PathBuf,
    /// `upstream.toml`, `series` and the patch files (default `<root>/patches`).
    pub patches_dir: PathBuf,
    /// Use this `.crate` instead of looking in cargo's cache / fetching.
    pub crate_file: Option<PathBuf>,
}

impl Paths {
    /// Resolve paths from flags, then `KAISUI_ROOT`, `KAISUI_FORK_DIR`,
    /// `KAISUI_PATCHES_DIR`, `KAISUI_CRATE_FILE`, then defaults.
    pub fn resolve(
        fork_dir: Option<PathBuf>,
        patches_dir: Option<PathBuf>,
        crate_file: Option<PathBuf>,
    ) -> Paths {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root =
            env("KAISUI_ROOT").unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
        let root = absolute(&root);
        let fork_dir = fork_dir.or_else(|| env("KAISUI_FORK_DIR"));
        let patches_dir = patches_dir.or_else(|| env("KAISUI_PATCHES_DIR"));
        Paths {
            fork_dir: absolute(&fork_dir.unwrap_or_else(|| root.join("ractor_cluster_ext"))),
            patches_dir: absolute(&patches_dir.unwrap_or_else(|| root.join("patches"))),
            crate_file: crate_file
                .or_else(|| env("KAISUI_CRATE_FILE"))
                .map(|p| absolute(&p)),
            root,
        }
    }

    /// Scratch space for xtask (throwaway manifests, check/export temp dirs).
    pub fn scratch(&self) -> PathBuf {
        self.root.join("target").join("xtask")
    }

    /// Whether the fork is the one the root workspace builds.
    pub fn fork_is_default(&self) -> bool {
        self.fork_dir == absolute(&self.root.join("ractor_cluster_ext"))
    }

    /// A path shown relative to the root when it is inside it.
    pub fn show(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    }
}

/// Absolute, lexically normalized path (no symlink resolution: the target may not exist).
pub fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
