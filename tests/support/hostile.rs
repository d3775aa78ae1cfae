//! The hostile reproducers under tests/data/hostile (format in its README.md): which files
//! there are, every path the README reads each folder through, running one path over one file
//! through the C ABI, and what a fixed library must answer.
//!
//! A file this module cannot classify is an error, not a skip: a new folder or file kind
//! needs a route here before the suite passes again.
//!
//! Every fuzz target has a folder of its name (`FUZZ_TARGETS`, the targets of
//! scripts/fuzz.sh), holding inputs in that target's format (fuzz/README.md): a fuzz artifact
//! copied there is a regression case. Each such file is replayed through its target's
//! harness (`ReadPath::FuzzTarget`, run by `tests/hostile_replay.rs`, which includes the
//! harness sources), and the files of the folders the hostile README describes also through
//! the library paths that README lists.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use caffe2rs::ffi::buffer::c2rs_buffer_free;
use caffe2rs::ffi::db::{
    c2rs_db_cursor_free, c2rs_db_cursor_key, c2rs_db_cursor_new, c2rs_db_cursor_next,
    c2rs_db_cursor_seek, c2rs_db_cursor_seek_to_first, c2rs_db_cursor_valid, c2rs_db_cursor_value,
    c2rs_db_free, c2rs_db_open, c2rs_db_reader_free, c2rs_db_reader_new, c2rs_db_reader_read,
};
use caffe2rs::ffi::status::*;
use caffe2rs::ffi::tensor::{
    c2rs_tensor_free, c2rs_tensor_from_proto, c2rs_tensor_list_free, c2rs_tensor_protos_decode,
};
use caffe2rs::ffi::version::c2rs_last_error_message;
use caffe2rs::ffi::workspace::{
    c2rs_workspace_free, c2rs_workspace_new, c2rs_workspace_run_operator_once,
};
use caffe2rs::proto::{Argument, OperatorDef};
use prost::Message;

use super::{arg_i, arg_s, op};

/// The folder of the reproducers.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile")
}

/// The fuzz targets (scripts/fuzz.sh `TARGETS`, `caffe2rs_fuzz::TARGETS`): each has a folder
/// of reproducers in its input format.
pub const FUZZ_TARGETS: [&str; 10] = [
    "tensor_proto",
    "minidb_format",
    "lmdb_format",
    "leveldb_format",
    "memonger",
    "db_minidb",
    "db_lmdb",
    "db_leveldb",
    "operator",
    "plan",
];

/// How a reproducer's bytes are read (README table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Raw TensorProto bytes.
    TensorProto,
    /// A DB file (minidb) or an LMDB `data.mdb`; `flagged`: byte 0 holds the flags and the
    /// DB starts at byte 1; otherwise the whole file is the DB, read with batch_size 1 and
    /// one output.
    Db {
        db_type: &'static str,
        flagged: bool,
    },
    /// An input of fuzz target `target` in a folder the hostile README does not describe:
    /// read only through that target's harness.
    Fuzz { target: &'static str },
}

/// One path of the README's "how it is read" column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPath {
    TensorFromProto,
    TensorProtosDecode,
    /// `c2rs_db_reader_new` + `c2rs_db_reader_read` (past the end, so it wraps).
    DbReader,
    /// `c2rs_db_open` + cursor: seek_to_first, valid, key, value, next to the end, seek.
    DbCursor,
    /// `CreateDB` + `TensorProtosDBInput` (run three times).
    TensorProtosDbInput,
    /// `Load` with `load_all = 1`.
    LoadAll,
    /// The harness of the fuzz target whose folder holds the file (`caffe2rs_fuzz::
    /// run_target`), with its verdicts: a finding aborts.
    FuzzTarget,
}

impl ReadPath {
    pub const ALL: [ReadPath; 7] = [
        ReadPath::TensorFromProto,
        ReadPath::TensorProtosDecode,
        ReadPath::DbReader,
        ReadPath::DbCursor,
        ReadPath::TensorProtosDbInput,
        ReadPath::LoadAll,
        ReadPath::FuzzTarget,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReadPath::TensorFromProto => "tensor_from_proto",
            ReadPath::TensorProtosDecode => "tensor_protos_decode",
            ReadPath::DbReader => "db_reader",
            ReadPath::DbCursor => "db_cursor",
            ReadPath::TensorProtosDbInput => "tensor_protos_db_input",
            ReadPath::LoadAll => "load_all",
            ReadPath::FuzzTarget => "fuzz_target",
        }
    }

    pub fn from_name(name: &str) -> Option<ReadPath> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl Format {
    /// Every library path the README lists for this format (not the fuzz harness: see
    /// `Reproducer::paths`).
    pub fn paths(self) -> &'static [ReadPath] {
        match self {
            Format::Fuzz { .. } => &[],
            Format::TensorProto => &[ReadPath::TensorFromProto, ReadPath::TensorProtosDecode],
            Format::Db { .. } => &[
                ReadPath::DbReader,
                ReadPath::DbCursor,
                ReadPath::TensorProtosDbInput,
                ReadPath::LoadAll,
            ],
        }
    }
}

/// One reproducer: its path relative to `root()` and how it is read.
#[derive(Clone, Debug)]
pub struct Reproducer {
    pub rel: String,
    pub format: Format,
    /// The fuzz target whose harness replays it (its folder's name); None in `files/`.
    pub target: Option<&'static str>,
}

impl Reproducer {
    /// Every path it is read through: its format's, then its fuzz target's harness.
    pub fn paths(&self) -> Vec<ReadPath> {
        let mut paths = self.format.paths().to_vec();
        if self.target.is_some() {
            paths.push(ReadPath::FuzzTarget);
        }
        paths
    }

    pub fn path(&self) -> PathBuf {
        root().join(&self.rel)
    }

    pub fn is_lmdb(&self) -> bool {
        matches!(
            self.format,
            Format::Db {
                db_type: "lmdb",
                ..
            }
        )
    }

    /// The reproducer with relative path `rel`, classified as `reproducers` does.
    pub fn find(rel: &str) -> Reproducer {
        reproducers()
            .into_iter()
            .find(|r| r.rel == rel)
            .unwrap_or_else(|| panic!("no reproducer {rel}"))
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    entries
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .expect("entry name")
        .to_string_lossy()
        .into_owned()
}

/// Every reproducer under `root()`, sorted. Panics, naming the entry, on anything it cannot
/// classify (a new folder, a directory where files belong, an unknown kind of file).
pub fn reproducers() -> Vec<Reproducer> {
    let mut out = Vec::new();
    for top in sorted_entries(&root()) {
        let top_name = file_name(&top);
        if top.is_file() && top_name == "README.md" {
            continue;
        }
        let target = FUZZ_TARGETS.into_iter().find(|t| *t == top_name);
        let flat = |format: Format, out: &mut Vec<Reproducer>| {
            for f in sorted_entries(&top) {
                assert!(
                    f.is_file(),
                    "hostile/{top_name}/{} is not a file; cannot classify it",
                    file_name(&f)
                );
                out.push(Reproducer {
                    rel: format!("{top_name}/{}", file_name(&f)),
                    format,
                    target,
                });
            }
        };
        match top_name.as_str() {
            "tensor_proto" => flat(Format::TensorProto, &mut out),
            "db_minidb" => flat(
                Format::Db {
                    db_type: "minidb",
                    flagged: true,
                },
                &mut out,
            ),
            "db_lmdb" => flat(
                Format::Db {
                    db_type: "lmdb",
                    flagged: true,
                },
                &mut out,
            ),
            "files" => {
                for f in sorted_entries(&top) {
                    let name = file_name(&f);
                    let format = if f.is_dir()
                        && sorted_entries(&f)
                            .iter()
                            .map(|p| file_name(p))
                            .collect::<Vec<_>>()
                            == ["data.mdb"]
                    {
                        Format::Db {
                            db_type: "lmdb",
                            flagged: false,
                        }
                    } else if f.is_file() && name.ends_with(".minidb") {
                        Format::Db {
                            db_type: "minidb",
                            flagged: false,
                        }
                    } else {
                        panic!(
                            "hostile/files/{name} is neither a minidb file (*.minidb) nor an \
                             LMDB directory holding only data.mdb; cannot classify it"
                        );
                    };
                    out.push(Reproducer {
                        rel: format!("files/{name}"),
                        format,
                        target: None,
                    });
                }
            }
            _ if top.is_dir() && target.is_some() => {
                let target = target.unwrap_or_default();
                flat(Format::Fuzz { target }, &mut out);
            }
            other => panic!(
                "hostile/{other} is neither a folder the hostile README describes nor one named \
                 after a fuzz target ({}); cannot classify it",
                FUZZ_TARGETS.join(", ")
            ),
        }
    }
    out
}

/// The DB settings byte 0 selects (README): batch_size, outputs, prefetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbSettings {
    pub batch_size: i64,
    pub outputs: usize,
    pub prefetch_depth: Option<i64>,
    pub no_prefetch: bool,
}

impl DbSettings {
    pub fn from_flags(flags: u8) -> Self {
        Self {
            batch_size: [1, 2, 3, 7][usize::from(flags & 3)],
            outputs: usize::from((flags >> 2) & 3) + 1,
            prefetch_depth: (flags & 0x10 != 0).then_some(2),
            no_prefetch: flags & 0x20 != 0,
        }
    }

    /// Plain files: batch_size 1, one output, default prefetch.
    pub const PLAIN: DbSettings = DbSettings {
        batch_size: 1,
        outputs: 1,
        prefetch_depth: None,
        no_prefetch: false,
    };
}

/// What one call sequence answered: the first status that was not OK (or OK) and its
/// message; `seek` is the cursor's seek status (DbCursor only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: i32,
    pub message: String,
    pub seek: Option<i32>,
}

fn last_message() -> String {
    // SAFETY: the library's thread-local message, read before any other call on this thread.
    unsafe { CStr::from_ptr(c2rs_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn answer(status: i32) -> Answer {
    Answer {
        status,
        message: if status == C2RS_OK {
            String::new()
        } else {
            last_message()
        },
        seek: None,
    }
}

/// A scratch directory for one case, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Self {
        let safe: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let dir = std::env::temp_dir().join(format!("c2rs-hostile-{}-{safe}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the DB a reproducer holds into `scratch`: its source path and settings.
pub fn materialize_db(rep: &Reproducer, scratch: &Scratch) -> (&'static str, String, DbSettings) {
    let Format::Db { db_type, flagged } = rep.format else {
        panic!("{} is not a DB reproducer", rep.rel);
    };
    let (bytes, settings) = if rep.path().is_dir() {
        let bytes = std::fs::read(rep.path().join("data.mdb")).expect("read data.mdb");
        (bytes, DbSettings::PLAIN)
    } else {
        let bytes = std::fs::read(rep.path()).expect("read reproducer");
        if flagged {
            let flags = *bytes.first().expect("flagged reproducer has a flags byte");
            (bytes[1..].to_vec(), DbSettings::from_flags(flags))
        } else {
            (bytes, DbSettings::PLAIN)
        }
    };
    let source = match db_type {
        "lmdb" => {
            let dir = scratch.path().join("lmdb");
            std::fs::create_dir_all(&dir).expect("lmdb dir");
            std::fs::write(dir.join("data.mdb"), &bytes).expect("write data.mdb");
            dir
        }
        _ => {
            let file = scratch.path().join("db.minidb");
            std::fs::write(&file, &bytes).expect("write minidb");
            file
        }
    };
    (db_type, source.to_string_lossy().into_owned(), settings)
}

/// Runs `path` over `bytes` of a TensorProto reproducer.
pub fn run_tensor_path(path: ReadPath, bytes: &[u8]) -> Answer {
    match path {
        ReadPath::TensorFromProto => {
            let mut t = null_mut();
            let st = c2rs_tensor_from_proto(bytes.as_ptr(), bytes.len(), &mut t);
            let a = answer(st);
            c2rs_tensor_free(t);
            a
        }
        ReadPath::TensorProtosDecode => {
            let mut list = null_mut();
            let st = c2rs_tensor_protos_decode(bytes.as_ptr(), bytes.len(), &mut list);
            let a = answer(st);
            c2rs_tensor_list_free(list);
            a
        }
        other => panic!("{} is not a TensorProto path", other.name()),
    }
}

fn run_op(ws: *mut caffe2rs::ffi::handle::c2rs_workspace, def: &OperatorDef) -> i32 {
    let bytes = def.encode_to_vec();
    c2rs_workspace_run_operator_once(ws, bytes.as_ptr(), bytes.len())
}

/// The DB operators' arguments for `settings`.
fn input_args(settings: &DbSettings) -> Vec<Argument> {
    let mut args = vec![arg_i("batch_size", settings.batch_size)];
    if let Some(d) = settings.prefetch_depth {
        args.push(arg_i("prefetch_depth", d));
    }
    if settings.no_prefetch {
        args.push(arg_i("no_prefetch", 1));
    }
    args
}

/// Runs `path` over the DB at `source`.
pub fn run_db_path(path: ReadPath, db_type: &str, source: &str, settings: DbSettings) -> Answer {
    let ty = CString::new(db_type).expect("type");
    let src = CString::new(source).expect("source");
    match path {
        ReadPath::DbReader => {
            let mut reader = null_mut();
            let st = c2rs_db_reader_new(ty.as_ptr(), src.as_ptr(), 1, 0, &mut reader);
            if st != C2RS_OK {
                return answer(st);
            }
            // Past the end of any small DB: the reader wraps around.
            let mut result = answer(C2RS_OK);
            for _ in 0..16 {
                let (mut k, mut v) = (null_mut(), null_mut());
                let st = c2rs_db_reader_read(reader, &mut k, &mut v);
                if st != C2RS_OK {
                    result = answer(st);
                    break;
                }
                c2rs_buffer_free(k);
                c2rs_buffer_free(v);
            }
            c2rs_db_reader_free(reader);
            result
        }
        ReadPath::DbCursor => {
            let mut db = null_mut();
            let st = c2rs_db_open(ty.as_ptr(), src.as_ptr(), 0, &mut db);
            if st != C2RS_OK {
                return answer(st);
            }
            let mut cursor = null_mut();
            let st = c2rs_db_cursor_new(db, &mut cursor);
            if st != C2RS_OK {
                let a = answer(st);
                c2rs_db_free(db);
                return a;
            }
            let mut result = cursor_walk(cursor);
            let key = b"0";
            result.seek = Some(c2rs_db_cursor_seek(cursor, key.as_ptr(), key.len()));
            c2rs_db_cursor_free(cursor);
            c2rs_db_free(db);
            result
        }
        ReadPath::TensorProtosDbInput => {
            let mut ws = null_mut();
            assert_eq!(c2rs_workspace_new(null_mut(), &mut ws), C2RS_OK);
            let create = op(
                "CreateDB",
                &[],
                &["reader"],
                vec![arg_s("db_type", db_type), arg_s("db", source)],
            );
            let mut result = answer(run_op(ws, &create));
            if result.status == C2RS_OK {
                let outputs: Vec<String> = (0..settings.outputs).map(|i| format!("o{i}")).collect();
                let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
                let input = op(
                    "TensorProtosDBInput",
                    &["reader"],
                    &outputs,
                    input_args(&settings),
                );
                for _ in 0..3 {
                    result = answer(run_op(ws, &input));
                    if result.status != C2RS_OK {
                        break;
                    }
                }
            }
            c2rs_workspace_free(ws);
            result
        }
        ReadPath::LoadAll => {
            let mut ws = null_mut();
            assert_eq!(c2rs_workspace_new(null_mut(), &mut ws), C2RS_OK);
            let load = op(
                "Load",
                &[],
                &[],
                vec![
                    arg_s("db", source),
                    arg_s("db_type", db_type),
                    arg_i("absolute_path", 1),
                    arg_i("load_all", 1),
                ],
            );
            let result = answer(run_op(ws, &load));
            c2rs_workspace_free(ws);
            result
        }
        other => panic!("{} is not a DB path", other.name()),
    }
}

/// seek_to_first, then valid/key/value/next to the end (at most 100 000 records).
fn cursor_walk(cursor: *mut caffe2rs::ffi::handle::c2rs_db_cursor) -> Answer {
    let st = c2rs_db_cursor_seek_to_first(cursor);
    if st != C2RS_OK {
        return answer(st);
    }
    for _ in 0..100_000 {
        let mut valid = false;
        let st = c2rs_db_cursor_valid(cursor, &mut valid);
        if st != C2RS_OK {
            return answer(st);
        }
        if !valid {
            return answer(C2RS_OK);
        }
        let (mut p, mut n) = (null(), 0usize);
        let st = c2rs_db_cursor_key(cursor, &mut p, &mut n);
        if st != C2RS_OK {
            return answer(st);
        }
        let st = c2rs_db_cursor_value(cursor, &mut p, &mut n);
        if st != C2RS_OK {
            return answer(st);
        }
        let st = c2rs_db_cursor_next(cursor);
        if st != C2RS_OK {
            return answer(st);
        }
    }
    Answer {
        status: C2RS_INTERNAL,
        message: "cursor did not end within 100000 records".into(),
        seek: None,
    }
}

/// Runs `path` over reproducer `rep` (DB reproducers are written to a scratch directory).
pub fn run_reproducer(rep: &Reproducer, path: ReadPath) -> Answer {
    match rep.format {
        Format::TensorProto => {
            let bytes = std::fs::read(rep.path()).expect("read reproducer");
            run_tensor_path(path, &bytes)
        }
        Format::Db { .. } => {
            let scratch = Scratch::new(&format!("{}-{}", rep.rel, path.name()));
            let (db_type, source, settings) = materialize_db(rep, &scratch);
            run_db_path(path, db_type, &source, settings)
        }
        Format::Fuzz { target } => {
            panic!(
                "{} ({target}) is read only through its fuzz harness",
                rep.rel
            )
        }
    }
}

/// Statuses known reproducers must give, by (file name prefix, path): the status and a
/// substring of the message. Reproducers not listed get the general rule of `check`.
const EXPECTED: &[(&str, ReadPath, i32, &str)] = &[
    // Damaged LMDB files: caffe2rs's own reader names data.mdb and the fault (liblmdb crashed).
    (
        "db_lmdb/crash-",
        ReadPath::DbCursor,
        C2RS_PARSE_ERROR,
        "data.mdb",
    ),
    (
        "db_lmdb/crash-",
        ReadPath::DbReader,
        C2RS_PARSE_ERROR,
        "data.mdb",
    ),
    (
        "files/lmdb_",
        ReadPath::DbCursor,
        C2RS_PARSE_ERROR,
        "data.mdb",
    ),
    (
        "tensor_proto/crash-070c",
        ReadPath::TensorFromProto,
        C2RS_PARSE_ERROR,
        "are not in the input",
    ),
    (
        "tensor_proto/crash-070c",
        ReadPath::TensorProtosDecode,
        C2RS_PARSE_ERROR,
        "not a valid TensorProtos",
    ),
    (
        "tensor_proto/oom-a5d2",
        ReadPath::TensorFromProto,
        C2RS_PARSE_ERROR,
        "are not in the input",
    ),
    (
        "tensor_proto/oom-a5d2",
        ReadPath::TensorProtosDecode,
        C2RS_PARSE_ERROR,
        "Incorrect proto field size",
    ),
    (
        "db_minidb/oom-3ba2",
        ReadPath::TensorProtosDbInput,
        C2RS_PARSE_ERROR,
        "TensorProtosDBInput: record",
    ),
    (
        "files/tpdb_string_dims_2e32.minidb",
        ReadPath::TensorProtosDbInput,
        C2RS_PARSE_ERROR,
        "Incorrect proto field size",
    ),
    (
        "files/tpdb_string_dims_2e32.minidb",
        ReadPath::LoadAll,
        C2RS_ENFORCE_NOT_MET,
        "No registered deserializer for type",
    ),
];

/// Whether `got` is an acceptable answer of `path` over `rep`: the exact status and message
/// part listed in `EXPECTED`, else the general rule: never C2RS_PANIC or C2RS_INTERNAL (no
/// caller argument here asks for much memory), and a failure carries a message naming the
/// function. Returns what is wrong.
pub fn check(rep: &Reproducer, path: ReadPath, got: &Answer) -> Result<(), String> {
    let what = format!("{} via {}", rep.rel, path.name());
    if let Some(&(_, _, status, part)) = EXPECTED
        .iter()
        .find(|(prefix, p, _, _)| rep.rel.starts_with(prefix) && *p == path)
    {
        if got.status != status || !got.message.contains(part) {
            return Err(format!(
                "{what}: expected status {status} with \"{part}\", got {got:?}"
            ));
        }
    }
    if got.status == C2RS_PANIC || got.status == C2RS_INTERNAL {
        return Err(format!("{what}: status {} ({got:?})", got.status));
    }
    if got.status != C2RS_OK && !got.message.starts_with("c2rs_") {
        return Err(format!(
            "{what}: a failure without a message naming the function: {got:?}"
        ));
    }
    if let (Some(seek), Format::Db { db_type, .. }) = (got.seek, rep.format) {
        let fine = match db_type {
            "minidb" => seek == C2RS_UNSUPPORTED,
            _ => seek != C2RS_PANIC && seek != C2RS_INTERNAL,
        };
        if !fine {
            return Err(format!("{what}: cursor seek gave status {seek}"));
        }
    }
    Ok(())
}

/// Every known reproducer has its `EXPECTED` entries' prefixes matching an existing file (a
/// renamed reproducer must not silently lose its expectation).
pub fn expected_prefixes_exist(reps: &[Reproducer]) -> Result<(), String> {
    for (prefix, path, _, _) in EXPECTED {
        let Some(rep) = reps.iter().find(|r| r.rel.starts_with(prefix)) else {
            return Err(format!("no reproducer matches expectation prefix {prefix}"));
        };
        if !rep.paths().contains(path) {
            return Err(format!("{prefix} is not read through {}", path.name()));
        }
    }
    Ok(())
}
