//! Where the cache and the test artifacts go.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Cargo's target directory for the build that produced the running test binary.
///
/// Found by walking up from the executable to the directory holding Cargo's `.rustc_info.json`
/// or `CACHEDIR.TAG` (Cargo writes both at the top of a target directory), which honours
/// `CARGO_TARGET_DIR` and `--target-dir` whatever they were. Falls back to `$CARGO_TARGET_DIR`,
/// then to `target/` at the workspace root.
pub fn target_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(find_target_dir)
}

/// `target/e2e-screenshots/`, created on first use.
pub fn screenshot_dir() -> PathBuf {
    let dir = target_dir().join("e2e-screenshots");
    // A failure shows up when the screenshot itself is written.
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn find_target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.join(".rustc_info.json").is_file() || dir.join("CACHEDIR.TAG").is_file() {
                return dir.to_path_buf();
            }
        }
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return dir;
        }
        return workspace_root().join(dir);
    }
    workspace_root().join("target")
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's home: `$CARGO_HOME`, else `~/.cargo`.
pub(crate) fn cargo_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Some(PathBuf::from(home));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo"))
}
