//! `Blob`: a type-erased, individually locked holder for one named value of a workspace
//! (a tensor, a byte string, or a registered native object such as a queue or a DB reader).

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{C2rsError, Result};
use crate::tensor::Tensor;

/// Type name reported for a tensor blob (Caffe2's `TypeMeta` name of a CPU tensor).
pub const TENSOR_TYPE_NAME: &str = "caffe2::Tensor";
/// Type name reported for a byte-string blob.
pub const STRING_TYPE_NAME: &str = "std::string";
/// Type name reported for an empty blob.
pub const EMPTY_TYPE_NAME: &str = "nullptr (uninitialized)";

/// A native (non-tensor) object a blob can hold: queues, DB readers, cursors, …
/// `TYPE_NAME` is what messages and `c2rs_workspace_blob_type` report.
pub trait BlobNative: Any + Send + Sync {
    const TYPE_NAME: &'static str;
}

/// A shared native object with its type name.
#[derive(Clone)]
pub struct NativeObject {
    type_name: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl NativeObject {
    pub fn new<T: BlobNative>(value: Arc<T>) -> Self {
        Self {
            type_name: T::TYPE_NAME,
            value,
        }
    }
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
    /// Whether both hold the very same object (identity, not equality).
    pub fn same_object(&self, other: &NativeObject) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.value), Arc::as_ptr(&other.value))
    }
    /// The object's identity (the address it is shared from), equal for every holder.
    pub fn id(&self) -> *const std::ffi::c_void {
        Arc::as_ptr(&self.value) as *const () as *const std::ffi::c_void
    }
    /// The object as `Arc<T>` when it is a `T`.
    pub fn downcast<T: BlobNative>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.value).downcast::<T>().ok()
    }
}

/// What a blob holds.
#[derive(Clone, Default)]
pub enum BlobContent {
    /// Created but never written (Caffe2's uninitialized blob).
    #[default]
    Empty,
    /// A CPU tensor. Cloning is shallow: storage is shared and copied on write.
    Tensor(Tensor),
    /// A byte string (Caffe2 `std::string` blob); may contain `\0`.
    String(Vec<u8>),
    /// A registered native object, shared.
    Native(NativeObject),
}

impl BlobContent {
    /// The type name used in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            BlobContent::Empty => EMPTY_TYPE_NAME,
            BlobContent::Tensor(_) => TENSOR_TYPE_NAME,
            BlobContent::String(_) => STRING_TYPE_NAME,
            BlobContent::Native(n) => n.type_name(),
        }
    }
}

fn wrong_type(contains: &str, expects: &str) -> C2rsError {
    C2rsError::type_mismatch(format!(
        "wrong type for the Blob instance. Blob contains {contains} while caller expects {expects}"
    ))
}

/// One blob. Shared as `Arc<Blob>` by the workspace map and every operator that uses it, so
/// removing the name never invalidates a running operator; `Arc::as_ptr` is its identity.
#[derive(Default)]
pub struct Blob {
    /// Guards the content. Held only for short reads/writes (operators take snapshots);
    /// never held while blocking. Lock order between two blobs: lower address first (`swap`).
    content: RwLock<BlobContent>,
    /// Set once, when the blob's name is removed from the workspace that held it; never
    /// cleared. Operators built on the blob refuse to run once the name holds another blob
    /// (`run_operator`), so a net never goes on silently reading a blob the workspace no
    /// longer has while a new blob of the same name is fed. Relaxed is enough: it is a flag on
    /// its own, read once per operator run, and a run racing with the removal may see either
    /// value.
    removed: AtomicBool,
}

impl Blob {
    pub fn new() -> Self {
        Self::default()
    }

    /// A blob already holding `content`.
    pub fn with_content(content: BlobContent) -> Self {
        Self {
            content: RwLock::new(content),
            removed: AtomicBool::new(false),
        }
    }

    /// Marks the blob as removed from its workspace (see `removed`).
    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::Relaxed);
    }

    /// Whether the blob's name was removed from the workspace that held it.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Shared access to the content; keep the guard short.
    pub fn read(&self) -> RwLockReadGuard<'_, BlobContent> {
        self.content.read()
    }

    /// Exclusive access to the content; keep the guard short.
    pub fn write(&self) -> RwLockWriteGuard<'_, BlobContent> {
        self.content.write()
    }

    /// Type name of the current content.
    pub fn type_name(&self) -> &'static str {
        self.content.read().type_name()
    }

    pub fn is_empty(&self) -> bool {
        matches!(*self.content.read(), BlobContent::Empty)
    }

    pub fn is_tensor(&self) -> bool {
        matches!(*self.content.read(), BlobContent::Tensor(_))
    }

    /// A shallow snapshot of the tensor (shares storage; writers copy first).
    pub fn tensor(&self) -> Result<Tensor> {
        match &*self.content.read() {
            BlobContent::Tensor(t) => Ok(t.clone()),
            other => Err(wrong_type(other.type_name(), TENSOR_TYPE_NAME)),
        }
    }

    /// A deep copy of the tensor (host-owned, shares nothing with the blob). Copied under the
    /// read lock, so the blob's storage is not shared even for a moment.
    pub fn copy_tensor(&self) -> Result<Tensor> {
        match &*self.content.read() {
            BlobContent::Tensor(t) => t.deep_copy(),
            other => Err(wrong_type(other.type_name(), TENSOR_TYPE_NAME)),
        }
    }

    /// Stores a copy of `src`. When the blob already holds a tensor of the same dtype and
    /// dims whose buffer nobody else shares (Caffe2's `CopyFrom` into a tensor of the right
    /// size), the elements are copied into that buffer: nothing is allocated. Otherwise a new
    /// copy replaces the content. Snapshots taken earlier share the old buffer, so they never
    /// see the new values either way.
    pub fn set_tensor_copy(&self, src: &Tensor) -> Result<()> {
        if let BlobContent::Tensor(t) = &mut *self.content.write() {
            if t.overwrite_from(src) {
                return Ok(());
            }
        }
        // Allocating and copying outside the lock.
        let copy = src.deep_copy()?;
        self.set_tensor(copy);
        Ok(())
    }

    /// Replaces the content with `tensor`.
    pub fn set_tensor(&self, tensor: Tensor) {
        *self.content.write() = BlobContent::Tensor(tensor);
    }

    /// A copy of the byte string.
    pub fn string(&self) -> Result<Vec<u8>> {
        match &*self.content.read() {
            BlobContent::String(s) => Ok(s.clone()),
            other => Err(wrong_type(other.type_name(), STRING_TYPE_NAME)),
        }
    }

    /// Replaces the content with a byte string.
    pub fn set_string(&self, value: Vec<u8>) {
        *self.content.write() = BlobContent::String(value);
    }

    /// The native object as `Arc<T>`; wrong content is the Caffe2 "wrong type" enforce.
    pub fn native<T: BlobNative>(&self) -> Result<Arc<T>> {
        match &*self.content.read() {
            BlobContent::Native(n) => n
                .downcast::<T>()
                .ok_or_else(|| wrong_type(n.type_name(), T::TYPE_NAME)),
            other => Err(wrong_type(other.type_name(), T::TYPE_NAME)),
        }
    }

    /// Replaces the content with a native object.
    pub fn set_native<T: BlobNative>(&self, value: Arc<T>) {
        *self.content.write() = BlobContent::Native(NativeObject::new(value));
    }

    /// Caffe2's `GetMutable<T>()`: the existing `T` when the blob holds one, else the old
    /// content is dropped and `make()` is stored. The flag is `true` when a new object was made.
    pub fn get_or_insert_native<T: BlobNative>(&self, make: impl FnOnce() -> T) -> (Arc<T>, bool) {
        let mut guard = self.content.write();
        if let BlobContent::Native(n) = &*guard {
            if let Some(existing) = n.downcast::<T>() {
                return (existing, false);
            }
        }
        let value = Arc::new(make());
        *guard = BlobContent::Native(NativeObject::new(Arc::clone(&value)));
        (value, true)
    }

    /// Replaces the content, returning the old one.
    pub fn replace(&self, content: BlobContent) -> BlobContent {
        std::mem::replace(&mut *self.content.write(), content)
    }

    /// Caffe2's `Reset()`: drops the content.
    pub fn reset(&self) {
        self.replace(BlobContent::Empty);
    }

    /// Gives the content up, leaving the blob empty (Caffe2's `Release`/move-from).
    pub fn take(&self) -> BlobContent {
        self.replace(BlobContent::Empty)
    }

    /// Exchanges the contents of two blobs in O(1). Locks are taken in address order, so two
    /// concurrent swaps of the same pair cannot deadlock. Swapping a blob with itself is a no-op.
    pub fn swap(a: &Blob, b: &Blob) {
        if std::ptr::eq(a, b) {
            return;
        }
        let (first, second) = if (a as *const Blob) < (b as *const Blob) {
            (a, b)
        } else {
            (b, a)
        };
        let mut x = first.content.write();
        let mut y = second.content.write();
        std::mem::swap(&mut *x, &mut *y);
    }

    /// What the Python `FetchBlob` returns for content that is neither tensor nor string.
    pub fn native_description(name: &str, type_name: &str) -> String {
        format!("{name}, a C++ native class of type {type_name}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DataType;

    struct Counter(i32);
    impl BlobNative for Counter {
        const TYPE_NAME: &'static str = "test::Counter";
    }
    #[derive(Debug)]
    struct Other;
    impl BlobNative for Other {
        const TYPE_NAME: &'static str = "test::Other";
    }

    #[test]
    fn get_or_insert_reports_new_object_only_once() {
        let b = Blob::new();
        assert!(b.is_empty());
        assert_eq!(b.type_name(), EMPTY_TYPE_NAME);
        let (c, fresh) = b.get_or_insert_native(|| Counter(5));
        assert!(fresh);
        assert_eq!(c.0, 5);
        let (c2, fresh) = b.get_or_insert_native(|| Counter(9));
        assert!(!fresh);
        assert!(Arc::ptr_eq(&c, &c2));
        // Another type replaces the content.
        let (_, fresh) = b.get_or_insert_native(|| Other);
        assert!(fresh);
        assert_eq!(b.type_name(), "test::Other");
    }

    #[test]
    fn wrong_type_names_both_types() {
        let b = Blob::new();
        b.set_native(Arc::new(Counter(1)));
        let e = b.tensor().unwrap_err();
        assert_eq!(
            e.message(),
            "wrong type for the Blob instance. Blob contains test::Counter while caller expects caffe2::Tensor"
        );
        assert!(
            b.native::<Other>()
                .unwrap_err()
                .message()
                .contains("expects test::Other")
        );
        assert_eq!(b.native::<Counter>().unwrap().0, 1);
        let empty = Blob::new();
        assert!(
            empty
                .string()
                .unwrap_err()
                .message()
                .contains("nullptr (uninitialized)")
        );
    }

    #[test]
    fn a_copy_feed_reuses_an_unshared_buffer_and_never_changes_a_snapshot() {
        let ints = |v: &[i32]| Tensor::from_slice(DataType::Int32, &[v.len() as i64], v).unwrap();
        let b = Blob::new();
        b.set_tensor_copy(&ints(&[1, 2])).unwrap();
        let buffer = b.tensor().unwrap().data_ptr().unwrap();
        // Same dtype and dims, buffer unshared: copied in place.
        b.set_tensor_copy(&ints(&[3, 4])).unwrap();
        let now = b.tensor().unwrap();
        assert_eq!(now.data_ptr().unwrap(), buffer);
        assert_eq!(now.typed::<i32>().unwrap(), &[3, 4]);
        // `now` shares the buffer: the next feed makes a new one and `now` keeps its values.
        b.set_tensor_copy(&ints(&[5, 6])).unwrap();
        assert_eq!(now.typed::<i32>().unwrap(), &[3, 4]);
        assert_eq!(b.tensor().unwrap().typed::<i32>().unwrap(), &[5, 6]);
        assert_ne!(b.tensor().unwrap().data_ptr().unwrap(), buffer);
        // Other dims, or content that is no tensor, are replaced.
        b.set_tensor_copy(&ints(&[7])).unwrap();
        assert_eq!(b.tensor().unwrap().dims(), &[1]);
        b.set_string(b"s".to_vec());
        b.set_tensor_copy(&ints(&[8])).unwrap();
        assert_eq!(b.tensor().unwrap().typed::<i32>().unwrap(), &[8]);
        // A deep copy shares nothing with the blob.
        let copy = b.copy_tensor().unwrap();
        assert!(!copy.shares_storage_with(&b.tensor().unwrap()));
        assert!(Blob::new().copy_tensor().is_err());
    }

    #[test]
    fn swap_exchanges_and_take_leaves_empty() {
        let a = Blob::new();
        let b = Blob::new();
        a.set_tensor(Tensor::from_slice(DataType::Int32, &[1], &[7i32]).unwrap());
        b.set_string(b"x\0y".to_vec());
        Blob::swap(&a, &b);
        assert_eq!(a.string().unwrap(), b"x\0y");
        assert_eq!(b.tensor().unwrap().typed::<i32>().unwrap(), &[7]);
        Blob::swap(&b, &b);
        assert!(b.is_tensor());
        let moved = a.take();
        assert!(matches!(moved, BlobContent::String(_)));
        assert!(a.is_empty());
        b.reset();
        assert!(b.is_empty());
    }
}
