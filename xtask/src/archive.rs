//! Checksum and unpacking of the `.crate` release archive.

use crate::bail;
use crate::error::{Context, Result};
use crate::pin::{hex, Pin};
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).ctx(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .ctx(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Fail unless `path` hashes to the pinned sha256.
/// `from_cache` selects the advice: a cached download can be deleted and fetched again.
pub fn verify(path: &Path, pin: &Pin, pin_file: &Path, from_cache: bool) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != pin.sha256 {
        let fix = if from_cache {
            format!(
                "To re-download: `rm {}` and rerun `cargo xtask fork sync`.",
                path.display()
            )
        } else {
            format!("Pass a genuine {}.crate to --crate-file.", pin.stem())
        };
        bail!(
            "checksum mismatch for {file}\n  expected {exp} (from {pinf})\n  actual   {actual}\n\
             Either the file is damaged or the pin is wrong. {fix} If the pin changed on \
             purpose, fix sha256 in {pinf}.",
            file = path.display(),
            exp = pin.sha256,
            pinf = pin_file.display(),
        );
    }
    Ok(())
}

/// Unpack `archive` (gzip'd tar with a `name-version/` top directory) into
/// `dest`, dropping that top directory. Returns the number of files written.
pub fn unpack_crate(archive: &Path, pin: &Pin, dest: &Path) -> Result<usize> {
    let corrupt = |e: &dyn std::fmt::Display| {
        crate::Error(format!(
            "corrupt archive {file}: {e}\nIt is not a complete gzip'd tar of {stem}. \
             Delete it (`rm {file}`) and rerun `cargo xtask fork sync` to download it again.",
            file = archive.display(),
            stem = pin.stem(),
        ))
    };
    let file = File::open(archive).ctx(|| format!("cannot open {}", archive.display()))?;
    let mut tar = tar::Archive::new(GzDecoder::new(io::BufReader::new(file)));
    tar.set_preserve_mtime(true);
    let top = pin.stem();
    let mut files = 0;
    for entry in tar.entries().map_err(|e| corrupt(&e))? {
        let mut entry = entry.map_err(|e| corrupt(&e))?;
        let path = entry.path().map_err(|e| corrupt(&e))?.into_owned();
        let rel = relative_inside(&path, &top)
            .ok_or_else(|| corrupt(&format!("entry `{}` is outside `{top}/`", path.display())))?;
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        if kind.is_dir() {
            fs::create_dir_all(&target).ctx(|| format!("cannot create {}", target.display()))?;
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).ctx(|| format!("cannot create {}", parent.display()))?;
            }
            entry.unpack(&target).map_err(|e| corrupt(&e))?;
            files += 1;
        } else if kind.is_symlink() || kind.is_hard_link() {
            return Err(corrupt(&format!("unexpected link `{}`", path.display())));
        }
        // Other kinds (pax/GNU headers) carry metadata only.
    }
    // tar stops at its end marker; reading the gzip stream to the end makes
    // flate2 check the CRC and length trailer, which catches truncation.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| corrupt(&e))?;
    if files == 0 || !dest.join("Cargo.toml").is_file() {
        return Err(corrupt(&format!("no `{top}/Cargo.toml` inside")));
    }
    Ok(files)
}

/// `path` relative to `top/`, if it is inside it and has no `..`/absolute parts.
fn relative_inside(path: &Path, top: &str) -> Option<PathBuf> {
    let mut comps = path.components();
    match comps.next() {
        Some(Component::Normal(first)) if first == top => {}
        _ => return None,
    }
    let mut rel = PathBuf::new();
    for c in comps {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_must_stay_inside_top() {
        let top = "x-1.0";
        assert_eq!(
            relative_inside(Path::new("x-1.0/src/a.rs"), top),
            Some("src/a.rs".into())
        );
        assert_eq!(
            relative_inside(Path::new("x-1.0"), top),
            Some(PathBuf::new())
        );
        assert_eq!(relative_inside(Path::new("x-1.0/../evil"), top), None);
        assert_eq!(relative_inside(Path::new("/x-1.0/a"), top), None);
        assert_eq!(relative_inside(Path::new("y-1.0/a"), top), None);
    }
}
