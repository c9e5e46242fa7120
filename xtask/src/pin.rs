//! `patches/upstream.toml` (the pinned release) and `patches/series`.

use crate::bail;
use crate::error::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

/// The pinned upstream release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Crate name on crates.io.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// Expected sha256 (lowercase hex) of the `.crate` file.
    pub sha256: String,
}

impl Pin {
    /// `name-version`, the top directory inside the `.crate` and its file stem.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// Parse the flat `key = "value"` subset of TOML that upstream.toml uses.
/// Hand-rolled on purpose: a TOML crate would double xtask's build time.
pub fn parse_pin(text: &str, origin: &Path) -> Result<Pin> {
    let (mut name, mut version, mut sha) = (None, None, None);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!(
                "{}:{}: expected `key = \"value\"`, found `{line}`",
                origin.display(),
                i + 1
            );
        };
        // A quoted string, optionally followed by a `#` comment.
        let value = value.trim();
        let parsed = value.strip_prefix('"').and_then(|v| {
            let end = v.find('"')?;
            let rest = v[end + 1..].trim();
            (rest.is_empty() || rest.starts_with('#')).then(|| &v[..end])
        });
        let Some(value) = parsed else {
            bail!(
                "{}:{}: value must be a quoted string: `{line}`",
                origin.display(),
                i + 1
            );
        };
        match key.trim() {
            "crate" => name = Some(value.to_string()),
            "version" => version = Some(value.to_string()),
            "sha256" => sha = Some(value.to_ascii_lowercase()),
            other => bail!("{}:{}: unknown key `{other}`", origin.display(), i + 1),
        }
    }
    let missing = |k: &str| crate::Error(format!("{}: missing key `{k}`", origin.display()));
    let pin = Pin {
        name: name.ok_or_else(|| missing("crate"))?,
        version: version.ok_or_else(|| missing("version"))?,
        sha256: sha.ok_or_else(|| missing("sha256"))?,
    };
    if pin.sha256.len() != 64 || !pin.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{}: sha256 must be 64 hex digits, found `{}`",
            origin.display(),
            pin.sha256
        );
    }
    Ok(pin)
}

/// Load `upstream.toml` from the patches directory.
pub fn load_pin(patches_dir: &Path) -> Result<Pin> {
    let path = patches_dir.join("upstream.toml");
    let text = fs::read_to_string(&path).ctx(|| format!("cannot read {}", path.display()))?;
    parse_pin(&text, &path)
}

/// Parse a series file: one patch file name per line, `#` starts a comment.
pub fn parse_series(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Load `series` from the patches directory; a missing file means no patches.
pub fn load_series(patches_dir: &Path) -> Result<Vec<String>> {
    let path = patches_dir.join("series");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(parse_series(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
}

/// Hash of everything sync consumes: the pin, the series and every patch.
/// Stored in the fork's stamp so an unchanged input makes sync a no-op.
pub fn inputs_hash(patches_dir: &Path, series: &[String]) -> String {
    let mut h = Sha256::new();
    for name in ["upstream.toml", "series"]
        .into_iter()
        .map(str::to_string)
        .chain(series.iter().cloned())
    {
        h.update(name.as_bytes());
        h.update([0]);
        match fs::read(patches_dir.join(&name)) {
            Ok(bytes) => {
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            // A missing file still changes the hash; sync reports it properly.
            Err(_) => h.update(b"\xffmissing"),
        }
    }
    hex(&h.finalize())
}

/// Lowercase hex of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "3439e8f54ac2b977cd00232d646af6e78ca2b99d29ad91fc5e3e2b61623d2e28";

    #[test]
    fn parses_pin_with_comments() {
        let text = format!(
            "# pinned\ncrate = \"ractor_cluster\"\nversion = \"0.16.5\" # exact\nsha256 = \"{SHA}\"\n"
        );
        let pin = parse_pin(&text, Path::new("upstream.toml")).unwrap();
        assert_eq!(pin.stem(), "ractor_cluster-0.16.5");
        assert_eq!(pin.sha256, SHA);
    }

    #[test]
    fn rejects_bad_sha_and_missing_keys() {
        let e = parse_pin(
            "crate = \"a\"\nversion = \"1\"\nsha256 = \"zz\"\n",
            Path::new("u"),
        )
        .unwrap_err();
        assert!(e.0.contains("64 hex"), "{e}");
        let e = parse_pin("crate = \"a\"\n", Path::new("u")).unwrap_err();
        assert!(e.0.contains("missing key `version`"), "{e}");
    }

    #[test]
    fn series_skips_comments_and_blanks() {
        let s = parse_series("# header\n\n0001-a.patch\n  0002-b.patch # why\n");
        assert_eq!(s, ["0001-a.patch", "0002-b.patch"]);
    }
}
