//! The names of one workspace: its local blobs and its forwarded names, in a hash table split
//! into shards, each behind its own lock. A lookup hashes the name once (foldhash, seeded per
//! workspace), picks the shard from the hash and takes only that shard's read lock, so threads
//! looking up different names share no lock and no cache line, and nothing is cloned to
//! answer "is it there". Names are compared as bytes: a name that is not UTF-8 simply matches
//! nothing (every stored name is UTF-8), so callers holding raw bytes need not validate them
//! before a lookup that finds something.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::blob::Blob;
use super::workspace::Workspace;

/// Shards per workspace. A power of two; the shard is `SHARD_BITS` bits of the hash that
/// hashbrown does not use inside a shard (it takes the low bits for the bucket and the top
/// seven for the tag), so the names of one shard spread over its table as usual.
const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_SHIFT: u32 = 40;

/// Where a local name is forwarded to: a blob of another workspace, by its name there.
pub(super) type Forward = (Arc<Workspace>, String);

/// One local name. A name may hold a blob, a forwarding entry, or both (a local blob created
/// over a forwarded name shadows the forward; removing that blob shows the forward again, as
/// with Caffe2's two maps). A slot holding neither is removed.
struct Slot {
    hash: u64,
    name: Box<str>,
    blob: Option<Arc<Blob>>,
    forward: Option<Box<Forward>>,
}

impl Slot {
    fn is_vacant(&self) -> bool {
        self.blob.is_none() && self.forward.is_none()
    }
}

/// One shard, alone on its cache line(s) so that locking it does not disturb its neighbours.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// The slots whose hash selects this shard. Held only for a lookup or one update; never
    /// while another workspace is consulted. Lock order between shards: lower index first.
    table: RwLock<HashTable<Slot>>,
}

/// What a local name resolves to.
pub(super) enum Local {
    Blob(Arc<Blob>),
    Forwarded(Arc<Workspace>, String),
    Missing,
}

/// What a name is locally, without cloning anything when it holds a blob.
pub(super) enum Presence {
    Blob,
    Forwarded(Arc<Workspace>, String),
    Missing,
}

/// Seeded per workspace (`RandomState::default` draws a new seed).
#[derive(Default)]
pub(super) struct BlobMap {
    hasher: foldhash::fast::RandomState,
    shards: [Shard; SHARDS],
}

fn eq(name: &[u8]) -> impl Fn(&Slot) -> bool + '_ {
    move |s| s.name.as_bytes() == name
}

fn slot_hash(s: &Slot) -> u64 {
    s.hash
}

impl BlobMap {
    #[inline]
    fn hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    #[inline]
    fn shard_index(hash: u64) -> usize {
        ((hash >> SHARD_SHIFT) as usize) & (SHARDS - 1)
    }

    fn read(&self, hash: u64) -> RwLockReadGuard<'_, HashTable<Slot>> {
        self.shards[Self::shard_index(hash)].table.read()
    }

    fn write(&self, hash: u64) -> RwLockWriteGuard<'_, HashTable<Slot>> {
        self.shards[Self::shard_index(hash)].table.write()
    }

    /// What `name` is locally (blob first, then forward), cloning the result out.
    pub(super) fn lookup(&self, name: &[u8]) -> Local {
        let hash = self.hash(name);
        let table = self.read(hash);
        match table.find(hash, eq(name)) {
            Some(Slot { blob: Some(b), .. }) => Local::Blob(Arc::clone(b)),
            Some(Slot {
                forward: Some(f), ..
            }) => Local::Forwarded(Arc::clone(&f.0), f.1.clone()),
            _ => Local::Missing,
        }
    }

    /// Like `lookup`, but a local blob is only reported, not cloned.
    pub(super) fn presence(&self, name: &[u8]) -> Presence {
        let hash = self.hash(name);
        let table = self.read(hash);
        match table.find(hash, eq(name)) {
            Some(Slot { blob: Some(_), .. }) => Presence::Blob,
            Some(Slot {
                forward: Some(f), ..
            }) => Presence::Forwarded(Arc::clone(&f.0), f.1.clone()),
            _ => Presence::Missing,
        }
    }

    /// The local blob `name`, created empty if there is none (a forward of that name stays,
    /// shadowed).
    pub(super) fn get_or_insert_blob(&self, name: &str) -> Arc<Blob> {
        self.with_slot(name, |slot| {
            Arc::clone(slot.blob.get_or_insert_with(|| Arc::new(Blob::new())))
        })
    }

    /// Removes the local blob `name` and returns it (a forward of that name stays).
    pub(super) fn remove_blob(&self, name: &[u8]) -> Option<Arc<Blob>> {
        let hash = self.hash(name);
        let mut table = self.write(hash);
        let hashbrown::hash_table::Entry::Occupied(mut entry) =
            table.entry(hash, eq(name), slot_hash)
        else {
            return None;
        };
        let blob = entry.get_mut().blob.take();
        if entry.get().is_vacant() {
            entry.remove();
        }
        blob
    }

    /// Moves the local blob `old` to `new`, in one step for every reader. Errors: `Err(true)`
    /// when `new` is taken locally (blob or forward), `Err(false)` when `old` holds no blob.
    pub(super) fn rename_blob(&self, old: &str, new: &str) -> Result<(), bool> {
        let (old_hash, new_hash) = (self.hash(old.as_bytes()), self.hash(new.as_bytes()));
        let (i, j) = (Self::shard_index(old_hash), Self::shard_index(new_hash));
        // Both shards locked (lower index first) so that no reader sees both names or neither.
        if i == j {
            let mut table = self.shards[i].table.write();
            return Self::move_blob(&mut table, None, (old, old_hash), (new, new_hash));
        }
        let lo = self.shards[i.min(j)].table.write();
        let hi = self.shards[i.max(j)].table.write();
        let (mut from, mut to) = if i < j { (lo, hi) } else { (hi, lo) };
        Self::move_blob(&mut from, Some(&mut to), (old, old_hash), (new, new_hash))
    }

    /// `rename_blob` once the shards are locked: `to` is `None` when both names share `from`.
    fn move_blob(
        from: &mut HashTable<Slot>,
        to: Option<&mut HashTable<Slot>>,
        (old, old_hash): (&str, u64),
        (new, new_hash): (&str, u64),
    ) -> Result<(), bool> {
        let taken = match &to {
            Some(t) => t.find(new_hash, eq(new.as_bytes())).is_some(),
            None => from.find(new_hash, eq(new.as_bytes())).is_some(),
        };
        if taken {
            return Err(true);
        }
        let hashbrown::hash_table::Entry::Occupied(mut entry) =
            from.entry(old_hash, eq(old.as_bytes()), slot_hash)
        else {
            return Err(false);
        };
        let Some(blob) = entry.get_mut().blob.take() else {
            return Err(false);
        };
        if entry.get().is_vacant() {
            entry.remove();
        }
        let slot = Slot {
            hash: new_hash,
            name: new.into(),
            blob: Some(blob),
            forward: None,
        };
        to.unwrap_or(from).insert_unique(new_hash, slot, slot_hash);
        Ok(())
    }

    /// The forward of `name`, if any.
    pub(super) fn forward(&self, name: &str) -> Option<Forward> {
        let hash = self.hash(name.as_bytes());
        let table = self.read(hash);
        table
            .find(hash, eq(name.as_bytes()))
            .and_then(|s| s.forward.as_deref().cloned())
    }

    /// Forwards `name` to `target` (replacing any forward it had).
    pub(super) fn set_forward(&self, name: &str, target: Forward) {
        self.with_slot(name, |slot| slot.forward = Some(Box::new(target)));
    }

    /// Replaces the forward of `name` by the local blob `blob`, in one step for every reader.
    pub(super) fn replace_forward_with_blob(&self, name: &str, blob: Arc<Blob>) {
        self.with_slot(name, |slot| {
            slot.forward = None;
            slot.blob = Some(blob);
        });
    }

    /// Runs `f` on the slot of `name` (created empty if there is none) under its shard's
    /// write lock.
    fn with_slot<R>(&self, name: &str, f: impl FnOnce(&mut Slot) -> R) -> R {
        let hash = self.hash(name.as_bytes());
        let mut table = self.write(hash);
        let slot = table
            .entry(hash, eq(name.as_bytes()), slot_hash)
            .or_insert_with(|| Slot {
                hash,
                name: name.into(),
                blob: None,
                forward: None,
            })
            .into_mut();
        f(slot)
    }

    /// Every shard read-locked (in index order, so concurrent renames cannot deadlock with it):
    /// one consistent view of all names.
    fn all(&self) -> Vec<RwLockReadGuard<'_, HashTable<Slot>>> {
        self.shards.iter().map(|s| s.table.read()).collect()
    }

    /// Local blob names, sorted bytewise (Caffe2's `std::map` order).
    pub(super) fn blob_names(&self) -> Vec<String> {
        let shards = self.all();
        let mut names: Vec<String> = shards
            .iter()
            .flat_map(|t| t.iter())
            .filter(|s| s.blob.is_some())
            .map(|s| s.name.to_string())
            .collect();
        drop(shards);
        names.sort_unstable();
        names
    }

    /// Local blob names (sorted) and the forwards (sorted by local name), from one view.
    pub(super) fn names_and_forwards(&self) -> (Vec<String>, Vec<(String, Forward)>) {
        let shards = self.all();
        let mut names = Vec::new();
        let mut forwards = Vec::new();
        for slot in shards.iter().flat_map(|t| t.iter()) {
            if slot.blob.is_some() {
                names.push(slot.name.to_string());
            }
            if let Some(f) = &slot.forward {
                forwards.push((slot.name.to_string(), (Arc::clone(&f.0), f.1.clone())));
            }
        }
        drop(shards);
        names.sort_unstable();
        forwards.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (names, forwards)
    }

    /// Number of local blobs.
    pub(super) fn blob_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.table.read().iter().filter(|s| s.blob.is_some()).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_every_shard_are_found_listed_sorted_and_removed() {
        let map = BlobMap::default();
        let names: Vec<String> = (0..500).map(|i| format!("b{i}")).collect();
        let blobs: Vec<Arc<Blob>> = names.iter().map(|n| map.get_or_insert_blob(n)).collect();
        let used: std::collections::BTreeSet<usize> = names
            .iter()
            .map(|n| BlobMap::shard_index(map.hash(n.as_bytes())))
            .collect();
        assert_eq!(used.len(), SHARDS, "500 names reach every shard");
        for (n, b) in names.iter().zip(&blobs) {
            assert!(matches!(map.lookup(n.as_bytes()), Local::Blob(x) if Arc::ptr_eq(&x, b)));
            assert!(
                Arc::ptr_eq(&map.get_or_insert_blob(n), b),
                "existing blob kept"
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(map.blob_names(), sorted);
        assert_eq!(map.blob_count(), 500);
        assert!(matches!(map.presence(b"b500"), Presence::Missing));
        assert!(matches!(map.presence(b"b\xff"), Presence::Missing));
        assert!(Arc::ptr_eq(&map.remove_blob(b"b7").unwrap(), &blobs[7]));
        assert!(map.remove_blob(b"b7").is_none());
        assert_eq!(map.blob_count(), 499);
    }

    #[test]
    fn rename_moves_the_blob_across_shards_and_refuses_taken_names() {
        let map = BlobMap::default();
        let a = map.get_or_insert_blob("a");
        map.get_or_insert_blob("taken");
        // Find a new name in another shard and one in the same shard as "a".
        let shard_a = BlobMap::shard_index(map.hash(b"a"));
        let (mut other, mut same) = (None, None);
        for i in 0..1000 {
            let n = format!("n{i}");
            let s = BlobMap::shard_index(map.hash(n.as_bytes()));
            if s == shard_a {
                same.get_or_insert(n);
            } else {
                other.get_or_insert(n);
            }
        }
        let (other, same) = (other.unwrap(), same.unwrap());
        assert_eq!(map.rename_blob("a", "taken"), Err(true));
        assert_eq!(map.rename_blob("missing", "x"), Err(false));
        map.rename_blob("a", &other).unwrap();
        map.rename_blob(&other, &same).unwrap();
        assert!(matches!(map.lookup(same.as_bytes()), Local::Blob(x) if Arc::ptr_eq(&x, &a)));
        assert!(matches!(map.presence(b"a"), Presence::Missing));
        assert!(matches!(map.presence(other.as_bytes()), Presence::Missing));
    }
}
