//! A scratch directory per fuzzing process, for the files the DB targets write and the
//! operator target's workspace root. It lives under `$TMPDIR` (scripts/fuzz.sh points that at
//! a directory of its own, on tmpfs when there is one) and is removed when the process exits
//! normally; after a crash the script removes it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static DIR: OnceLock<PathBuf> = OnceLock::new();
/// Numbers the paths handed out by [`fresh`]; only uniqueness matters, so Relaxed.
static NEXT: AtomicU64 = AtomicU64::new(0);

extern "C" fn remove_dir_at_exit() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// This process's scratch directory, created on first use.
pub fn dir() -> &'static Path {
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("caffe2rs-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create the scratch directory {}: {e}", dir.display());
        }
        // SAFETY: registers a plain `extern "C" fn()` that only touches a OnceLock.
        unsafe { libc::atexit(remove_dir_at_exit) };
        dir
    })
}

/// A path under [`dir`] that no earlier call returned: `<dir>/<stem>-<n><ext>`. Fresh names
/// keep one input's files apart from the next one's (an LMDB environment is cached by path).
pub fn fresh(stem: &str, ext: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir().join(format!("{stem}-{n}{ext}"))
}
