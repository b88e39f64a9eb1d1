//! The genuine Datastar v1.0.2 client, taken from the `rama-http` 0.4.0 crate on crates.io.
//!
//! `rama-http` ships the bundled client as a source file. We get that crate's archive through
//! cargo itself and never compile it:
//!
//! 1. `target/e2e-cache/datastar-1.0.2.js`, when present and genuine;
//! 2. otherwise the crate as cargo already unpacked it (`$CARGO_HOME/registry/src/*/`), or its
//!    archive (`$CARGO_HOME/registry/cache/*/rama-http-0.4.0.crate`, read with `tar`);
//! 3. otherwise `cargo info rama-http@0.4.0`, which downloads that one archive (and none of
//!    its ~200 dependencies) to read its manifest, then step 2 again;
//! 4. failing that, a throwaway package under `target/e2e-cache/` that depends on
//!    `rama-http = "=0.4.0"`, and `cargo fetch` there (pulls the whole dependency tree: a few
//!    seconds and ~250 MB unpacked), then step 2 again.
//!
//! Whatever the source, the bytes must have the known size and SHA-256, or the load fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use crate::paths::{cargo_home, target_dir};

/// The Datastar release the client is.
pub const DATASTAR_VERSION: &str = "1.0.2";
/// Size in bytes of the genuine `datastar.js` of that release.
pub const DATASTAR_JS_SIZE: usize = 34083;
/// SHA-256 (lowercase hex) of the genuine `datastar.js` of that release.
pub const DATASTAR_JS_SHA256: &str =
    "2837d87acf6ee0ba8e4e63765926c25a98d63883b02f88be194a86b81d3fd24a";

const CRATE_NAME: &str = "rama-http";
const CRATE_VERSION: &str = "0.4.0";
const PATH_IN_CRATE: &str = "src/service/web/endpoint/response/datastar.js";

/// The bytes of the genuine Datastar v1.0.2 client (`datastar.js`), fetched on first use and
/// cached in memory and under `target/e2e-cache/`.
///
/// # Panics
///
/// When the file can't be obtained, or what was obtained is not byte-for-byte the known
/// release (size and SHA-256 are checked).
#[track_caller]
pub fn datastar_js() -> &'static [u8] {
    static JS: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    match JS.get_or_init(load) {
        Ok(bytes) => bytes,
        Err(message) => panic!("dstar-e2e: cannot get the Datastar client: {message}"),
    }
}

fn load() -> Result<Vec<u8>, String> {
    let cache = target_dir()
        .join("e2e-cache")
        .join(format!("datastar-{DATASTAR_VERSION}.js"));
    if let Ok(bytes) = std::fs::read(&cache)
        && verify(&bytes, &cache.display().to_string()).is_ok()
    {
        return Ok(bytes);
    }

    let bytes = match from_registry()? {
        Some(bytes) => bytes,
        None => fetch()?,
    };
    store(&cache, &bytes);
    Ok(bytes)
}

/// Downloads the crate through cargo, cheapest way first, then reads the file from cargo's
/// registry.
fn fetch() -> Result<Vec<u8>, String> {
    let started = Instant::now();
    let info = cargo_info();
    if let Some(bytes) = from_registry()? {
        eprintln!(
            "dstar-e2e: got {CRATE_NAME} {CRATE_VERSION} through `cargo info` in {:.1?}",
            started.elapsed()
        );
        return Ok(bytes);
    }

    let started = Instant::now();
    let fetched = cargo_fetch();
    if let Some(bytes) = from_registry()? {
        eprintln!(
            "dstar-e2e: got {CRATE_NAME} {CRATE_VERSION} through `cargo fetch` in {:.1?}",
            started.elapsed()
        );
        return Ok(bytes);
    }

    Err(format!(
        "{CRATE_NAME} {CRATE_VERSION} is not in cargo's registry ({}) even after asking cargo \
         for it.\n`cargo info`: {}\n`cargo fetch`: {}",
        cargo_home()
            .map(|home| home.join("registry").display().to_string())
            .unwrap_or_else(|| "no CARGO_HOME nor HOME".into()),
        describe(info),
        describe(fetched),
    ))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo info` downloads just the one archive. It runs outside any workspace so that no
/// lockfile or toolchain file gets in the way.
fn cargo_info() -> Result<(), String> {
    let mut command = cargo();
    command
        .arg("info")
        .arg(format!("{CRATE_NAME}@{CRATE_VERSION}"))
        .current_dir(std::env::temp_dir());
    run(command)
}

/// Fallback: a throwaway package depending on the exact version, and `cargo fetch` there. The
/// empty `[workspace]` table keeps it out of any enclosing workspace.
fn cargo_fetch() -> Result<(), String> {
    let dir = target_dir().join("e2e-cache").join("rama-http-fetch");
    std::fs::create_dir_all(dir.join("src")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let manifest = format!(
        "[package]\nname = \"dstar-e2e-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\n{CRATE_NAME} = \"={CRATE_VERSION}\"\n\n[workspace]\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
    let mut command = cargo();
    command.arg("fetch").current_dir(&dir);
    run(command)
}

fn run(mut command: Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("could not run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn describe(result: Result<(), String>) -> String {
    match result {
        Ok(()) => "ran, but the file did not appear".into(),
        Err(message) => message,
    }
}

/// Looks for the file in what cargo has unpacked, then in the archives it has downloaded.
/// `Ok(None)`: not there. `Err`: there, but not the genuine file.
fn from_registry() -> Result<Option<Vec<u8>>, String> {
    let Some(home) = cargo_home() else {
        return Ok(None);
    };
    let registry = home.join("registry");
    let crate_dir = format!("{CRATE_NAME}-{CRATE_VERSION}");

    for index in subdirs(&registry.join("src")) {
        let file = index.join(&crate_dir).join(PATH_IN_CRATE);
        if let Ok(bytes) = std::fs::read(&file) {
            verify(&bytes, &file.display().to_string())?;
            return Ok(Some(bytes));
        }
    }

    for index in subdirs(&registry.join("cache")) {
        let archive = index.join(format!("{crate_dir}.crate"));
        if archive.is_file() {
            let bytes = extract(&archive, &format!("{crate_dir}/{PATH_IN_CRATE}"))?;
            verify(&bytes, &archive.display().to_string())?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// A `.crate` is a gzipped tarball; Debian's `tar` reads one member of it to stdout.
fn extract(archive: &Path, member: &str) -> Result<Vec<u8>, String> {
    let output = Command::new("tar")
        .arg("-xzOf")
        .arg(archive)
        .arg(member)
        .output()
        .map_err(|e| format!("could not run tar on {}: {e}", archive.display()))?;
    if !output.status.success() {
        return Err(format!(
            "tar could not read {member} from {}: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}

fn verify(bytes: &[u8], source: &str) -> Result<(), String> {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if bytes.len() == DATASTAR_JS_SIZE && hex == DATASTAR_JS_SHA256 {
        Ok(())
    } else {
        Err(format!(
            "{source} is {} bytes with SHA-256 {hex}, but the Datastar v{DATASTAR_VERSION} client \
             is {DATASTAR_JS_SIZE} bytes with SHA-256 {DATASTAR_JS_SHA256}: refusing to use it",
            bytes.len()
        ))
    }
}

/// Writes the cache through a temporary file and a rename, so a concurrent reader never sees
/// half a file. A failure only costs a lookup next time.
fn store(cache: &Path, bytes: &[u8]) {
    let Some(dir) = cache.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let temp = dir.join(format!(".datastar-{}.tmp", std::process::id()));
    if std::fs::write(&temp, bytes).is_ok() && std::fs::rename(&temp, cache).is_err() {
        let _ = std::fs::remove_file(&temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_rejects_other_bytes() {
        let err = verify(b"console.log(1)", "here").unwrap_err();
        assert!(err.contains("14 bytes"), "{err}");
        assert!(err.contains(DATASTAR_JS_SHA256), "{err}");
    }
}
