//! LevelDB ("leveldb"/"LevelDB") through the DB layer and the operators: Caffe2's DBSeekTest,
//! DBReaderTest and DBReaderShardedTest on a DB we wrote, Save/Load/Checkpoint round trips,
//! Caffe2's modes, the LOCK file against a second process, and damaged files (every byte of
//! a table, log, MANIFEST and CURRENT flipped, truncations, missing files) answered with a
//! status, checked in a child process so that a crash fails the test instead of the runner.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use caffe2rs::ErrorKind;
use caffe2rs::db::{Cursor, DbReader, Mode, open_db};
use caffe2rs::proto::{BlobProto, DbReaderProto};
use caffe2rs::tensor::{DataType, Tensor};
use caffe2rs::workspace::Workspace;
use caffe2rs::workspace::serialize::{deserialize_blob, serialize_blob_to_proto};
use prost::Message;

mod support;
use support::{arg_i, arg_s, feed, fetch, golden_leveldb_copy, op};

fn temp(name: &str) -> String {
    let p = std::env::temp_dir().join(format!("c2rs-leveldb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    let _ = std::fs::remove_file(&p);
    p.to_string_lossy().into_owned()
}

type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Writes `records` as one transaction into a NEW LevelDB at `path`, then closes it.
fn write_db(path: &str, records: &[(&[u8], &[u8])]) {
    let db = open_db("leveldb", path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    for (k, v) in records {
        t.put(k, v).unwrap();
    }
    t.commit().unwrap();
}

/// Keys "00".."09", value = key (Caffe2's db_test.cc fixture).
fn ten_rows(name: &str) -> String {
    let path = temp(name);
    let keys: Vec<String> = (0..10).map(|i| format!("{i:02}")).collect();
    let records: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_bytes(), k.as_bytes())).collect();
    write_db(&path, &records);
    path
}

fn all_records(cursor: &mut dyn Cursor) -> caffe2rs::Result<Records> {
    let mut out = Vec::new();
    while cursor.valid() {
        out.push((cursor.key().to_vec(), cursor.value().to_vec()));
        cursor.next()?;
    }
    Ok(out)
}

fn read_all(db_type: &str, path: &str, mode: Mode) -> caffe2rs::Result<Records> {
    let db = open_db(db_type, path, mode)?;
    let mut cursor = db.new_cursor()?;
    all_records(cursor.as_mut())
}

fn at(c: &dyn Cursor) -> (String, String) {
    (
        String::from_utf8_lossy(c.key()).into_owned(),
        String::from_utf8_lossy(c.value()).into_owned(),
    )
}

// Ported from caffe2/core/db_test.cc DBSeekTest (leveldb).
#[test]
fn seek_finds_the_first_key_not_less_in_a_db_we_wrote() {
    let path = ten_rows("seek");
    let db = open_db("LevelDB", &path, Mode::Read).unwrap();
    let mut c = db.new_cursor().unwrap();
    assert!(c.supports_seek());
    c.seek_to_first().unwrap();
    assert_eq!(at(&*c), ("00".into(), "00".into()));
    c.next().unwrap();
    assert_eq!(at(&*c), ("01".into(), "01".into()));
    c.next().unwrap();
    assert_eq!(at(&*c).0, "02");
    c.seek_to_first().unwrap();
    assert_eq!(at(&*c).0, "00");
    c.seek(b"05").unwrap();
    assert_eq!(at(&*c), ("05".into(), "05".into()));
    c.next().unwrap();
    assert_eq!(at(&*c).0, "06");
    c.seek(b"07.5").unwrap();
    assert_eq!(at(&*c).0, "08");
    c.next().unwrap();
    c.next().unwrap();
    assert!(!c.valid(), "past the last key");
    assert_eq!((c.key(), c.value()), (&b""[..], &b""[..]));
    c.next().unwrap();
    assert!(!c.valid(), "next on an invalid cursor stays invalid");
    c.seek(b"11").unwrap();
    assert!(!c.valid());
    c.seek(b"").unwrap();
    assert_eq!(at(&*c).0, "00");
}

// Ported from caffe2/core/db_test.cc DBReaderTest (leveldb): reads continue from a cursor
// seek; the serialized reader keeps source, type and the key of its next record and comes
// back there; ten threads sharing one reader each get a different record.
#[test]
fn reader_continues_from_a_seek_serializes_its_key_and_shares_records_among_threads() {
    let path = ten_rows("reader");
    let ws = Workspace::new();
    ws.run_operator_once(&op(
        "CreateDB",
        &[],
        &["reader"],
        vec![arg_s("db_type", "leveldb"), arg_s("db", &path)],
    ))
    .unwrap();
    let blob = ws.get_blob("reader").unwrap();
    let reader = blob.native::<DbReader>().unwrap();
    reader.with_cursor(|c| c.seek(b"05")).unwrap();
    let proto = serialize_blob_to_proto("saved_reader", &blob.read()).unwrap();
    assert_eq!(proto.r#type.as_deref(), Some("DBReader"));
    let content = DbReaderProto::decode(proto.content.as_deref().unwrap()).unwrap();
    assert_eq!(content.source.as_deref(), Some(path.as_bytes()));
    assert_eq!(content.db_type.as_deref(), Some("leveldb"));
    assert_eq!(content.key.as_deref(), Some(&b"05"[..]));
    assert_eq!(reader.read().unwrap(), (b"05".to_vec(), b"05".to_vec()));
    assert_eq!(reader.read().unwrap(), (b"06".to_vec(), b"06".to_vec()));

    // The original reader is still open: both share the one LevelDB handle of this process.
    let restored = ws.create_blob("restored").unwrap();
    deserialize_blob(
        BlobProto::decode(proto.encode_to_vec().as_slice()).unwrap(),
        &restored,
        true,
    )
    .unwrap();
    let r = restored.native::<DbReader>().unwrap();
    assert_eq!(r.read().unwrap().0, b"05");

    let shared = Arc::new(DbReader::open("leveldb", &path, 1, 0).unwrap());
    let keys: Vec<Vec<u8>> = (0..10)
        .map(|_| {
            let r = shared.clone();
            std::thread::spawn(move || r.read().unwrap().0)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(distinct.len(), 10, "{keys:?}");
    assert!(keys.iter().all(|k| !k.is_empty()));
}

// Ported from caffe2/core/db_test.cc DBReaderShardedTest (leveldb): 10 rows, 3 shards.
#[test]
fn sharded_readers_take_every_third_record_and_wrap_to_their_shard() {
    let path = ten_rows("sharded");
    let reads = |shard: u32, n: usize| -> Vec<String> {
        let r = DbReader::open("leveldb", &path, 3, shard).unwrap();
        (0..n)
            .map(|_| String::from_utf8(r.read().unwrap().0).unwrap())
            .collect()
    };
    assert_eq!(reads(0, 6), ["00", "03", "06", "09", "00", "03"]);
    assert_eq!(reads(1, 4), ["01", "04", "07", "01"]);
    assert_eq!(reads(2, 4), ["02", "05", "08", "02"]);
}

#[test]
fn records_in_tables_and_in_the_log_read_back_in_bytewise_key_order() {
    let path = temp("table-and-log");
    write_db(
        &path,
        &[(b"2", b"two"), (b"10", b"ten"), (b"\xff\x00key", b"")],
    );
    // Reopening for writing turns the log into a table; these records stay in the new log.
    let db = open_db("leveldb", &path, Mode::Write).unwrap();
    let mut t = db.new_transaction().unwrap();
    t.put(b"1", b"one").unwrap();
    t.put(b"2", b"TWO").unwrap(); // newer value wins
    t.put(&[b'v'; 1000], &vec![7u8; 300_000]).unwrap(); // several 64 KiB blocks
    drop(t); // drop commits
    drop(db);
    let got = read_all("leveldb", &path, Mode::Read).unwrap();
    let keys: Vec<&[u8]> = got.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(
        keys,
        [&b"1"[..], b"10", b"2", &[b'v'; 1000], b"\xff\x00key"],
        "bytewise order: \"10\" < \"2\""
    );
    assert_eq!(got[2].1, b"TWO");
    assert_eq!(got[3].1, vec![7u8; 300_000]);
    assert_eq!(got[4].1, b"");
    let files: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f.ends_with(".ldb")), "{files:?}");
    assert!(files.iter().any(|f| f == "LOCK"), "{files:?}");
}

#[test]
fn a_commit_writes_its_batch_and_the_transaction_stays_usable_cursors_see_a_snapshot() {
    let path = temp("txn");
    let db = open_db("leveldb", &path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    t.put(b"a", b"1").unwrap();
    let before = db.new_cursor().unwrap();
    assert!(!before.valid(), "nothing is visible before the commit");
    t.commit().unwrap();
    let mut after = db.new_cursor().unwrap();
    t.put(b"b", b"2").unwrap();
    t.commit().unwrap();
    assert_eq!(
        all_records(after.as_mut()).unwrap(),
        [(b"a".to_vec(), b"1".to_vec())],
        "a cursor reads the snapshot it was made on"
    );
    let mut now = db.new_cursor().unwrap();
    assert_eq!(all_records(now.as_mut()).unwrap().len(), 2);
    t.commit().unwrap(); // an empty commit is fine
}

#[test]
fn modes_follow_caffe2_new_refuses_an_existing_db_read_needs_one_write_creates_one() {
    let path = ten_rows("modes");
    let e = open_db("leveldb", &path, Mode::New).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{}", e.message());
    assert!(
        e.message()
            .starts_with(&format!("Cannot open db: {path} of type leveldb: ")),
        "{}",
        e.message()
    );

    let missing = temp("modes-missing");
    let e = open_db("leveldb", &missing, Mode::Read).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{}", e.message());
    assert!(
        !std::path::Path::new(&missing).exists(),
        "reading creates nothing"
    );
    let db = open_db("leveldb", &missing, Mode::Write).unwrap();
    drop(db);
    assert!(std::path::Path::new(&missing).join("CURRENT").exists());
    assert!(
        read_all("leveldb", &missing, Mode::Read)
            .unwrap()
            .is_empty()
    );

    let file = temp("modes-file");
    std::fs::write(&file, b"x").unwrap();
    let e = open_db("leveldb", &file, Mode::Read).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.message()
            .ends_with(&format!("LevelDB source must be a directory: {file}"))
    );

    let db = open_db("leveldb", &path, Mode::Read).unwrap();
    let e = db.new_transaction().err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Enforce);
}

#[test]
fn golden_records_written_by_google_leveldb_come_back_through_a_cursor_seek() {
    let path = golden_leveldb_copy("records.leveldb", "seek");
    let db = open_db("leveldb", &path, Mode::Read).unwrap();
    let mut c = db.new_cursor().unwrap();
    c.seek(b"00000004x").unwrap();
    assert_eq!(c.key(), b"00000005");
    c.seek(b"00000009").unwrap();
    c.next().unwrap();
    assert!(!c.valid());
    c.seek_to_first().unwrap();
    assert_eq!(all_records(c.as_mut()).unwrap().len(), 10);
}

// LevelDB before 1.14 named its tables NNNNNN.sst; later versions (and Caffe2's readers)
// still read them.
#[test]
fn tables_named_sst_by_older_leveldb_are_read() {
    let path = golden_leveldb_copy("records.leveldb", "sst");
    std::fs::rename(format!("{path}/000005.ldb"), format!("{path}/000005.sst")).unwrap();
    let records = read_all("leveldb", &path, Mode::Read).unwrap();
    assert_eq!(records.len(), 10);
    assert_eq!(records[9].0, b"00000009");
}

#[test]
fn rerunning_create_db_over_the_same_leveldb_rewinds_while_the_old_reader_is_alive() {
    let path = ten_rows("rerun");
    let ws = Workspace::new();
    let create = || {
        ws.run_operator_once(&op(
            "CreateDB",
            &[],
            &["reader"],
            vec![arg_s("db_type", "leveldb"), arg_s("db", &path)],
        ))
    };
    create().unwrap();
    let first = ws.get_blob("reader").unwrap().native::<DbReader>().unwrap();
    first.read().unwrap();
    first.read().unwrap();
    create().unwrap();
    let second = ws.get_blob("reader").unwrap().native::<DbReader>().unwrap();
    assert_eq!(second.read().unwrap().0, b"00");
    assert_eq!(
        first.read().unwrap().0,
        b"02",
        "the old reader keeps its place"
    );
}

fn float_2x3(v: f32) -> Tensor {
    let data: Vec<f32> = (0..6).map(|i| v + i as f32).collect();
    Tensor::from_slice(DataType::Float, &[2, 3], &data).unwrap()
}

#[test]
fn save_then_load_round_trips_blobs_through_leveldb() {
    let dir = temp("saveload");
    std::fs::create_dir_all(&dir).unwrap();
    let ws = Workspace::with_root(&dir);
    feed(&ws, "w", float_2x3(0.5));
    feed(
        &ws,
        "ids",
        Tensor::from_slice(DataType::Int64, &[3], &[i64::MIN, 0, i64::MAX]).unwrap(),
    );
    feed(
        &ws,
        "mask",
        Tensor::from_slice(DataType::Bool, &[2], &[1u8, 0]).unwrap(),
    );
    let save = |db: &str| {
        ws.run_operator_once(&op(
            "Save",
            &["w", "ids", "mask"],
            &[],
            vec![arg_s("db", db), arg_s("db_type", "leveldb")],
        ))
    };
    save("model.leveldb").unwrap();
    let e = save("model.leveldb").unwrap_err();
    assert!(e.message().contains("already exists"), "{}", e.message());

    let fresh = Workspace::with_root(&dir);
    fresh
        .run_operator_once(&op(
            "Load",
            &[],
            &[],
            vec![
                arg_s("db", "model.leveldb"),
                arg_s("db_type", "LevelDB"),
                arg_i("load_all", 1),
            ],
        ))
        .unwrap();
    for name in ["w", "ids", "mask"] {
        let (want, got) = (fetch(&ws, name), fetch(&fresh, name));
        assert_eq!(
            (got.dtype(), got.dims(), got.bytes().unwrap()),
            (want.dtype(), want.dims(), want.bytes().unwrap()),
            "{name}"
        );
    }
    // Keys are chunk keys in bytewise order (Save's order is not the file's).
    let keys: Vec<Vec<u8>> = read_all("leveldb", &format!("{dir}/model.leveldb"), Mode::Read)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, [&b"ids#%0"[..], b"mask#%0", b"w#%0"]);
}

#[test]
fn checkpoint_writes_a_leveldb_every_n_iterations_that_load_reads() {
    let dir = temp("checkpoint");
    std::fs::create_dir_all(&dir).unwrap();
    let ws = Workspace::with_root(&dir);
    feed(&ws, "w", float_2x3(1.0));
    for it in 0..4i64 {
        feed(
            &ws,
            "iter",
            Tensor::from_slice(DataType::Int64, &[1], &[it]).unwrap(),
        );
        ws.run_operator_once(&op(
            "Checkpoint",
            &["iter", "w"],
            &[],
            vec![
                arg_s("db", "ckpt_%02d"),
                arg_s("db_type", "leveldb"),
                arg_i("every", 2),
            ],
        ))
        .unwrap();
    }
    let mut dirs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["ckpt_00", "ckpt_02"]);
    let fresh = Workspace::with_root(&dir);
    fresh
        .run_operator_once(&op(
            "Load",
            &[],
            &["iter", "w"],
            vec![arg_s("db", "ckpt_02"), arg_s("db_type", "leveldb")],
        ))
        .unwrap();
    assert_eq!(fetch(&fresh, "iter").typed::<i64>().unwrap(), &[2]);
    assert_eq!(
        fetch(&fresh, "w").typed::<f32>().unwrap(),
        fetch(&ws, "w").typed::<f32>().unwrap()
    );
}

/// Runs this test binary again as a child running only `test`, with `env` set; returns its
/// exit status and output. The child's crash fails the parent's test, not the runner.
fn run_child(test: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the test binary as a child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const LOCK_CHILD: &str = "C2RS_LEVELDB_LOCK_CHILD";

// One process per database: a second process cannot open a LevelDB this one holds, and can
// once it is closed.
#[test]
fn a_second_process_is_locked_out_while_the_db_is_open() {
    if let Ok(path) = std::env::var(LOCK_CHILD) {
        match open_db("leveldb", &path, Mode::Read) {
            Ok(_) => println!("CHILD-OPENED"),
            Err(e) => println!("CHILD-ERROR {:?} {}", e.kind(), e.message()),
        }
        return;
    }
    let path = ten_rows("lock");
    let name = "a_second_process_is_locked_out_while_the_db_is_open";
    let db = open_db("leveldb", &path, Mode::Read).unwrap();
    let (ok, text) = run_child(name, &[(LOCK_CHILD, &path)]);
    assert!(ok, "{text}");
    assert!(text.contains("CHILD-ERROR Io"), "{text}");
    drop(db);
    let (ok, text) = run_child(name, &[(LOCK_CHILD, &path)]);
    assert!(ok && text.contains("CHILD-OPENED"), "{text}");
}

const DAMAGE_CHILD: &str = "C2RS_LEVELDB_DAMAGE_CHILD";
/// Panics seen by the child's hook (the owner thread catches them, the hook still counts).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// What a damaged copy of `base` may answer: an error status of these kinds, or exactly the
/// records of one of `allowed` (a damage the format cannot see, e.g. footer padding, or a
/// log cut at a record boundary).
struct Damage<'a> {
    base: &'a str,
    allowed: &'a [Records],
}

#[derive(Default)]
struct Tally {
    cases: usize,
    errors: usize,
    intact: usize,
}

impl Damage<'_> {
    /// Copies `base`, lets `damage` change the copy, opens it in `mode` and reads it all.
    fn check(&self, tally: &mut Tally, what: &str, mode: Mode, damage: impl FnOnce(&str)) {
        let dir = copy_db(self.base, "damaged");
        damage(&dir);
        tally.cases += 1;
        let first = read_all("leveldb", &dir, mode);
        match first {
            Ok(records) => {
                assert!(
                    self.allowed.contains(&records),
                    "{what}: read {} records that are not the database's",
                    records.len()
                );
                tally.intact += 1;
                println!("INTACT: {what}");
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Parse | ErrorKind::Io | ErrorKind::NotFound
                    ),
                    "{what}: {:?} {}",
                    e.kind(),
                    e.message()
                );
                assert!(e.message().contains(&dir), "{what}: {}", e.message());
                tally.errors += 1;
            }
        }
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "{what}: the crate panicked"
        );
    }

    /// Every `stride`-th byte of `file` flipped, one at a time.
    fn flips(&self, tally: &mut Tally, file: &str, mode: Mode, stride: usize) {
        let len = std::fs::read(format!("{}/{file}", self.base))
            .unwrap()
            .len();
        for i in (0..len).step_by(stride) {
            self.check(tally, &format!("{file} byte {i} flipped"), mode, |dir| {
                let p = format!("{dir}/{file}");
                let mut b = std::fs::read(&p).unwrap();
                b[i] ^= 0x41;
                std::fs::write(&p, b).unwrap();
            });
        }
    }

    /// `file` cut at every `stride`-th length and at each of its last 64.
    fn truncations(&self, tally: &mut Tally, file: &str, mode: Mode, stride: usize) {
        let len = std::fs::read(format!("{}/{file}", self.base))
            .unwrap()
            .len();
        let tail = len.saturating_sub(64)..len;
        for n in (0..len).filter(|n| n % stride == 0 || tail.contains(n)) {
            self.check(tally, &format!("{file} cut to {n} bytes"), mode, |dir| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(format!("{dir}/{file}"))
                    .unwrap();
                f.set_len(n as u64).unwrap();
            });
        }
    }

    fn removed(&self, tally: &mut Tally, file: &str, mode: Mode) {
        self.check(tally, &format!("{file} removed"), mode, |dir| {
            std::fs::remove_file(format!("{dir}/{file}")).unwrap();
        });
    }
}

/// A copy of the database files in `base` (opening a LevelDB rewrites its directory: the log
/// becomes a table, a new MANIFEST is written).
fn copy_db(base: &str, name: &str) -> String {
    let dir = temp(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(base).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(
                e.path(),
                format!("{dir}/{}", e.file_name().to_string_lossy()),
            )
            .unwrap();
        }
    }
    dir
}

fn file_named(dir: &str, pred: impl Fn(&str) -> bool) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| pred(n))
        .unwrap_or_else(|| panic!("no such file in {dir}"))
}

fn damage_child() {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("PANIC: {info}");
    }));
    let mut tally = Tally::default();

    // Google's LevelDB 1.22 with Snappy: one table, an empty log, MANIFEST, CURRENT.
    let golden = golden_leveldb_copy("records.leveldb", "damage-base");
    let golden_records = read_all(
        "leveldb",
        &copy_db(&golden, "damage-golden-read"),
        Mode::Read,
    )
    .unwrap();
    assert_eq!(golden_records.len(), 10);
    let g = Damage {
        base: &golden,
        allowed: std::slice::from_ref(&golden_records),
    };
    let table = file_named(&golden, |n| n.ends_with(".ldb"));
    let manifest = file_named(&golden, |n| n.starts_with("MANIFEST-"));
    g.flips(&mut tally, &table, Mode::Read, 1);
    g.truncations(&mut tally, &table, Mode::Read, 5);
    g.flips(&mut tally, &manifest, Mode::Read, 1);
    g.truncations(&mut tally, &manifest, Mode::Write, 1);
    g.flips(&mut tally, "CURRENT", Mode::Read, 1);
    g.truncations(&mut tally, "CURRENT", Mode::Read, 1);
    g.removed(&mut tally, "CURRENT", Mode::Read);
    g.removed(&mut tally, "CURRENT", Mode::Write);
    g.removed(&mut tally, &table, Mode::Read);

    // Ours: a table (the first batch, moved out of the log by a reopen) and a log holding
    // two more batches.
    let ours = temp("damage-ours");
    let first: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .map(|i| (format!("k{i}").into_bytes(), vec![i as u8; 100 + i]))
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = first.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    write_db(&ours, &pairs);
    let db = open_db("leveldb", &ours, Mode::Write).unwrap();
    for batch in [5..8, 8..10] {
        let mut t = db.new_transaction().unwrap();
        for i in batch {
            t.put(format!("k{i}").as_bytes(), &vec![i as u8; 100 + i])
                .unwrap();
        }
        t.commit().unwrap();
    }
    drop(db);
    let all = read_all("leveldb", &copy_db(&ours, "damage-ours-read"), Mode::Read).unwrap();
    assert_eq!(all.len(), 10);
    // A log cut at a record boundary is a shorter, valid log.
    let allowed = [all[..5].to_vec(), all[..8].to_vec(), all.clone()];
    let o = Damage {
        base: &ours,
        allowed: &allowed,
    };
    let log = file_named(&ours, |n| n.ends_with(".log") && n != "LOG");
    let table = file_named(&ours, |n| n.ends_with(".ldb"));
    let manifest = file_named(&ours, |n| n.starts_with("MANIFEST-"));
    o.flips(&mut tally, &log, Mode::Read, 3);
    o.flips(&mut tally, &log, Mode::Write, 7);
    o.truncations(&mut tally, &log, Mode::Read, 3);
    o.flips(&mut tally, &table, Mode::Read, 1);
    o.flips(&mut tally, &manifest, Mode::Write, 1);
    o.removed(&mut tally, &table, Mode::Write);

    println!(
        "DAMAGE-TALLY cases={} errors={} intact={} panics={}",
        tally.cases,
        tally.errors,
        tally.intact,
        PANICS.load(Ordering::SeqCst)
    );
}

#[test]
fn damaged_files_get_a_status_never_a_crash_nor_other_records() {
    if std::env::var(DAMAGE_CHILD).is_ok() {
        damage_child();
        return;
    }
    let (ok, text) = run_child(
        "damaged_files_get_a_status_never_a_crash_nor_other_records",
        &[(DAMAGE_CHILD, "1")],
    );
    let tally = text
        .lines()
        .find(|l| l.starts_with("DAMAGE-TALLY"))
        .unwrap_or_else(|| panic!("the child crashed or failed:\n{text}"));
    assert!(ok, "{text}");
    let field = |name: &str| -> usize {
        tally
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{tally}"))
    };
    assert_eq!(field("panics"), 0, "{tally}");
    assert!(field("cases") > 2000, "{tally}");
    // Nearly every damage is seen; the rest read back exactly.
    assert!(field("errors") * 10 > field("cases") * 9, "{tally}");
    assert_eq!(field("errors") + field("intact"), field("cases"), "{tally}");
}

#[test]
fn keys_and_values_with_any_bytes_round_trip() {
    let path = temp("bytes");
    let mut want = BTreeMap::new();
    for i in 0..300u32 {
        let key: Vec<u8> = i
            .to_be_bytes()
            .iter()
            .chain(&[0u8, 0xff])
            .copied()
            .collect();
        let value: Vec<u8> = (0..i).map(|j| (j * 7 + i) as u8).collect();
        want.insert(key, value);
    }
    let pairs: Vec<(&[u8], &[u8])> = want.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    write_db(&path, &pairs);
    let got = read_all("leveldb", &path, Mode::Read).unwrap();
    assert_eq!(got, want.into_iter().collect::<Records>());
}
