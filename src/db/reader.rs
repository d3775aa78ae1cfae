//! `DbReader`: one DB cursor shared by many readers (operators, host threads), with sharding
//! and silent wrap-around, as Caffe2's `DBReader`.

use std::ops::Range;

use parking_lot::Mutex;

use super::{Cursor, Db, Mode, RecordBytes, SharedMemory, open_db};
use crate::error::{C2rsError, Result};

/// Cursor state behind the reader's lock.
///
/// Invariant (between calls): the cursor is valid and rests on a record whose index is
/// `shard_id (mod num_shards)` — the next record `read` returns.
struct State {
    /// Kept open for as long as the cursor reads from it.
    _db: Box<dyn Db>,
    cursor: Box<dyn Cursor>,
    /// Streaming reader (`DbReader::streaming`): every `read` pulls with `cursor.next()` first.
    pull: bool,
}

pub struct DbReader {
    db_type: String,
    source: String,
    num_shards: u32,
    shard_id: u32,
    /// Guards the cursor; held for one `read` (taking the record plus `num_shards` moves) or
    /// one `read_many`. Records are shared, not copied, where the DB allows (minidb), so what
    /// runs under the lock is bookkeeping, not copying.
    state: Mutex<State>,
}

impl DbReader {
    /// Opens `source` for reading and moves to the shard's first record.
    pub fn open(db_type: &str, source: &str, num_shards: u32, shard_id: u32) -> Result<Self> {
        if num_shards < 1 {
            return Err(C2rsError::enforce(format!(
                "num_shards must be at least 1, got {num_shards}"
            )));
        }
        if shard_id >= num_shards {
            return Err(C2rsError::enforce(format!(
                "shard_id {shard_id} must be less than num_shards {num_shards}"
            )));
        }
        let db = open_db(db_type, source, Mode::Read)?;
        let cursor = db.new_cursor()?;
        let mut state = State {
            _db: db,
            cursor,
            pull: false,
        };
        Self::move_to_beginning(&mut state, shard_id)?;
        Ok(Self {
            db_type: db_type.to_string(),
            source: source.to_string(),
            num_shards,
            shard_id,
            state: Mutex::new(state),
        })
    }

    /// A one-shard reader over a streaming DB (BlobsQueueDB) whose cursor pulls one record
    /// per `next()`: each `read` calls `next()` and returns that record, so a failed pull is an
    /// error instead of a repeated record, and nothing is prefetched.
    pub fn streaming(db: Box<dyn Db>, db_type: &str, source: &str) -> Result<Self> {
        let cursor = db.new_cursor()?;
        Ok(Self {
            db_type: db_type.to_string(),
            source: source.to_string(),
            num_shards: 1,
            shard_id: 0,
            state: Mutex::new(State {
                _db: db,
                cursor,
                pull: true,
            }),
        })
    }

    fn move_to_beginning(state: &mut State, shard_id: u32) -> Result<()> {
        state.cursor.seek_to_first()?;
        for _ in 0..shard_id {
            state.cursor.next()?;
            if !state.cursor.valid() {
                return Err(C2rsError::enforce("Db has less rows than shard id"));
            }
        }
        Ok(())
    }

    /// Returns the current record and advances by `num_shards`, wrapping to the shard's first
    /// record at the end (silently, as Caffe2). Each record goes to exactly one caller.
    pub fn read(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let (key, value) = self.read_shared()?;
        Ok((key.into_vec(), value.into_vec()))
    }

    /// As `read`, sharing the record's bytes with the DB where it allows (minidb: ranges of
    /// its mapped file), so the caller reads them without a copy and outside the lock.
    pub fn read_shared(&self) -> Result<(RecordBytes, RecordBytes)> {
        let mut state = self.state.lock();
        self.take(&mut state)
    }

    /// `n` consecutive reads under one lock (no other caller's record comes between). From a
    /// DB that shares its records (minidb) they are ranges of its memory, all kept alive by
    /// one shared reference: no copy and no per-record allocation or reference count.
    pub fn read_many(&self, n: usize) -> Result<Records> {
        let mut state = self.state.lock();
        let memory = state.cursor.shared_memory();
        // Grown as records arrive (fallibly), never sized from `n` up front: `n` is the
        // caller's batch size, not something the DB has shown it holds.
        let mut spans = Vec::new();
        for _ in 0..n {
            spans.try_reserve(1).map_err(|_| {
                C2rsError::internal(format!(
                    "out of memory allocating the list of {} records of a batch of {n}",
                    spans.len() + 1
                ))
            })?;
            self.advance_pull(&mut state)?;
            let span = match (&memory, state.cursor.span()) {
                (Some(_), Some((key, value))) => (Span::Shared(key), Span::Shared(value)),
                _ => {
                    let (key, value) = state.cursor.take_shared();
                    (Span::Owned(key), Span::Owned(value))
                }
            };
            self.advance(&mut state)?;
            spans.push(span);
        }
        Ok(Records { memory, spans })
    }

    fn take(&self, state: &mut State) -> Result<(RecordBytes, RecordBytes)> {
        self.advance_pull(state)?;
        let record = state.cursor.take_shared();
        self.advance(state)?;
        Ok(record)
    }

    /// Before taking a record: pulls it (streaming) or checks there is one.
    fn advance_pull(&self, state: &mut State) -> Result<()> {
        if state.pull {
            return state.cursor.next();
        }
        if !state.cursor.valid() {
            return Err(C2rsError::enforce(format!(
                "Cursor is at invalid location! ({} of type {} has no records for shard {})",
                self.source, self.db_type, self.shard_id
            )));
        }
        Ok(())
    }

    /// After taking a record: moves to the shard's next one, wrapping at the end.
    fn advance(&self, state: &mut State) -> Result<()> {
        if state.pull {
            return Ok(());
        }
        for _ in 0..self.num_shards {
            state.cursor.next()?;
            if !state.cursor.valid() {
                Self::move_to_beginning(state, self.shard_id)?;
                break;
            }
        }
        Ok(())
    }

    /// Runs `f` with exclusive access to the raw cursor (used by Load, which iterates from the
    /// current position).
    pub fn with_cursor<T>(&self, f: impl FnOnce(&mut dyn Cursor) -> Result<T>) -> Result<T> {
        let mut state = self.state.lock();
        f(state.cursor.as_mut())
    }

    pub fn db_type(&self) -> &str {
        &self.db_type
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn num_shards(&self) -> u32 {
        self.num_shards
    }

    pub fn shard_id(&self) -> u32 {
        self.shard_id
    }
}

/// One record's key or value in `Records`.
enum Span {
    Owned(RecordBytes),
    /// A range of `Records::memory`.
    Shared(Range<usize>),
}

/// Records taken by `DbReader::read_many`, in order.
pub struct Records {
    /// Keeps the DB memory that `Span::Shared` ranges point into alive.
    memory: Option<SharedMemory>,
    spans: Vec<(Span, Span)>,
}

impl Records {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn bytes<'a>(&'a self, span: &'a Span) -> &'a [u8] {
        match (span, &self.memory) {
            (Span::Owned(b), _) => b.as_ref(),
            (Span::Shared(range), Some(memory)) => memory.get(range.clone()),
            (Span::Shared(_), None) => &[],
        }
    }

    /// `(key, value)` of every record, borrowed.
    pub fn pairs(&self) -> Vec<(&[u8], &[u8])> {
        self.spans
            .iter()
            .map(|(k, v)| (self.bytes(k), self.bytes(v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten_row_lmdb(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("c2rs-reader-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.to_string_lossy().into_owned();
        let db = open_db("lmdb", &path, Mode::New).unwrap();
        let mut t = db.new_transaction().unwrap();
        for i in 0..10 {
            let k = format!("{i:02}");
            t.put(k.as_bytes(), k.as_bytes()).unwrap();
        }
        t.commit().unwrap();
        path
    }

    fn keys(reader: &DbReader, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| String::from_utf8(reader.read().unwrap().0).unwrap())
            .collect()
    }

    // Ported from caffe2/core/db_test.cc DBReaderShardedTest: 10 rows, 3 shards.
    #[test]
    fn shards_read_strided_records_and_wrap_to_their_first() {
        let path = ten_row_lmdb("sharded");
        assert_eq!(
            keys(&DbReader::open("lmdb", &path, 3, 0).unwrap(), 6),
            ["00", "03", "06", "09", "00", "03"]
        );
        assert_eq!(
            keys(&DbReader::open("lmdb", &path, 3, 1).unwrap(), 5),
            ["01", "04", "07", "01", "04"]
        );
        assert_eq!(
            keys(&DbReader::open("lmdb", &path, 3, 2).unwrap(), 5),
            ["02", "05", "08", "02", "05"]
        );
        // Batches of records (owned copies from LMDB) follow the same order.
        let reader = DbReader::open("lmdb", &path, 3, 1).unwrap();
        let batch = reader.read_many(4).unwrap();
        let got: Vec<&[u8]> = batch.pairs().iter().map(|&(k, _)| k).collect();
        assert_eq!(got, [b"01", b"04", b"07", b"01"]);
        assert_eq!((batch.len(), keys(&reader, 1)[0].as_str()), (4, "04"));
        assert!(!batch.is_empty());
        assert!(reader.read_many(0).unwrap().is_empty());
        assert_eq!(
            (
                reader.db_type(),
                reader.source(),
                reader.num_shards(),
                reader.shard_id()
            ),
            ("lmdb", path.as_str(), 3, 1)
        );
    }

    // Ported from DBReaderTest: after a seek the reader continues from there; 10 threads each
    // read once and get 10 distinct keys.
    #[test]
    fn reads_continue_from_a_seek_and_threads_share_records() {
        let path = ten_row_lmdb("threads");
        let reader = DbReader::open("lmdb", &path, 1, 0).unwrap();
        reader.with_cursor(|c| c.seek(b"05")).unwrap();
        assert_eq!(keys(&reader, 2), ["05", "06"]);
        let reader = std::sync::Arc::new(DbReader::open("lmdb", &path, 1, 0).unwrap());
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let r = reader.clone();
                std::thread::spawn(move || r.read().unwrap().0)
            })
            .collect();
        let mut got: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|k| !k.is_empty()));
    }

    #[test]
    fn minidb_shared_records_match_and_outlive_the_reader_and_a_new_db_at_the_path() {
        let path = std::env::temp_dir()
            .join(format!("c2rs-reader-{}-shared.minidb", std::process::id()))
            .to_string_lossy()
            .into_owned();
        let write = |values: &dyn Fn(usize) -> Vec<u8>| {
            let db = open_db("minidb", &path, Mode::New).unwrap();
            let mut t = db.new_transaction().unwrap();
            for i in 0..4 {
                t.put(format!("k{i}").as_bytes(), &values(i)).unwrap();
            }
        };
        let value = |i: usize| vec![i as u8; 1000 + 70_000 * (i % 2)];
        write(&value);
        let reader = DbReader::open("minidb", &path, 1, 0).unwrap();
        let (k0, v0) = reader.read_shared().unwrap();
        let (k1, v1) = reader.read_shared().unwrap();
        // Load-style access between reads: the cursor shows the current record.
        let seen = reader
            .with_cursor(|c| Ok((c.key().to_vec(), c.value().to_vec())))
            .unwrap();
        assert_eq!(seen, (b"k2".to_vec(), value(2)));
        let many = reader.read_many(3).unwrap();
        assert_eq!(
            many.pairs(),
            [
                (&b"k2"[..], &value(2)[..]),
                (&b"k3"[..], &value(3)[..]),
                (&b"k0"[..], &value(0)[..])
            ]
        );
        // NEW replaces the file, so bytes shared from the old one stay readable (no SIGBUS)
        // and unchanged after the reader is gone.
        drop(reader);
        write(&|i| vec![9; 10 + i]);
        assert_eq!(
            (k1.as_ref(), v1.as_ref(), k0.as_ref(), v0.as_ref()),
            (&b"k1"[..], &value(1)[..], &b"k0"[..], &value(0)[..])
        );
        assert_eq!(many.pairs()[2], (&b"k0"[..], &value(0)[..]));
        let reader = DbReader::open("minidb", &path, 1, 0).unwrap();
        assert_eq!(reader.read().unwrap(), (b"k0".to_vec(), vec![9; 10]));
    }

    #[test]
    fn bad_shards_and_empty_dbs_are_errors() {
        let path = ten_row_lmdb("bad");
        assert!(DbReader::open("lmdb", &path, 0, 0).is_err());
        assert!(DbReader::open("lmdb", &path, 3, 3).is_err());
        assert_eq!(
            DbReader::open("lmdb", &path, 20, 12)
                .err()
                .unwrap()
                .message(),
            "Db has less rows than shard id"
        );
        let empty =
            std::env::temp_dir().join(format!("c2rs-reader-{}-empty.minidb", std::process::id()));
        std::fs::write(&empty, b"").unwrap();
        let r = DbReader::open("minidb", empty.to_str().unwrap(), 1, 0).unwrap();
        assert!(
            r.read()
                .unwrap_err()
                .message()
                .starts_with("Cursor is at invalid location!")
        );
    }
}
