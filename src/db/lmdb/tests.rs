use super::*;
use crate::ErrorKind;
use crate::db::lmdb::format::{Meta, pick_meta};
use crate::db::lmdb::fuzzing::read_data_mdb;

/// A fresh path under the temp directory, removed (with what was made there) on drop.
struct TempDir(String);

impl std::ops::Deref for TempDir {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TempDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        self.0.as_ref()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("c2rs-lmdb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    TempDir(dir.to_string_lossy().into_owned())
}

fn golden_dir() -> String {
    format!(
        "{}/tests/data/golden/db/records.lmdb",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Every record from the first, through the `Cursor` trait.
fn walk(db: &dyn Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = db.new_cursor().unwrap();
    let mut records = Vec::new();
    while c.valid() {
        records.push((c.key().to_vec(), c.value().to_vec()));
        c.next().unwrap();
    }
    records
}

/// A new LMDB at `path` holding `records`, put in one transaction by our writer (heed).
fn write_lmdb(path: &str, records: &[(Vec<u8>, Vec<u8>)]) {
    let db = LmDb::open(path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    for (k, v) in records {
        t.put(k, v).unwrap();
    }
    t.commit().unwrap();
}

fn data_mdb(path: &str) -> Vec<u8> {
    std::fs::read(format!("{path}/data.mdb")).unwrap()
}

/// Keys `k000000`.., values of every size class: inline, a page and more (overflow pages),
/// 200 kB runs, and empty.
fn many_records(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let len = match i {
                _ if i % 97 == 0 => 200_000 + i,
                _ if i % 7 == 0 => 4000 + i % 9000,
                _ if i % 13 == 0 => 0,
                _ => 10 + i % 300,
            };
            let value = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
            (format!("k{i:06}").into_bytes(), value)
        })
        .collect()
}

// Ported from caffe2/core/db_test.cc DBSeekTest (LMDB).
#[test]
fn seek_finds_the_first_key_not_less() {
    let path = temp_dir("seek");
    let db = LmDb::open(&path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    for i in 0..10 {
        let k = format!("{i:02}");
        t.put(k.as_bytes(), k.as_bytes()).unwrap();
    }
    t.commit().unwrap();
    drop(t);
    drop(db);
    let db = LmDb::open(&path, Mode::Read).unwrap();
    let mut c = db.new_cursor().unwrap();
    let at = |c: &dyn Cursor| {
        (
            String::from_utf8_lossy(c.key()).into_owned(),
            String::from_utf8_lossy(c.value()).into_owned(),
        )
    };
    c.seek_to_first().unwrap();
    assert_eq!(at(&*c), ("00".into(), "00".into()));
    c.next().unwrap();
    assert_eq!(at(&*c).0, "01");
    c.next().unwrap();
    assert_eq!(at(&*c).0, "02");
    c.seek_to_first().unwrap();
    assert_eq!(at(&*c).0, "00");
    c.seek(b"05").unwrap();
    assert_eq!(at(&*c), ("05".into(), "05".into()));
    c.seek(b"07.5").unwrap();
    assert_eq!(at(&*c).0, "08");
    c.seek(b"11").unwrap();
    assert!(!c.valid());
    c.seek(b"").unwrap();
    assert_eq!(at(&*c).0, "00");
}

#[test]
fn new_refuses_an_existing_directory_and_files_are_not_sources() {
    let path = temp_dir("exists");
    std::fs::create_dir_all(&path).unwrap();
    assert!(LmDb::open(&path, Mode::New).is_err());
    let file = format!("{path}/file");
    std::fs::write(&file, b"x").unwrap();
    let e = LmDb::open(&file, Mode::Read).err().expect("file source");
    assert_eq!(
        e.message(),
        format!("LMDB source must be a directory: {file}")
    );
}

#[test]
fn write_mode_takes_an_empty_data_file_as_a_new_db_and_checks_a_damaged_one() {
    // A zero-length data.mdb (a writer that died before its first commit) is what liblmdb
    // initializes: opening for writing works and the DB takes records.
    let dir = temp_dir("empty-data-file");
    let path = dir.0.clone();
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(format!("{path}/data.mdb"), b"").unwrap();
    let db = LmDb::open(&path, Mode::Write).expect("an empty data file opens for writing");
    let mut t = db.new_transaction().unwrap();
    t.put(b"k", b"v").unwrap();
    t.commit().unwrap();
    drop(t);
    assert_eq!(walk(&db), [(b"k".to_vec(), b"v".to_vec())]);
    drop(db);
    // A non-empty file that is not an LMDB file is checked before liblmdb trusts it.
    let dir = temp_dir("garbage-data-file");
    let path = dir.0.clone();
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(format!("{path}/data.mdb"), [0x5au8; 8192]).unwrap();
    assert!(LmDb::open(&path, Mode::Write).is_err());
}

#[test]
fn writers_of_one_directory_share_its_environment_while_others_open() {
    let (one, two) = (temp_dir("shared-env-1"), temp_dir("shared-env-2"));
    let first = LmDb::open(&one.0, Mode::New).unwrap();
    // Opening another directory prunes the registry of environments; the live one stays.
    let _other = LmDb::open(&two.0, Mode::New).unwrap();
    let second = LmDb::open(&one.0, Mode::Write).unwrap();
    assert!(Arc::ptr_eq(
        first.writer.as_ref().unwrap(),
        second.writer.as_ref().unwrap()
    ));
}

#[test]
fn long_keys_are_refused() {
    let path = temp_dir("long");
    let db = LmDb::open(&path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    let e = t.put(&[b'k'; 512], b"v").unwrap_err();
    assert_eq!(e.message(), "LMDB key too long (512 > 511 bytes)");
    assert!(t.put(&[b'k'; 511], b"v").is_ok());
}

/// The records of the golden minidb, which holds the same records as the golden LMDB.
fn golden_minidb_records() -> Vec<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(format!(
        "{}/tests/data/golden/db/records.minidb",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let k = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let v = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let key = bytes[at + 8..at + 8 + k].to_vec();
        let value = bytes[at + 8 + k..at + 8 + k + v].to_vec();
        records.push((key, value));
        at += 8 + k + v;
    }
    records
}

#[test]
fn the_golden_lmdb_reads_byte_for_byte() {
    let golden = data_mdb(&golden_dir());
    // Written by Python's lmdb: 4 KiB pages, transaction 1 in meta page 1, one leaf (page 2).
    assert_eq!(
        pick_meta(&golden, None).unwrap(),
        Meta {
            page_size: 4096,
            txnid: 1,
            last_page: 2,
            root: Some(2),
            depth: 1,
            entries: 10,
        }
    );
    let db = LmDb::open(&golden_dir(), Mode::Read).unwrap();
    let records = walk(&db);
    let want = golden_minidb_records();
    assert_eq!(records.len(), 10);
    assert_eq!(records, want);
    let total: usize = want.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(read_data_mdb(&golden, &[b"00000005"]).unwrap(), (10, total));
}

#[test]
fn our_writers_many_keys_and_overflow_values_read_back_exactly() {
    let path = temp_dir("many");
    let records = many_records(3000);
    write_lmdb(&path, &records);
    let meta = pick_meta(&data_mdb(&path), None).unwrap();
    assert!(meta.depth >= 2, "a multi-level tree: {meta:?}");
    assert_eq!(meta.entries, 3000);
    let db = LmDb::open(&path, Mode::Read).unwrap();
    let read = walk(&db);
    assert_eq!(read.len(), records.len());
    for (got, want) in read.iter().zip(&records) {
        assert!(got == want, "record {}", want.0.escape_ascii());
    }
}

#[test]
fn seek_in_a_multi_level_tree_lands_on_the_first_key_not_less() {
    let path = temp_dir("seek-deep");
    let records = many_records(3000);
    write_lmdb(&path, &records);
    let db = LmDb::open(&path, Mode::Read).unwrap();
    let mut c = db.new_cursor().unwrap();
    for i in (0..3000).step_by(37).chain([2999]) {
        let key = format!("k{i:06}");
        c.seek(key.as_bytes()).unwrap();
        assert_eq!(c.key(), key.as_bytes());
        assert_eq!(c.value(), records[i].1.as_slice());
        // Between two keys: the next one; then `next` goes on from there.
        c.seek(format!("{key}~").as_bytes()).unwrap();
        if i + 1 < 3000 {
            assert_eq!(c.key(), records[i + 1].0.as_slice());
            c.next().unwrap();
            assert_eq!(c.valid(), i + 2 < 3000);
        } else {
            assert!(!c.valid());
        }
    }
    for (key, want) in [
        (&b""[..], Some(0)),
        (b"a", Some(0)),
        (b"k", Some(0)),
        (b"l", None),
    ] {
        c.seek(key).unwrap();
        match want {
            Some(i) => assert_eq!(c.key(), records[i].0.as_slice()),
            None => assert!(!c.valid() && c.key().is_empty() && c.value().is_empty()),
        }
    }
}

#[test]
fn an_empty_db_has_an_invalid_cursor() {
    let path = temp_dir("empty");
    drop(LmDb::open(&path, Mode::New).unwrap());
    let db = LmDb::open(&path, Mode::Read).unwrap();
    let mut c = db.new_cursor().unwrap();
    assert!(!c.valid());
    c.next().unwrap();
    c.seek(b"x").unwrap();
    assert!(!c.valid());
    assert_eq!(pick_meta(&data_mdb(&path), None).unwrap().root, None);
}

#[test]
fn a_cursor_reads_its_snapshot_while_this_process_writes() {
    let path = temp_dir("snapshot");
    let writer = LmDb::open(&path, Mode::New).unwrap();
    let version = |n: u8| -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..400)
            .map(|i| (format!("{i:04}").into_bytes(), vec![n; 100 + i % 50]))
            .collect()
    };
    let commit = |records: &[(Vec<u8>, Vec<u8>)]| {
        let mut t = writer.new_transaction().unwrap();
        for (k, v) in records {
            t.put(k, v).unwrap();
        }
        t.commit().unwrap();
    };
    commit(&version(0));
    let reader = LmDb::open(&path, Mode::Read).unwrap();
    let mut old = reader.new_cursor().unwrap();
    // Each commit rewrites every page; unprotected pages of version 0 would be reused from
    // the second commit on.
    for n in 1..=6 {
        commit(&version(n));
    }
    let mut seen = Vec::new();
    while old.valid() {
        seen.push((old.key().to_vec(), old.value().to_vec()));
        old.next().unwrap();
    }
    assert!(seen == version(0), "the old cursor still reads version 0");
    assert!(
        walk(&reader) == version(6),
        "a new cursor reads the newest commit"
    );
}

#[test]
fn a_write_handle_opened_after_a_reader_shares_the_file() {
    let path = temp_dir("read-then-write");
    write_lmdb(&path, &[(b"a".to_vec(), b"1".to_vec())]);
    let reader = LmDb::open(&path, Mode::Read).unwrap();
    let writer = LmDb::open(&path, Mode::Write).unwrap();
    let mut t = writer.new_transaction().unwrap();
    t.put(b"b", b"2").unwrap();
    t.commit().unwrap();
    assert_eq!(
        walk(&reader),
        [
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
}

/// Flips bits of `bytes[range]`.
fn inverted(bytes: &[u8], range: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for b in &mut out[range] {
        *b = !*b;
    }
    out
}

fn assert_damage_found(bytes: &[u8], what: &str) {
    match read_data_mdb(bytes, &[b"k000100", b"k001000~", b""]) {
        Err(e) if e.kind() == ErrorKind::Parse => {}
        other => panic!("{what}: expected a parse error, got {other:?}"),
    }
}

#[test]
fn every_damaged_page_of_a_multi_level_db_is_found_or_harmless() {
    let path = temp_dir("damage");
    write_lmdb(&path, &many_records(600));
    let bytes = data_mdb(&path);
    let meta = pick_meta(&bytes, None).unwrap();
    let page = meta.page_size;
    let intact = read_data_mdb(&bytes, &[]).unwrap();
    assert_eq!(intact.0, 600);
    let pages = bytes.len() / page;
    for p in 0..pages {
        let at = p * page;
        // Written in one transaction, every page after the metas belongs to the tree (a
        // branch, a leaf or an overflow page), so losing or scrambling one is always found.
        assert_damage_found(&bytes[..at], &format!("cut at page {p}"));
        // Cut inside a page: found, unless the page is the end of an overflow run whose value
        // ends before the cut (then nothing was lost).
        match read_data_mdb(&bytes[..at + page / 2], &[]) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::Parse, "cut inside page {p}"),
            Ok(read) => assert_eq!(read, intact, "cut inside page {p}"),
        }
        // Pages 1.. of an overflow run have no header (their bytes are the value's).
        let numbered = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) == p as u64;
        if p < 2 || numbered {
            assert_damage_found(&inverted(&bytes, at..at + 16), &format!("page {p} header"));
        }
        let flags = u16::from_le_bytes([bytes[at + 10], bytes[at + 11]]);
        if p >= 2 && numbered && flags & 3 != 0 {
            let lower = usize::from(u16::from_le_bytes([bytes[at + 12], bytes[at + 13]]));
            let upper = usize::from(u16::from_le_bytes([bytes[at + 14], bytes[at + 15]]));
            assert_damage_found(
                &inverted(&bytes, at + 16..at + lower),
                &format!("page {p} node offsets"),
            );
            // Node headers and keys scrambled: found, or read as other records.
            match read_data_mdb(&inverted(&bytes, at + upper..at + page), &[b"k000300"]) {
                Ok(_) => {}
                Err(e) => assert!(
                    matches!(e.kind(), ErrorKind::Parse | ErrorKind::Unsupported),
                    "page {p} nodes: {e:?}"
                ),
            }
        }
    }
    // Seeded byte flips anywhere: a status every time, never a panic.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut found = 0;
    for _ in 0..3000 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            damaged[at] ^= 1 << (next() % 8);
        }
        match read_data_mdb(&damaged, &[b"k000250", b"zz"]) {
            Ok(_) => {}
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::Parse | ErrorKind::Unsupported),
                    "{e:?}"
                );
                found += 1;
            }
        }
    }
    assert!(found > 0);
}

#[test]
fn damaged_files_name_the_file_and_the_fault() {
    let path = temp_dir("named");
    let golden = data_mdb(&golden_dir());
    std::fs::create_dir_all(&path).unwrap();
    let file = format!("{path}/data.mdb");
    for (bytes, fault) in [
        (
            &golden[..8192],
            "root page 2 lies beyond the end of the file (2 pages of 4096 bytes): truncated",
        ),
        (&golden[..0], "the file is empty"),
        (
            &golden[..5000],
            "5000 bytes hold fewer than the two 4096-byte meta pages: truncated",
        ),
    ] {
        std::fs::write(&file, bytes).unwrap();
        let e = LmDb::open(&path, Mode::Read).err().expect("damaged");
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert_eq!(e.message(), format!("LMDB {file}: {fault}"));
    }
    // Node offsets of the leaf inverted: found when the cursor first reads the leaf.
    std::fs::write(&file, inverted(&golden, 8208..8256)).unwrap();
    let db = LmDb::open(&path, Mode::Read).unwrap();
    let e = db.new_cursor().err().expect("damaged leaf");
    assert_eq!(e.kind(), ErrorKind::Parse);
    assert!(
        e.message()
            .starts_with(&format!("LMDB {file}: page 2: node 0 at offset ")),
        "{}",
        e.message()
    );
    // A missing data.mdb is not found, as before.
    std::fs::remove_file(&file).unwrap();
    let e = LmDb::open(&path, Mode::Read).err().expect("missing");
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn write_mode_refuses_a_damaged_file_before_liblmdb_opens_it() {
    let golden = data_mdb(&golden_dir());
    for (name, bytes) in [
        ("write-truncated", golden[..8192].to_vec()),
        ("write-no-page-size", inverted(&golden, 40..44)),
    ] {
        let path = temp_dir(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(format!("{path}/data.mdb"), &bytes).unwrap();
        let e = LmDb::open(&path, Mode::Write).err().expect("damaged");
        assert_eq!(e.kind(), ErrorKind::Parse, "{}", e.message());
        assert!(e.message().starts_with(&format!("LMDB {path}/data.mdb: ")));
        // liblmdb never saw it: no lock file was made.
        assert!(!std::path::Path::new(&format!("{path}/lock.mdb")).exists());
    }
}

#[test]
fn the_newer_meta_page_is_read_and_both_must_be_valid() {
    let golden = data_mdb(&golden_dir());
    // Meta page 0 holds transaction 0 (empty), meta page 1 transaction 1 (ten records).
    let mut older_wins = golden.clone();
    older_wins[144..152].copy_from_slice(&7u64.to_le_bytes());
    assert_eq!(pick_meta(&older_wins, None).unwrap().root, None);
    assert_eq!(read_data_mdb(&older_wins, &[]).unwrap().0, 0);
    // A pinned transaction picks its own meta page.
    assert_eq!(pick_meta(&older_wins, Some(1)).unwrap().txnid, 1);
    assert!(pick_meta(&older_wins, Some(3)).is_err());
    // Either meta page damaged: the file is refused, as liblmdb refuses to open it.
    for at in [16, 4096 + 16] {
        let e = read_data_mdb(&inverted(&golden, at..at + 4), &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse, "{}", e.message());
    }
}

#[test]
fn named_sub_databases_and_sorted_duplicates_are_refused() {
    use heed::types::Bytes;
    use heed::{CommitOrAbort, DatabaseFlags, EnvOpenOptions};
    let named = temp_dir("named-db");
    std::fs::create_dir_all(&named).unwrap();
    let mut options = EnvOpenOptions::new();
    options.max_dbs(2).map_size(1 << 24);
    // SAFETY: a fresh directory only this test uses; nothing truncates its file.
    let env = unsafe { options.open(&named) }.unwrap();
    let sub = env
        .create_databases_and_commit(env.write_txn().unwrap(), |opener, wtxn| {
            opener
                .create_database::<Bytes, Bytes>(wtxn, Some("sub"))
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    sub.put(&mut wtxn, b"k", b"v").unwrap();
    wtxn.commit().unwrap();
    let dups = temp_dir("dupsort");
    std::fs::create_dir_all(&dups).unwrap();
    let mut options = EnvOpenOptions::new();
    options.map_size(1 << 24);
    // SAFETY: as above.
    let env2 = unsafe { options.open(&dups) }.unwrap();
    let db = env2
        .create_databases_and_commit(env2.write_txn().unwrap(), |opener, wtxn| {
            opener
                .database_options()
                .types::<Bytes, Bytes>()
                .flags(DatabaseFlags::DUP_SORT)
                .create(wtxn)
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env2.write_txn().unwrap();
    db.put(&mut wtxn, b"k", b"v1").unwrap();
    db.put(&mut wtxn, b"k", b"v2").unwrap();
    wtxn.commit().unwrap();
    drop((env, env2));

    let e = LmDb::open(&named, Mode::Read)
        .and_then(|db| db.new_cursor().map(|_| ()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.message().contains("record sub is a named sub-database"),
        "{}",
        e.message()
    );
    let e = LmDb::open(&dups, Mode::Read).err().expect("dupsort");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("sorted duplicates"), "{}", e.message());
}

/// A pinned snapshot whose meta page is gone (other threads committed twice while the cursor
/// opened it) is pinned again: `fails` failed opens are retried while attempts remain.
/// Returns what `open_pinned` gave and how many pins it took.
fn pinned_after_failures(fails: u32) -> (Result<(u32, u32)>, u32) {
    use std::cell::Cell;
    let pins = Cell::new(0u32);
    let got = super::open_pinned(
        || {
            pins.set(pins.get() + 1);
            // A pin that never stops failing would loop forever; end it with a pin of 0, which
            // the open below takes as a success, so that a missing bound shows as a wrong result.
            Ok(if pins.get() > 10 { 0 } else { pins.get() })
        },
        |&pin: &u32| {
            if pin == 0 || pin > fails {
                Ok(pin * 100)
            } else {
                Err(C2rsError::parse(format!("meta page of pin {pin} is gone")))
            }
        },
    );
    (got, pins.get())
}

#[test]
fn a_lost_pinned_snapshot_is_pinned_again_up_to_three_times() {
    let (got, pins) = pinned_after_failures(0);
    assert_eq!((got.unwrap(), pins), ((100, 1), 1));
    let (got, pins) = pinned_after_failures(1);
    assert_eq!((got.unwrap(), pins), ((200, 2), 2));
    let (got, pins) = pinned_after_failures(2);
    assert_eq!((got.unwrap(), pins), ((300, 3), 3));
    // The third failure is the answer: the last error, after exactly three pins.
    let (got, pins) = pinned_after_failures(3);
    let e = got.unwrap_err();
    assert_eq!((e.kind(), pins), (ErrorKind::Parse, 3));
    assert_eq!(e.message(), "meta page of pin 3 is gone");
    let (got, pins) = pinned_after_failures(u32::MAX);
    assert_eq!((got.unwrap_err().kind(), pins), (ErrorKind::Parse, 3));
}

#[test]
fn a_failed_pin_is_returned_without_opening() {
    let opened = std::cell::Cell::new(false);
    let e = super::open_pinned(
        || Err::<u32, _>(C2rsError::io("no read slot")),
        |_: &u32| {
            opened.set(true);
            Ok(())
        },
    )
    .unwrap_err();
    assert_eq!(e.message(), "no read slot");
    assert!(!opened.get());
}
