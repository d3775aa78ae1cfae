//! Raw CPU element storage: 64-byte aligned allocations made here, or foreign buffers adopted
//! with a release callback (DLPack). A `Storage` is immutable in size and shared through
//! `Arc`; writers get exclusive access through `Tensor`'s copy-on-write.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::error::{C2rsError, Result};

/// Alignment of every allocation made here (Caffe2's CPU allocator used 64 bytes).
pub const ALIGNMENT: usize = 64;

/// Releases a foreign buffer; runs exactly once, when the last `Arc<Storage>` drops.
pub type Release = Box<dyn FnOnce() + Send + Sync>;

enum Owner {
    /// Allocated here with `Layout { size: len, align: ALIGNMENT }`; `len > 0`.
    Aligned,
    /// Owned by someone else; `Option` so that `Drop` can call the release once.
    Foreign {
        release: Option<Release>,
        read_only: bool,
    },
}

/// A fixed-size byte buffer.
///
/// Invariant: `ptr` is `None` exactly when `len == 0` for `Aligned`; a foreign buffer may have
/// a pointer with `len == 0` or no pointer at all (DLPack allows NULL for empty tensors).
pub struct Storage {
    ptr: Option<NonNull<u8>>,
    len: usize,
    owner: Owner,
}

// SAFETY: (1) `Storage` owns its bytes (or, for foreign buffers, holds the producer's exclusive
// grant of them, which DLPack hands over together with the deleter); nothing in it is tied to a
// thread. (2) Shared access only reads through `as_slice`; mutation goes through `&mut Storage`
// (exclusive, via `Arc::get_mut`) or through raw pointers the C host accepted responsibility for.
unsafe impl Send for Storage {}
// SAFETY: see `Send`; `&Storage` gives read-only access to plain bytes.
unsafe impl Sync for Storage {}

impl Storage {
    /// A zero-filled, 64-byte aligned buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Result<Self> {
        if len == 0 {
            return Ok(Self {
                ptr: None,
                len: 0,
                owner: Owner::Aligned,
            });
        }
        let layout = Layout::from_size_align(len, ALIGNMENT).map_err(|_| {
            C2rsError::invalid_argument(format!("cannot allocate {len} bytes: size too large"))
        })?;
        // SAFETY: `layout` has a non-zero size (checked above) and a valid power-of-two alignment.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw)
            .ok_or_else(|| C2rsError::internal(format!("out of memory allocating {len} bytes")))?;
        Ok(Self {
            ptr: Some(ptr),
            len,
            owner: Owner::Aligned,
        })
    }

    /// An aligned copy of `bytes`.
    pub fn copy_of(bytes: &[u8]) -> Result<Self> {
        let mut s = Self::zeroed(bytes.len())?;
        s.as_mut_slice().copy_from_slice(bytes);
        Ok(s)
    }

    /// Adopts `len` bytes at `ptr`, owned elsewhere; `release` runs once when this storage drops.
    ///
    /// # Safety
    /// `ptr` must be valid for reads (and, unless `read_only`, writes) of `len` bytes until
    /// `release` runs, and nothing else may write to it meanwhile. `ptr` may be NULL only when
    /// `len == 0`.
    pub unsafe fn adopt(ptr: *mut u8, len: usize, read_only: bool, release: Release) -> Self {
        Self {
            ptr: NonNull::new(ptr),
            len,
            owner: Owner::Foreign {
                release: Some(release),
                read_only,
            },
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether writers must copy first (an adopted buffer the producer marked read-only).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self.owner,
            Owner::Foreign {
                read_only: true,
                ..
            }
        )
    }

    /// The first byte, or NULL for an empty buffer without a pointer.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
            .map_or(std::ptr::null(), |p| p.as_ptr() as *const u8)
    }

    /// Mutable pointer for hosts (C ABI); NULL for an empty buffer without a pointer.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.map_or(std::ptr::null_mut(), |p| p.as_ptr())
    }

    pub fn as_slice(&self) -> &[u8] {
        match self.ptr {
            // SAFETY: `ptr` is valid for `len` bytes for the life of `self` (invariant of the
            // constructors), and `&self` excludes writers through safe code.
            Some(p) if self.len > 0 => unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len) },
            _ => &[],
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self.ptr {
            // SAFETY: as in `as_slice`; `&mut self` makes this the only reference.
            Some(p) if self.len > 0 => unsafe {
                std::slice::from_raw_parts_mut(p.as_ptr(), self.len)
            },
            _ => &mut [],
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        match &mut self.owner {
            Owner::Aligned => {
                if let Some(p) = self.ptr {
                    // SAFETY: allocated in `zeroed` with exactly this layout, freed only here.
                    unsafe {
                        alloc::dealloc(
                            p.as_ptr(),
                            Layout::from_size_align_unchecked(self.len, ALIGNMENT),
                        )
                    };
                }
            }
            Owner::Foreign { release, .. } => {
                if let Some(release) = release.take() {
                    release();
                }
            }
        }
    }
}

/// Element types whose bytes may be reinterpreted from aligned storage.
///
/// # Safety
/// Implementors must be plain-old-data: every bit pattern valid, no padding, no drop glue.
pub unsafe trait Pod: Copy + 'static {}
// SAFETY: primitive numbers; every bit pattern is a valid value, no padding.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for i8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for i16 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for i64 {}
// SAFETY: as above.
unsafe impl Pod for f32 {}
// SAFETY: as above.
unsafe impl Pod for f64 {}

/// Views `bytes` as `&[T]`; `None` when the length or the alignment does not fit `T`.
pub fn cast_slice<T: Pod>(bytes: &[u8]) -> Option<&[T]> {
    let size = std::mem::size_of::<T>();
    if bytes.is_empty() {
        return Some(&[]);
    }
    if bytes.len() % size != 0 || (bytes.as_ptr() as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: length and alignment checked above; `T: Pod` accepts every bit pattern; the
    // lifetime is that of `bytes`.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) })
}

/// Views `bytes` as `&mut [T]`; `None` when the length or the alignment does not fit `T`.
pub fn cast_slice_mut<T: Pod>(bytes: &mut [u8]) -> Option<&mut [T]> {
    let size = std::mem::size_of::<T>();
    if bytes.is_empty() {
        return Some(&mut []);
    }
    if bytes.len() % size != 0 || (bytes.as_ptr() as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: as in `cast_slice`, with exclusivity inherited from `&mut bytes`.
    Some(unsafe {
        std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, bytes.len() / size)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn zeroed_storage_is_aligned_and_zero() {
        for len in [1usize, 3, 64, 65, 4096] {
            let s = Storage::zeroed(len).unwrap();
            assert_eq!(s.as_ptr() as usize % ALIGNMENT, 0);
            assert!(s.as_slice().iter().all(|&b| b == 0));
            assert_eq!(s.len(), len);
        }
        assert!(Storage::zeroed(0).unwrap().as_ptr().is_null());
    }

    #[test]
    fn adopted_storage_releases_exactly_once_after_last_owner() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut backing = vec![1u8, 2, 3];
        let c = calls.clone();
        // SAFETY: `backing` outlives the storage (the storage drops inside this test first).
        let s = Arc::new(unsafe {
            Storage::adopt(
                backing.as_mut_ptr(),
                3,
                false,
                Box::new(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                }),
            )
        });
        let s2 = s.clone();
        drop(s);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(s2.as_slice(), &[1, 2, 3]);
        drop(s2);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn cast_slice_checks_length_and_alignment() {
        let s = Storage::copy_of(&[0, 0, 128, 63, 0, 0, 0, 64]).unwrap();
        assert_eq!(cast_slice::<f32>(s.as_slice()).unwrap(), &[1.0f32, 2.0]);
        assert!(cast_slice::<f32>(&s.as_slice()[..7]).is_none());
        assert!(cast_slice::<f32>(&s.as_slice()[1..5]).is_none());
    }
}
