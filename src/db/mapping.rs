//! Read-only mappings of DB files (minidb files, LMDB's `data.mdb`), shared by the cursors that
//! read them and the records they hand out.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use super::{SharedMemory, io_error};
use crate::error::{C2rsError, Result};

/// A read-only shared mapping of a whole file, as long as `fstat` said it was when mapped.
/// Readers index it only within that length, so a truncated or garbage DB gives a parse error,
/// never an access past the end of the file.
///
/// Caveat: the file must not be truncated while a cursor maps it (the kernel then raises
/// SIGBUS on access to the lost pages). caffe2rs itself never truncates a file in place
/// (minidb's NEW mode replaces it, see `MiniDb::open`; LMDB files only grow); other programs
/// truncating a DB that is being read are not supported.
pub(super) enum Mapping {
    Mapped {
        ptr: NonNull<u8>,
        len: usize,
    },
    /// Where the file cannot be mapped (mmap(2) refused it): its bytes, read once.
    Read(Vec<u8>),
}

// SAFETY: the mapping is read-only (PROT_READ) and owned by this value until drop; reading it
// from any thread is sound, nothing in it is tied to a thread. (`Read` is a plain `Vec`.)
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out shared byte slices.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `file` (None when it is empty: mmap(2) refuses length 0). `kind` names the file
    /// in messages ("minidb", "LMDB").
    pub(super) fn of(file: &File, path: &str, kind: &str) -> Result<Option<Self>> {
        let len = file
            .metadata()
            .map_err(|e| io_error(path, &format!("cannot stat {kind} file"), &e))?
            .len();
        if len == 0 {
            return Ok(None);
        }
        let Ok(len) = usize::try_from(len) else {
            return Err(C2rsError::io(format!(
                "{kind} {path}: {len} bytes do not fit in the address space"
            )));
        };
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL), read-only and shared, of
        // `len` > 0 bytes of an open file descriptor; no existing memory is affected. The
        // mapping stays valid after `file` is closed.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        match NonNull::new(raw.cast::<u8>()) {
            Some(ptr) if raw != libc::MAP_FAILED => Ok(Some(Self::Mapped { ptr, len })),
            // Some filesystems cannot map files: read it instead (the records are then copied
            // once, at open).
            _ => Self::read(file, path, kind, len).map(Some),
        }
    }

    /// The file's first `len` bytes (fewer if it shrank meanwhile), read into memory.
    pub(super) fn read(file: &File, path: &str, kind: &str, len: usize) -> Result<Self> {
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| C2rsError::io(format!("{kind} {path}: cannot hold {len} bytes")))?;
        let mut reader = file;
        reader
            .seek(SeekFrom::Start(0))
            .and_then(|_| reader.take(len as u64).read_to_end(&mut bytes))
            .map_err(|e| io_error(path, &format!("cannot read {kind} file"), &e))?;
        Ok(Self::Read(bytes))
    }

    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes (unmapped only in drop,
            // which cannot run while `&self` is borrowed); no one writes through it.
            Self::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
            Self::Read(bytes) => bytes,
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Self::Mapped { ptr, len } = *self {
            // SAFETY: `ptr`/`len` are exactly the mapping made in `of`, unmapped once, here;
            // no borrowed slice of it outlives `self`. munmap of a valid mapping cannot fail,
            // and there is no caller to report to in drop.
            let _ = unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
        }
    }
}

/// Bytes of a record inside a mapped file, shared with the cursor (no copy).
pub struct MappedBytes {
    map: SharedMemory,
    /// Within the mapping (checked when the cursor read the record).
    range: Range<usize>,
}

impl MappedBytes {
    /// `range` of `map`, which the caller checked against it.
    pub(super) fn new(map: SharedMemory, range: Range<usize>) -> Self {
        Self { map, range }
    }
}

impl AsRef<[u8]> for MappedBytes {
    fn as_ref(&self) -> &[u8] {
        self.map.get(self.range.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sysfs attributes have a size (a page) but cannot be mapped (mmap(2) gives ENODEV): the
    /// fallback reads what the file holds instead of failing.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_mmap_refuses_is_read_instead() {
        let candidates = [
            "/sys/devices/system/cpu/online",
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "/sys/kernel/uevent_seqnum",
        ];
        let Some(path) = candidates
            .iter()
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        else {
            eprintln!("no sysfs attribute to test with: skipped");
            return;
        };
        let file = File::open(path).unwrap();
        let map = Mapping::of(&file, path, "test")
            .unwrap()
            .expect("not empty");
        assert!(matches!(map, Mapping::Read(_)), "{path} cannot be mapped");
        let expected = std::fs::read(path).unwrap();
        assert!(!expected.is_empty());
        assert_eq!(map.bytes(), &expected[..]);
    }

    /// A regular file is mapped, not copied; an empty one has no mapping at all.
    #[test]
    fn a_regular_file_is_mapped_and_an_empty_one_is_none() {
        let dir = std::env::temp_dir().join(format!("c2rs-mapping-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data");
        std::fs::write(&path, b"0123456789").unwrap();
        let p = path.to_string_lossy();
        let map = Mapping::of(&File::open(&path).unwrap(), &p, "test")
            .unwrap()
            .unwrap();
        assert!(matches!(map, Mapping::Mapped { len: 10, .. }));
        assert_eq!(map.bytes(), b"0123456789");
        std::fs::write(&path, b"").unwrap();
        assert!(
            Mapping::of(&File::open(&path).unwrap(), &p, "test")
                .unwrap()
                .is_none()
        );
    }
}
