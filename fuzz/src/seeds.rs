//! Seed corpora for every target, generated at run time (scripts/fuzz.sh runs `seedgen`) from
//! the repository's golden files and hostile reproducers, plus valid OperatorDefs of every
//! registered operator and a libFuzzer dictionary of operator, argument and blob names.

use std::ffi::CStr;
use std::path::Path;
use std::ptr;

use caffe2rs::ffi::buffer::{c2rs_string_list_free, c2rs_string_list_get, c2rs_string_list_len};
use caffe2rs::ffi::operator::c2rs_registered_operators;
use caffe2rs::proto::{ExecutionStep, NetDef, OperatorDef, PlanDef, TensorShapes};
use prost::Message;

use crate::defs::{bytes, float, floats, int, ints, op, string, strings};
use crate::memonger;

/// A named seed.
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn seed(name: impl Into<String>, bytes: Vec<u8>) -> Seed {
    Seed {
        name: name.into(),
        bytes,
    }
}

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Files of `dir` (sorted, regular files only), or nothing when `dir` is missing.
fn files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    Ok(out)
}

fn stem(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The values of a minidb file (`int32 key_len, int32 value_len, key, value` per record).
pub fn minidb_values(file: &[u8]) -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    let mut rest = file;
    while let Some((head, tail)) = rest.split_first_chunk::<8>() {
        let klen = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let vlen = i32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let (Ok(klen), Ok(vlen)) = (usize::try_from(klen), usize::try_from(vlen)) else {
            break;
        };
        let Some(record) = tail.get(..klen.saturating_add(vlen)) else {
            break;
        };
        values.push(record[klen..].to_vec());
        rest = &tail[klen + vlen..];
    }
    values
}

/// `tensor_proto`: every golden TensorProto, the golden TensorProtos, the records of the
/// golden minidb (TensorProtos).
pub fn tensor_proto(repo: &Path) -> std::io::Result<Vec<Seed>> {
    let golden = repo.join("tests/data/golden");
    let mut out = Vec::new();
    for path in files(&golden.join("tensors"))? {
        if path.extension().is_some_and(|e| e == "pb") {
            out.push(seed(format!("golden-{}", stem(&path)), read(&path)?));
        }
    }
    let records = read(&golden.join("db/records.minidb"))?;
    for (i, value) in minidb_values(&records).into_iter().enumerate().take(3) {
        out.push(seed(format!("golden-record-{i}"), value));
    }
    Ok(out)
}

/// `memonger`: the golden memonger nets (with their shapes) and model-zoo NetDefs (without),
/// each cut to its first 12, 40 and 100 operators. Whole golden nets take seconds per run
/// under the sanitizer; nets of this size take milliseconds, so mutation explores faster.
pub fn memonger(repo: &Path) -> std::io::Result<Vec<Seed>> {
    let golden = repo.join("tests/data/golden");
    let mut out = Vec::new();
    for path in files(&golden.join("memonger"))? {
        let name = stem(&path);
        let Some(base) = name.strip_suffix(".pb").filter(|b| !b.ends_with(".shapes")) else {
            continue;
        };
        let net = read(&path)?;
        let shapes = read(&golden.join(format!("memonger/{base}.shapes.pb")))?;
        for (ops, flags) in MEMONGER_CUTS {
            if let Some((net, shapes)) = cut_net(&net, &shapes, ops) {
                out.push(seed(
                    format!("golden-{base}-{ops}ops"),
                    memonger::join(flags, &net, &shapes),
                ));
            }
        }
    }
    for path in files(&golden.join("netdefs"))? {
        if path.extension().is_some_and(|e| e == "pb") {
            let net = read(&path)?;
            for (ops, flags) in MEMONGER_CUTS {
                if let Some((net, _)) = cut_net(&net, &[], ops) {
                    out.push(seed(
                        format!("golden-{}-{ops}ops", stem(&path)),
                        memonger::join(flags ^ 0x80, &net, &[]),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// (operators kept, flags byte) of the memonger seeds.
const MEMONGER_CUTS: [(usize, u8); 3] = [(12, 0x3d), (40, 0x00), (100, 0x16)];

/// `net` cut to its first `ops` operators (external inputs and outputs kept) and `shapes`
/// cut to the blobs the cut net names; `None` when `net` does not decode or the cut would
/// repeat an earlier one (the net has fewer ops than the previous cut).
fn cut_net(net: &[u8], shapes: &[u8], ops: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut def = NetDef::decode(net).ok()?;
    let previous = MEMONGER_CUTS
        .iter()
        .map(|&(n, _)| n)
        .filter(|&n| n < ops)
        .max()
        .unwrap_or(0);
    if def.op.len() <= previous {
        return None;
    }
    def.op.truncate(ops);
    let names: std::collections::HashSet<&str> = def
        .op
        .iter()
        .flat_map(|op| op.input.iter().chain(&op.output))
        .chain(def.external_input.iter().chain(&def.external_output))
        .map(String::as_str)
        .collect();
    let mut kept = TensorShapes::decode(shapes).ok()?;
    kept.shapes.retain(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| std::str::from_utf8(n).is_ok_and(|n| names.contains(n)))
    });
    let shapes = if shapes.is_empty() {
        Vec::new()
    } else {
        bytes(&kept)
    };
    Some((bytes(&def), shapes))
}

/// Flag bytes the DB seeds are paired with: batch sizes 1, 2, 3, 7, one to four outputs,
/// prefetch depth 2 and no prefetch (see [`crate::db::Flags`]).
const DB_FLAGS: [u8; 4] = [0x00, 0x05, 0x1e, 0x23];

fn with_flags(flags: u8, file: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(file.len() + 1);
    v.push(flags);
    v.extend_from_slice(file);
    v
}

/// `db_minidb`: the golden minidb files with each flag byte, and (`hostile`) the minidb file
/// of `tests/data/hostile/files/` with flags 0.
pub fn db_minidb(repo: &Path, hostile: bool) -> std::io::Result<Vec<Seed>> {
    let golden = repo.join("tests/data/golden/db");
    let records = read(&golden.join("records.minidb"))?;
    let mut out: Vec<Seed> = DB_FLAGS
        .iter()
        .map(|&f| seed(format!("golden-records-{f:02x}"), with_flags(f, &records)))
        .collect();
    out.push(seed(
        "golden-checkpoint",
        with_flags(0, &read(&golden.join("checkpoint.minidb"))?),
    ));
    if hostile {
        let dir = repo.join("tests/data/hostile");
        let file = dir.join("files/tpdb_string_dims_2e32.minidb");
        if file.is_file() {
            out.push(seed(
                "hostile-tpdb_string_dims_2e32",
                with_flags(0, &read(&file)?),
            ));
        }
    }
    Ok(out)
}

/// `db_lmdb`: the golden `data.mdb` with each flag byte, and (`hostile`) the LMDB files of
/// `tests/data/hostile/files/` with flags 0.
pub fn db_lmdb(repo: &Path, hostile: bool) -> std::io::Result<Vec<Seed>> {
    let golden = read(&repo.join("tests/data/golden/db/records.lmdb/data.mdb"))?;
    let mut out: Vec<Seed> = DB_FLAGS
        .iter()
        .map(|&f| seed(format!("golden-records-{f:02x}"), with_flags(f, &golden)))
        .collect();
    if hostile {
        let dir = repo.join("tests/data/hostile");
        for name in ["lmdb_truncated_8192", "lmdb_bitflip_page2"] {
            let file = dir.join("files").join(name).join("data.mdb");
            if file.is_file() {
                out.push(seed(
                    format!("hostile-{name}"),
                    with_flags(0, &read(&file)?),
                ));
            }
        }
    }
    Ok(out)
}

/// The registered operator types, from the library.
pub fn registered_operators() -> Vec<String> {
    let mut list = ptr::null_mut();
    if c2rs_registered_operators(&mut list) != 0 || list.is_null() {
        return Vec::new();
    }
    let names = (0..c2rs_string_list_len(list))
        .filter_map(|i| {
            let p = c2rs_string_list_get(list, i);
            // SAFETY: a non-NULL entry is a NUL-terminated name owned by the list.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        })
        .collect();
    c2rs_string_list_free(list);
    names
}

const RECORD_OUTPUTS: [&str; 4] = ["o0", "o1", "o2", "o3"];

/// Valid OperatorDefs of `ty` against the operator target's fixture workspace (see
/// `operator::FIXTURE_BLOBS`); a type without an entry gets a one-input, one-output seed.
pub fn operator_seeds(ty: &str) -> Vec<OperatorDef> {
    let minidb = || string("db_type", "minidb");
    match ty {
        "ConstantFill" => vec![
            op(
                ty,
                &[],
                &["Z"],
                vec![ints("shape", &[2, 3]), float("value", 1.5)],
            ),
            op(
                ty,
                &[],
                &["Z"],
                vec![int("dtype", 2), ints("shape", &[4]), int("value", 7)],
            ),
            op(
                ty,
                &[],
                &["Z"],
                vec![int("dtype", 4), ints("shape", &[2]), string("value", "ab")],
            ),
            op(ty, &["L"], &["Z"], vec![int("input_as_shape", 1)]),
            op(
                ty,
                &["X"],
                &["Z"],
                vec![ints("extra_shape", &[2]), int("dtype", 10)],
            ),
            op(
                ty,
                &[],
                &["Z"],
                vec![int("dtype", 5), ints("shape", &[3]), int("value", 1)],
            ),
        ],
        "Copy" | "CopyCPUToGPU" | "CopyGPUToCPU" | "EnsureCPUOutput" | "CopyFromCPUInput" => vec![
            op(ty, &["X"], &["Z"], vec![]),
            op(ty, &["S"], &["Z"], vec![]),
        ],
        "Relu" => vec![
            op(ty, &["X"], &["Z"], vec![]),
            op(ty, &["X"], &["X"], vec![]),
            op(ty, &["D"], &["Z"], vec![]),
        ],
        "CreateDB" => vec![
            op(
                ty,
                &[],
                &["r"],
                vec![minidb(), string("db", "@/fx_records.minidb")],
            ),
            op(
                ty,
                &[],
                &["r"],
                vec![string("db_type", "lmdb"), string("db", "@/fx_records.lmdb")],
            ),
            op(
                ty,
                &[],
                &["reader"],
                vec![
                    minidb(),
                    string("db", "@/fx_records.minidb"),
                    int("num_shards", 2),
                    int("shard_id", 1),
                ],
            ),
        ],
        "TensorProtosDBInput" => vec![
            op(ty, &["reader"], &RECORD_OUTPUTS, vec![int("batch_size", 2)]),
            op(
                ty,
                &["lreader"],
                &RECORD_OUTPUTS,
                vec![
                    int("batch_size", 3),
                    int("prefetch_depth", 2),
                    int("num_decode_threads", 2),
                ],
            ),
            op(
                ty,
                &["reader"],
                &RECORD_OUTPUTS,
                vec![int("batch_size", 0), int("no_prefetch", 1)],
            ),
            op(ty, &["reader"], &["o0"], vec![int("batch_size", 1)]),
        ],
        "DBExists" => vec![
            op(
                ty,
                &[],
                &["e"],
                vec![minidb(), string("db_name", "fx_records.minidb")],
            ),
            op(
                ty,
                &[],
                &["e"],
                vec![
                    string("db_type", "lmdb"),
                    string("db_name", "fx_records.lmdb"),
                ],
            ),
        ],
        "Save" => vec![
            op(
                ty,
                &["X", "Y", "S"],
                &[],
                vec![minidb(), string("db", "saved")],
            ),
            op(
                ty,
                &["X", "L"],
                &[],
                vec![minidb(), string("db", "saved"), int("chunk_size", 1)],
            ),
            op(
                ty,
                &["X"],
                &[],
                vec![string("db_type", "lmdb"), string("db", "saved")],
            ),
            op(
                ty,
                &["X", "Y"],
                &[],
                vec![
                    minidb(),
                    string("db", "saved"),
                    strings("blob_name_overrides", &["a", "b"]),
                ],
            ),
        ],
        "Load" => vec![
            op(
                ty,
                &[],
                &[],
                vec![
                    minidb(),
                    string("db", "fx_checkpoint.minidb"),
                    int("load_all", 1),
                ],
            ),
            op(
                ty,
                &[],
                &["fc_w", "fc_b", "iter"],
                vec![minidb(), string("db", "fx_checkpoint.minidb")],
            ),
            op(
                ty,
                &["ckreader"],
                &["fc_w"],
                vec![int("allow_incomplete", 1)],
            ),
            op(
                ty,
                &[],
                &["w"],
                vec![
                    minidb(),
                    strings("dbs", &["fx_checkpoint.minidb"]),
                    strings("source_blob_names", &["fc_w"]),
                    string("add_prefix", "p_"),
                ],
            ),
        ],
        "Checkpoint" | "Snapshot" => vec![op(
            ty,
            &["iter", "X"],
            &[],
            vec![minidb(), string("db", "ckpt_%d"), int("every", 1)],
        )],
        "CreateBlobsQueue" => vec![
            op(
                ty,
                &[],
                &["q2"],
                vec![int("capacity", 2), int("num_blobs", 2)],
            ),
            op(
                ty,
                &[],
                &["queue"],
                vec![
                    int("capacity", 1),
                    int("num_blobs", 1),
                    strings("field_names", &["f"]),
                    int("enforce_unique_name", 1),
                    int("strict", 1),
                ],
            ),
        ],
        "EnqueueBlobs" => vec![op(ty, &["queue", "X", "Y"], &["X", "Y"], vec![])],
        "DequeueBlobs" => vec![
            op(ty, &["queue"], &["a", "b"], vec![]),
            op(
                ty,
                &["queue"],
                &["a", "b"],
                vec![float("timeout_secs", 0.01)],
            ),
        ],
        "CloseBlobsQueue" | "CloseRebatchingQueue" => {
            let q = if ty == "CloseBlobsQueue" {
                "queue"
            } else {
                "rqueue"
            };
            vec![op(ty, &[q], &[], vec![])]
        }
        "SafeEnqueueBlobs" => vec![op(ty, &["queue", "X", "Y"], &["X", "Y", "status"], vec![])],
        "SafeDequeueBlobs" => vec![
            op(ty, &["queue"], &["a", "b", "status"], vec![]),
            op(
                ty,
                &["queue"],
                &["a", "b", "status"],
                vec![int("num_records", 2)],
            ),
        ],
        "WeightedSampleDequeueBlobs" => vec![
            op(
                ty,
                &["queue"],
                &["a", "b", "idx"],
                vec![floats("weights", &[1.0])],
            ),
            op(
                ty,
                &["queue", "queue"],
                &["a", "b", "idx"],
                vec![floats("weights", &[0.5, 0.5]), int("table_idx_blob", 1)],
            ),
        ],
        "CreateBlobsQueueDB" => vec![op(
            ty,
            &["queue"],
            &["qdb"],
            vec![int("key_blob_index", 0), int("value_blob_index", 1)],
        )],
        "CreateRebatchingQueue" => vec![op(
            ty,
            &[],
            &["rq2"],
            vec![int("capacity", 2), int("num_blobs", 2)],
        )],
        "EnqueueRebatchingQueue" => vec![
            op(ty, &["rqueue", "X", "Y"], &[], vec![]),
            op(
                ty,
                &["rqueue", "X", "X"],
                &[],
                vec![int("enqueue_batch", 1)],
            ),
        ],
        "DequeueRebatchingQueue" => vec![
            op(ty, &["rqueue"], &["a", "b"], vec![int("num_elements", 1)]),
            op(ty, &["rqueue"], &["a", "b"], vec![int("num_elements", 3)]),
        ],
        "GetAllBlobNames" => vec![
            op(ty, &[], &["names"], vec![]),
            op(ty, &[], &["names"], vec![int("include_shared", 0)]),
        ],
        _ => vec![op(ty, &["X"], &["Z"], vec![])],
    }
}

/// Argument names the operators read (dictionary words for the operator target).
pub const ARGUMENT_NAMES: [&str; 40] = [
    "dtype",
    "value",
    "shape",
    "extra_shape",
    "input_as_shape",
    "db",
    "db_type",
    "db_name",
    "dbs",
    "absolute_path",
    "num_shards",
    "shard_id",
    "batch_size",
    "no_prefetch",
    "prefetch_depth",
    "num_decode_threads",
    "strip_prefix",
    "add_prefix",
    "blob_name_overrides",
    "chunk_size",
    "keep_device",
    "load_all",
    "allow_incomplete",
    "source_blob_names",
    "every",
    "capacity",
    "num_blobs",
    "enforce_unique_name",
    "strict",
    "field_names",
    "timeout_secs",
    "num_records",
    "weights",
    "table_idx_blob",
    "key_blob_index",
    "value_blob_index",
    "enqueue_batch",
    "num_elements",
    "include_shared",
    "random_seed",
];

/// `operator`: valid OperatorDefs of every registered operator.
pub fn operator(registered: &[String]) -> Vec<Seed> {
    registered
        .iter()
        .flat_map(|ty| {
            operator_seeds(ty)
                .into_iter()
                .enumerate()
                .map(move |(i, def)| seed(format!("op-{ty}-{i}"), bytes(&def)))
        })
        .collect()
}

/// A libFuzzer dictionary (one quoted word per line) of operator types, argument names,
/// fixture blob names, DB types and fixture file names.
pub fn operator_dictionary(registered: &[String]) -> String {
    let blobs = crate::operator::FIXTURE_BLOBS.iter().map(|(b, _)| *b);
    let extra = [
        "minidb",
        "lmdb",
        "leveldb",
        "@/fx_records.minidb",
        "@/fx_records.lmdb",
        "fx_checkpoint.minidb",
        "fx_records.minidb",
        "fx_records.lmdb",
    ];
    let words = registered
        .iter()
        .map(String::as_str)
        .chain(ARGUMENT_NAMES)
        .chain(blobs)
        .chain(extra);
    let mut out = String::new();
    for word in words {
        out.push('"');
        for b in word.bytes() {
            if b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
        out.push_str("\"\n");
    }
    out
}

/// `minidb_format`: the `db_minidb` seeds (same input format).
pub fn minidb_format(repo: &Path, hostile: bool) -> std::io::Result<Vec<Seed>> {
    db_minidb(repo, hostile)
}

/// `lmdb_format`: the `db_lmdb` seeds (same input format).
pub fn lmdb_format(repo: &Path, hostile: bool) -> std::io::Result<Vec<Seed>> {
    db_lmdb(repo, hostile)
}

/// The files of a LevelDB directory (sorted by name) that a database is made of: tables,
/// logs, MANIFESTs and CURRENT (not LOCK nor the LOG info files).
fn leveldb_dir_files(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for path in files(dir)? {
        let name = stem(&path);
        if name == "LOCK" || name.starts_with("LOG") {
            continue;
        }
        out.push((name, read(&path)?));
    }
    Ok(out)
}

/// A LevelDB directory written by the library itself (the golden minidb's records, in a
/// log that the next open turns into a table): its files.
fn leveldb_written_by_us(repo: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let records = read(&repo.join("tests/data/golden/db/records.minidb"))?;
    let dir = std::env::temp_dir().join(format!("caffe2rs-seedgen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let written = (|| {
        let db = caffe2rs::db::open_db("leveldb", &dir.to_string_lossy(), caffe2rs::db::Mode::New)?;
        let mut txn = db.new_transaction()?;
        for (k, v) in caffe2rs::db::minidb_fuzzing::records(&records)? {
            txn.put(k, v)?;
        }
        txn.commit()
    })();
    let files = written
        .map_err(|e| std::io::Error::other(format!("writing a LevelDB seed: {}", e.message())))
        .and_then(|()| leveldb_dir_files(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    files
}

/// `db_leveldb`: the golden LevelDB directory and one the library wrote, each with every
/// DB flag byte, in the container format of [`crate::db::leveldb_files`].
pub fn db_leveldb(repo: &Path) -> std::io::Result<Vec<Seed>> {
    let golden = leveldb_dir_files(&repo.join("tests/data/golden/db/records.leveldb"))?;
    let ours = leveldb_written_by_us(repo)?;
    let mut out = Vec::new();
    for (name, files) in [("golden-records", &golden), ("written", &ours)] {
        let container = crate::db::join_leveldb_files(files);
        for f in DB_FLAGS {
            out.push(seed(format!("{name}-{f:02x}"), with_flags(f, &container)));
        }
    }
    Ok(out)
}

/// `leveldb_format`: every table, log and MANIFEST of the golden LevelDB directory and of
/// one the library wrote, with the selector byte of its kind (0 table, 1 log, 2 MANIFEST).
pub fn leveldb_format(repo: &Path) -> std::io::Result<Vec<Seed>> {
    let golden = leveldb_dir_files(&repo.join("tests/data/golden/db/records.leveldb"))?;
    let ours = leveldb_written_by_us(repo)?;
    let mut out = Vec::new();
    for (origin, files) in [("golden", &golden), ("written", &ours)] {
        for (name, data) in files {
            let kind = if name.ends_with(".ldb") || name.ends_with(".sst") {
                0
            } else if name.ends_with(".log") {
                1
            } else if name.starts_with("MANIFEST-") {
                2
            } else {
                continue;
            };
            out.push(seed(format!("{origin}-{name}"), with_flags(kind, data)));
        }
    }
    Ok(out)
}

fn exec_step(name: &str, nets: &[&str]) -> ExecutionStep {
    ExecutionStep {
        name: Some(name.to_string()),
        network: nets.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn exec_group(name: &str, substeps: Vec<ExecutionStep>, concurrent: bool) -> ExecutionStep {
    ExecutionStep {
        name: Some(name.to_string()),
        substep: substeps,
        concurrent_substeps: concurrent.then_some(true),
        ..Default::default()
    }
}

fn plan_def(name: &str, nets: Vec<NetDef>, steps: Vec<ExecutionStep>) -> PlanDef {
    PlanDef {
        name: Some(name.to_string()),
        network: nets,
        execution_step: steps,
    }
}

/// The reproducers of `tests/data/hostile/<target>/` (the folder of each fuzz target holds
/// inputs in that target's format), as seeds of `target`.
pub fn hostile(repo: &Path, target: &str) -> std::io::Result<Vec<Seed>> {
    files(&repo.join("tests/data/hostile").join(target))?
        .iter()
        .map(|path| Ok(seed(format!("hostile-{}", stem(path)), read(path)?)))
        .collect()
}

/// `plan`: plans over the operator target's fixture workspace using every ExecutionStep
/// feature (networks, substeps, num_iter, should_stop_blob, only_once, concurrent_substeps,
/// num_concurrent_instances, report_net, run_every_ms, create_workspace), a producer and a
/// consumer on the fixture queue, a plan blocked on a queue it made, a failing concurrent
/// substep, a very long loop (the watchdog cancels it); then every registered operator's
/// first seed as a one-op net run twice.
pub fn plan(registered: &[String]) -> Vec<Seed> {
    let fill = |out: &str| {
        op(
            "ConstantFill",
            &[],
            &[out],
            vec![ints("shape", &[2, 3]), float("value", 1.5)],
        )
    };
    let fill_net = || crate::defs::net("fill", vec![fill("Z")]);
    let iter_net = || crate::defs::net("count", vec![op("Iter", &["iter"], &["iter"], vec![])]);
    let mut plans = vec![
        plan_def("fill", vec![fill_net()], vec![exec_step("s", &["fill"])]),
        plan_def(
            "iterate",
            vec![iter_net()],
            vec![ExecutionStep {
                num_iter: Some(5),
                ..exec_step("s", &["count"])
            }],
        ),
        plan_def(
            "producer-consumer",
            vec![
                crate::defs::net(
                    "produce",
                    vec![op(
                        "EnqueueBlobs",
                        &["queue", "X", "Y"],
                        &["X", "Y"],
                        vec![],
                    )],
                ),
                crate::defs::net(
                    "consume",
                    vec![op("DequeueBlobs", &["queue"], &["a", "b"], vec![])],
                ),
            ],
            vec![exec_group(
                "pc",
                vec![
                    ExecutionStep {
                        num_iter: Some(3),
                        ..exec_step("p", &["produce"])
                    },
                    ExecutionStep {
                        num_iter: Some(4),
                        ..exec_step("c", &["consume"])
                    },
                ],
                true,
            )],
        ),
        plan_def(
            "stop-blob",
            vec![iter_net()],
            vec![ExecutionStep {
                should_stop_blob: Some("B".into()),
                ..exec_step("s", &["count"])
            }],
        ),
        plan_def(
            "report-and-every",
            vec![fill_net(), iter_net()],
            vec![ExecutionStep {
                report_net: Some("fill".into()),
                report_interval: Some(1),
                ..exec_group(
                    "g",
                    vec![
                        ExecutionStep {
                            run_every_ms: Some(5),
                            only_once: Some(true),
                            ..exec_step("every", &["fill"])
                        },
                        ExecutionStep {
                            num_iter: Some(3),
                            ..exec_step("loop", &["count"])
                        },
                    ],
                    false,
                )
            }],
        ),
        plan_def(
            "child-workspace",
            vec![fill_net()],
            vec![ExecutionStep {
                create_workspace: Some(true),
                ..exec_group("g", vec![exec_step("s", &["fill"])], false)
            }],
        ),
        plan_def(
            "instances",
            vec![iter_net()],
            vec![ExecutionStep {
                num_concurrent_instances: Some(2),
                ..exec_group(
                    "g",
                    vec![ExecutionStep {
                        num_iter: Some(2),
                        ..exec_step("s", &["count"])
                    }],
                    true,
                )
            }],
        ),
        plan_def(
            "endless",
            vec![iter_net()],
            vec![ExecutionStep {
                num_iter: Some(1 << 40),
                ..exec_step("s", &["count"])
            }],
        ),
        plan_def(
            "blocked",
            vec![
                crate::defs::net(
                    "make",
                    vec![op(
                        "CreateBlobsQueue",
                        &[],
                        &["q2"],
                        vec![int("capacity", 2), int("num_blobs", 1)],
                    )],
                ),
                crate::defs::net("take", vec![op("DequeueBlobs", &["q2"], &["t"], vec![])]),
            ],
            vec![exec_step("make", &["make"]), exec_step("take", &["take"])],
        ),
        plan_def(
            "failing-substep",
            vec![
                iter_net(),
                crate::defs::net("bad", vec![op("Copy", &["missing"], &["out"], vec![])]),
            ],
            vec![exec_group(
                "g",
                vec![
                    ExecutionStep {
                        num_iter: Some(1 << 40),
                        ..exec_step("spin", &["count"])
                    },
                    exec_step("fail", &["bad"]),
                ],
                true,
            )],
        ),
    ];
    for ty in registered {
        if let Some(def) = operator_seeds(ty).into_iter().next() {
            plans.push(plan_def(
                &format!("op-{ty}"),
                vec![crate::defs::net("n", vec![def])],
                vec![ExecutionStep {
                    num_iter: Some(2),
                    ..exec_step("s", &["n"])
                }],
            ));
        }
    }
    plans
        .iter()
        .map(|p| {
            seed(
                format!("plan-{}", p.name.as_deref().unwrap_or_default()),
                bytes(p),
            )
        })
        .collect()
}
