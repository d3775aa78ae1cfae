//! Save / Load / Checkpoint through the operator registry: the golden checkpoint, files read
//! back by an independent reader (hand-written minidb framing + prost), and the cases of
//! caffe2/python/operator_test/load_save_test.py and blob_test.cc (chunking).

use std::collections::BTreeMap;
use std::sync::Arc;

use caffe2rs::ErrorKind;
use caffe2rs::db::{DbReader, Mode, open_db};
use caffe2rs::proto::{Argument, BlobProto};
use caffe2rs::tensor::{DataType, Tensor, tensor_from_proto};
use caffe2rs::workspace::Workspace;
use caffe2rs::workspace::serialize::serialize_blob_to_proto;
use prost::Message;
use serde_json::Value;

mod support;
use support::{
    arg_i as i, arg_s as s, arg_strings as strings, assert_tensor_matches, feed, fetch,
    golden_db as golden, op,
};

/// A fresh directory for one test, used as the workspace root folder.
fn temp_dir(name: &str) -> String {
    let p = std::env::temp_dir().join(format!("c2rs-loadsave-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p.to_string_lossy().into_owned()
}

fn save(
    ws: &Arc<Workspace>,
    inputs: &[&str],
    db: &str,
    extra: Vec<Argument>,
) -> caffe2rs::Result<()> {
    let mut args = vec![s("db", db), s("db_type", "minidb")];
    args.extend(extra);
    ws.run_operator_once(&op("Save", inputs, &[], args))
}

fn load(ws: &Arc<Workspace>, outputs: &[&str], extra: Vec<Argument>) -> caffe2rs::Result<()> {
    let mut args = vec![s("db_type", "minidb")];
    args.extend(extra);
    ws.run_operator_once(&op("Load", &[], outputs, args))
}

/// An independent minidb reader: int32 LE key length, int32 LE value length, key, value.
fn read_minidb_by_hand(path: &str) -> Vec<(String, BlobProto)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let k = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let v = i32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let key = String::from_utf8(bytes[at + 8..at + 8 + k].to_vec()).unwrap();
        let value = BlobProto::decode(&bytes[at + 8 + k..at + 8 + k + v]).unwrap();
        out.push((key, value));
        at += 8 + k + v;
    }
    assert_eq!(at, bytes.len());
    out
}

#[test]
fn golden_checkpoint_loads_with_load_all() {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(golden("manifest.json")).unwrap()).unwrap();
    let ws = Workspace::new();
    load(
        &ws,
        &[],
        vec![
            s("db", &golden("checkpoint.minidb")),
            i("absolute_path", 1),
            i("load_all", 1),
        ],
    )
    .unwrap();
    let blobs = manifest["checkpoint.minidb"]["blobs"].as_array().unwrap();
    for want in blobs {
        assert_tensor_matches(&fetch(&ws, want["name"].as_str().unwrap()), want);
    }
    // Loading just one output by name stops there and leaves the others alone.
    let ws = Workspace::new();
    load(
        &ws,
        &["fc_b"],
        vec![s("db", &golden("checkpoint.minidb")), i("absolute_path", 1)],
    )
    .unwrap();
    assert_eq!(fetch(&ws, "fc_b").dims(), &[3]);
    assert!(!ws.has_blob("fc_w"));
}

#[test]
fn a_save_reads_back_with_an_independent_reader_and_loads_back() {
    let dir = temp_dir("independent");
    let ws = Workspace::with_root(&dir);
    let w = Tensor::from_slice(
        DataType::Float,
        &[2, 5],
        &(0..10).map(|v| v as f32).collect::<Vec<_>>(),
    )
    .unwrap();
    feed(&ws, "w", w.clone());
    ws.create_blob("note")
        .unwrap()
        .set_string(b"hi\0there".to_vec());
    save(&ws, &["w", "note"], "out.minidb", vec![i("chunk_size", 4)]).unwrap();
    let records = read_minidb_by_hand(&format!("{dir}/out.minidb"));
    let keys: Vec<&str> = records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["w#%0", "w#%1", "w#%2", "note"]);
    let mut rebuilt = vec![0f32; 10];
    for (_, p) in &records[..3] {
        assert_eq!(p.r#type.as_deref(), Some("Tensor"));
        assert_eq!(p.name.as_deref(), Some(&b"w"[..]));
        let tp = p.tensor.as_ref().unwrap();
        assert_eq!(tp.dims, vec![2, 5]);
        assert_eq!(tp.device_detail.as_ref().unwrap().device_type, Some(0));
        let seg = tp.segment.unwrap();
        rebuilt[seg.begin as usize..seg.end as usize].copy_from_slice(&tp.float_data);
    }
    assert_eq!(rebuilt, w.typed::<f32>().unwrap());
    assert_eq!(records[3].1.r#type.as_deref(), Some("std::string"));
    assert_eq!(records[3].1.content.as_deref(), Some(&b"hi\0there"[..]));

    let fresh = Workspace::with_root(&dir);
    load(&fresh, &["w", "note"], vec![s("db", "out.minidb")]).unwrap();
    assert_eq!(fetch(&fresh, "w"), w);
    assert_eq!(
        fresh.get_blob("note").unwrap().string().unwrap(),
        b"hi\0there"
    );
}

fn tensor_2x3(dtype: DataType) -> Tensor {
    let mut t = Tensor::zeros(dtype, &[2, 3]).unwrap();
    let item = dtype.item_size().unwrap();
    for (k, c) in t.bytes_mut().unwrap().chunks_exact_mut(item).enumerate() {
        match dtype {
            DataType::Float => c.copy_from_slice(&(k as f32).to_le_bytes()),
            DataType::Double => c.copy_from_slice(&(k as f64).to_le_bytes()),
            DataType::Float16 => c.copy_from_slice(&[0x00, 0x3c + k as u8]),
            DataType::Bool => c[0] = (k % 2) as u8,
            _ => c.copy_from_slice(&(k as u64).to_le_bytes()[..item]),
        }
    }
    t
}

const TEN_DTYPES: [DataType; 10] = [
    DataType::Float16,
    DataType::Float,
    DataType::Double,
    DataType::Bool,
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::Uint8,
    DataType::Uint16,
];

// Ported from load_save_test.py testLoadSave: 10 dtypes, Save then Load with keep_device 0/1
// and with load_all; dtypes and values are preserved (tensors are loaded to the CPU, the only
// device a caffe2rs blob holds).
#[test]
fn ten_dtypes_save_and_load_back_with_their_dtype() {
    let dir = temp_dir("dtypes");
    let ws = Workspace::with_root(&dir);
    let names: Vec<String> = (0..10).map(|k| format!("blob_{k}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for (name, dtype) in names.iter().zip(TEN_DTYPES) {
        feed(&ws, name, tensor_2x3(dtype));
    }
    save(&ws, &refs, "dtypes.minidb", vec![]).unwrap();
    for keep_device in [0, 1] {
        let fresh = Workspace::with_root(&dir);
        load(
            &fresh,
            &refs,
            vec![s("db", "dtypes.minidb"), i("keep_device", keep_device)],
        )
        .unwrap();
        for (name, dtype) in names.iter().zip(TEN_DTYPES) {
            assert_eq!(fetch(&fresh, name), tensor_2x3(dtype), "{name}");
        }
    }
    // load_all, also over blobs that already exist (they are replaced).
    for (name, _) in names.iter().zip(TEN_DTYPES) {
        feed(&ws, name, Tensor::zeros(DataType::Float, &[7]).unwrap());
    }
    load(&ws, &[], vec![s("db", "dtypes.minidb"), i("load_all", 1)]).unwrap();
    for (name, dtype) in names.iter().zip(TEN_DTYPES) {
        assert_eq!(fetch(&ws, name), tensor_2x3(dtype), "{name}");
    }
}

// load_save_test.py testRepeatedArgs / testLoadExcessBlobs / testTruncatedFile /
// testMissingFile / testLoadAllMultipleFiles duplicates / testBlobNameOverrides with strip_prefix.
#[test]
fn bad_arguments_and_files_are_errors_with_messages() {
    let dir = temp_dir("errors");
    let ws = Workspace::with_root(&dir);
    feed(&ws, "x", tensor_2x3(DataType::Float));
    feed(&ws, "y", tensor_2x3(DataType::Int32));
    let e = save(&ws, &["x", "x"], "twice.minidb", vec![]).unwrap_err();
    assert!(
        e.message().contains("Duplicated input: x"),
        "{}",
        e.message()
    );
    save(&ws, &["x", "y"], "xy.minidb", vec![]).unwrap();
    let e = load(&ws, &["x", "x"], vec![s("db", "xy.minidb")]).unwrap_err();
    assert!(
        e.message().contains("Duplicated output: x"),
        "{}",
        e.message()
    );

    std::fs::write(format!("{dir}/zeros.minidb"), [0u8; 20]).unwrap();
    for extra in [vec![i("load_all", 1)], vec![]] {
        let outs: &[&str] = if extra.is_empty() { &["x"] } else { &[] };
        let mut args = vec![s("db", "zeros.minidb")];
        args.extend(extra);
        let e = load(&ws, outs, args).unwrap_err();
        assert!(e.message().contains("zeros.minidb"), "{}", e.message());
    }
    let e = load(&ws, &["x"], vec![s("db", "missing.minidb")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("missing.minidb"), "{}", e.message());

    save(&ws, &["x"], "x_again.minidb", vec![]).unwrap();
    let e = load(
        &ws,
        &[],
        vec![
            strings("dbs", &["xy.minidb", "x_again.minidb"]),
            i("load_all", 1),
        ],
    )
    .unwrap_err();
    assert!(
        e.message().contains("Duplicate Key x is found!"),
        "{}",
        e.message()
    );
    let e = load(
        &ws,
        &[],
        vec![
            strings("dbs", &["xy.minidb", "xy.minidb"]),
            i("load_all", 1),
        ],
    )
    .unwrap_err();
    assert!(
        e.message().contains("Duplicated db name: xy.minidb"),
        "{}",
        e.message()
    );
    let e = save(
        &ws,
        &["x", "y"],
        "o.minidb",
        vec![
            strings("blob_name_overrides", &["a", "b"]),
            s("strip_prefix", "x"),
        ],
    )
    .unwrap_err();
    assert!(
        e.message().contains("mutually exclusive"),
        "{}",
        e.message()
    );
    let e = load(&ws, &["x", "y", "z"], vec![s("db", "xy.minidb")]).unwrap_err();
    assert!(
        e.message()
            .contains("Expected to load 3 blobs, got 2 only."),
        "{}",
        e.message()
    );
    load(
        &ws,
        &["x", "y", "z"],
        vec![s("db", "xy.minidb"), i("allow_incomplete", 1)],
    )
    .unwrap();
    let e = ws
        .run_operator_once(&op("Load", &[], &["x"], vec![s("db", "xy.minidb")]))
        .unwrap_err();
    assert!(
        e.message().contains("Must specify a db type."),
        "{}",
        e.message()
    );
}

// load_save_test.py testBlobNameOverrides, testLoadWithSourceBlobNames (one and two DBs),
// testLoadAllMultipleFiles.
#[test]
fn overrides_source_names_and_multiple_dbs_map_names() {
    let dir = temp_dir("names");
    let ws = Workspace::with_root(&dir);
    for (n, v) in [("a", 1.0f32), ("b", 2.0), ("c", 3.0)] {
        feed(
            &ws,
            n,
            Tensor::from_slice(DataType::Float, &[1], &[v]).unwrap(),
        );
    }
    save(
        &ws,
        &["a", "b", "c"],
        "abc.minidb",
        vec![strings("blob_name_overrides", &["x", "y", "z"])],
    )
    .unwrap();
    let fresh = Workspace::with_root(&dir);
    load(&fresh, &[], vec![s("db", "abc.minidb"), i("load_all", 1)]).unwrap();
    let mut names = fresh.blobs();
    names.sort();
    assert_eq!(names, ["x", "y", "z"]);
    assert_eq!(fetch(&fresh, "z").typed::<f32>().unwrap(), &[3.0]);

    load(
        &fresh,
        &["new_y"],
        vec![s("db", "abc.minidb"), strings("source_blob_names", &["y"])],
    )
    .unwrap();
    assert_eq!(fetch(&fresh, "new_y").typed::<f32>().unwrap(), &[2.0]);

    feed(
        &ws,
        "d",
        Tensor::from_slice(DataType::Float, &[1], &[4.0f32]).unwrap(),
    );
    save(&ws, &["d"], "d.minidb", vec![]).unwrap();
    load(
        &fresh,
        &["p", "q"],
        vec![
            strings("dbs", &["abc.minidb", "d.minidb"]),
            strings("source_blob_names", &["x", "d"]),
        ],
    )
    .unwrap();
    assert_eq!(fetch(&fresh, "p").typed::<f32>().unwrap(), &[1.0]);
    assert_eq!(fetch(&fresh, "q").typed::<f32>().unwrap(), &[4.0]);

    let all = Workspace::with_root(&dir);
    load(
        &all,
        &[],
        vec![
            strings("dbs", &["abc.minidb", "d.minidb"]),
            i("load_all", 1),
        ],
    )
    .unwrap();
    let mut names = all.blobs();
    names.sort();
    assert_eq!(names, ["d", "x", "y", "z"]);

    let e = load(
        &fresh,
        &["p"],
        vec![
            s("db", "abc.minidb"),
            strings("source_blob_names", &["x"]),
            s("strip_prefix", "g"),
        ],
    )
    .unwrap_err();
    assert!(
        e.message().contains("mutually exclusive"),
        "{}",
        e.message()
    );
}

#[test]
fn strip_and_add_prefix_map_keys_to_blob_names() {
    let dir = temp_dir("prefix");
    let ws = Workspace::with_root(&dir);
    feed(&ws, "gpu_0/fc_w", tensor_2x3(DataType::Float));
    save(
        &ws,
        &["gpu_0/fc_w"],
        "p.minidb",
        vec![s("strip_prefix", "gpu_0/")],
    )
    .unwrap();
    assert_eq!(
        read_minidb_by_hand(&format!("{dir}/p.minidb"))[0].0,
        "fc_w#%0"
    );
    let fresh = Workspace::with_root(&dir);
    load(
        &fresh,
        &["gpu_1/fc_w"],
        vec![s("db", "p.minidb"), s("add_prefix", "gpu_1/")],
    )
    .unwrap();
    assert_eq!(fetch(&fresh, "gpu_1/fc_w"), tensor_2x3(DataType::Float));
}

// blob_test.cc BigTensorSerialization (scaled down) and a missing chunk.
#[test]
fn chunked_tensors_load_complete_and_a_missing_chunk_is_a_size_mismatch() {
    let dir = temp_dir("chunks");
    let ws = Workspace::with_root(&dir);
    let big =
        Tensor::from_slice(DataType::Int64, &[10, 7], &(0..70i64).collect::<Vec<_>>()).unwrap();
    feed(&ws, "big", big.clone());
    save(&ws, &["big"], "big.minidb", vec![i("chunk_size", 8)]).unwrap();
    let recs = read_minidb_by_hand(&format!("{dir}/big.minidb"));
    assert_eq!(recs.len(), 9);
    let fresh = Workspace::with_root(&dir);
    load(&fresh, &["big"], vec![s("db", "big.minidb")]).unwrap();
    assert_eq!(fetch(&fresh, "big"), big);

    // Rewrite without chunk 4.
    let path = format!("{dir}/holes.minidb");
    let db = open_db("minidb", &path, Mode::New).unwrap();
    let mut txn = db.new_transaction().unwrap();
    for (k, p) in recs.iter().filter(|(k, _)| k != "big#%4") {
        txn.put(k.as_bytes(), &p.encode_to_vec()).unwrap();
    }
    txn.commit().unwrap();
    drop(txn);
    let e = load(&fresh, &["big"], vec![s("db", "holes.minidb")]).unwrap_err();
    assert!(
        e.message().contains("Data size mismatch for blob big"),
        "{}",
        e.message()
    );
}

// blob_test.cc ContentChunks (as std::string blobs): 10 content chunks under one name load
// complete; 9 of 10 are a size mismatch.
#[test]
fn content_chunks_load_when_all_ids_are_present() {
    let dir = temp_dir("content");
    for (file, count) in [("all.minidb", 10), ("some.minidb", 9)] {
        let db = open_db("minidb", &format!("{dir}/{file}"), Mode::New).unwrap();
        let mut txn = db.new_transaction().unwrap();
        for k in 0..count {
            let p = BlobProto {
                name: Some(b"c".to_vec()),
                r#type: Some("std::string".into()),
                content: Some(format!("part{k}").into_bytes()),
                content_num_chunks: Some(10),
                content_chunk_id: Some(k),
                ..Default::default()
            };
            txn.put(format!("c#%{k}").as_bytes(), &p.encode_to_vec())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let ws = Workspace::with_root(&dir);
    load(&ws, &["c"], vec![s("db", "all.minidb")]).unwrap();
    assert!(ws.get_blob("c").unwrap().string().is_ok());
    let e = load(&ws, &["c"], vec![s("db", "some.minidb")]).unwrap_err();
    assert!(
        e.message().contains("Data size mismatch for blob c"),
        "{}",
        e.message()
    );
}

#[test]
fn load_from_a_db_reader_input_starts_at_its_position() {
    let dir = temp_dir("reader-input");
    let ws = Workspace::with_root(&dir);
    for n in ["m", "x", "y"] {
        feed(
            &ws,
            n,
            Tensor::from_slice(DataType::Float, &[1], &[n.len() as f32]).unwrap(),
        );
    }
    save(&ws, &["m", "x", "y"], "r.minidb", vec![]).unwrap();
    let reader = DbReader::open("minidb", &format!("{dir}/r.minidb"), 1, 0).unwrap();
    reader.read().unwrap(); // consume "m" (as predictor exports consume their meta record)
    let fresh = Workspace::with_root(&dir);
    fresh
        .create_blob("reader")
        .unwrap()
        .set_native(Arc::new(reader));
    fresh
        .run_operator_once(&op("Load", &["reader"], &[], vec![i("load_all", 1)]))
        .unwrap();
    assert!(fresh.has_blob("x") && fresh.has_blob("y"));
    assert!(!fresh.has_blob("m"));
}

#[test]
fn a_non_utf8_key_is_an_error_naming_the_key() {
    let dir = temp_dir("utf8");
    let p = serialize_blob_to_proto(
        "x",
        &caffe2rs::workspace::BlobContent::String(b"v".to_vec()),
    )
    .unwrap();
    let db = open_db("minidb", &format!("{dir}/k.minidb"), Mode::New).unwrap();
    let mut txn = db.new_transaction().unwrap();
    txn.put(b"bad\xffkey", &p.encode_to_vec()).unwrap();
    txn.commit().unwrap();
    drop(txn);
    let ws = Workspace::with_root(&dir);
    let e = load(&ws, &[], vec![s("db", "k.minidb"), i("load_all", 1)]).unwrap_err();
    assert!(
        e.message()
            .contains("Load: key is not valid UTF-8: bad\\xffkey"),
        "{}",
        e.message()
    );
}

#[test]
fn checkpoint_saves_every_n_iterations_under_the_pattern() {
    let dir = temp_dir("checkpoint");
    let ws = Workspace::with_root(&dir);
    feed(&ws, "w", tensor_2x3(DataType::Float));
    for it in 0..5i64 {
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
                s("db", "ckpt_%03d.minidb"),
                s("db_type", "minidb"),
                i("every", 2),
            ],
        ))
        .unwrap();
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["ckpt_000.minidb", "ckpt_002.minidb", "ckpt_004.minidb"]
    );
    let keys: BTreeMap<String, BlobProto> = read_minidb_by_hand(&format!("{dir}/ckpt_004.minidb"))
        .into_iter()
        .collect();
    let it = tensor_from_proto(keys["iter#%0"].tensor.as_ref().unwrap()).unwrap();
    assert_eq!(it.typed::<i64>().unwrap(), &[4]);
    // The iteration must be one INT64: neither two of them nor an INT32.
    for bad in [
        Tensor::from_slice(DataType::Int64, &[2], &[6i64, 7]).unwrap(),
        Tensor::from_slice(DataType::Int32, &[1], &[6i32]).unwrap(),
    ] {
        feed(&ws, "iter", bad);
        let e = ws
            .run_operator_once(&op(
                "Checkpoint",
                &["iter", "w"],
                &[],
                vec![
                    s("db", "ckpt_%03d.minidb"),
                    s("db_type", "minidb"),
                    i("every", 2),
                ],
            ))
            .unwrap_err();
        assert!(
            e.message()
                .contains("must be an INT64 scalar (the iteration)"),
            "{}",
            e.message()
        );
    }
    assert!(!std::path::Path::new(&format!("{dir}/ckpt_006.minidb")).exists());
    let e = ws
        .run_operator_once(&op(
            "Snapshot",
            &["iter", "w"],
            &[],
            vec![s("db", "ckpt_%s"), s("db_type", "minidb")],
        ))
        .unwrap_err();
    assert!(
        e.message().contains("exactly one integer conversion"),
        "{}",
        e.message()
    );
}

// blob_test.cc float16 (scaled): 3 000 000 elements x = i % 10000 go to int32_data one bit
// pattern each; a single-string serialisation is one chunk; Save with the default chunk size
// writes three.
#[test]
fn large_float16_tensor_serializes_to_int32_data_and_chunks_by_a_million() {
    let n = 3_000_000usize;
    let bits: Vec<u16> = (0..n).map(|k| (k % 10000) as u16).collect();
    let t = Tensor::from_slice(DataType::Float16, &[n as i64], &bits).unwrap();
    let p = serialize_blob_to_proto("test", &caffe2rs::workspace::BlobContent::Tensor(t.clone()))
        .unwrap();
    let tp = p.tensor.as_ref().unwrap();
    assert_eq!(tp.int32_data.len(), n);
    assert_eq!(tp.int32_data[12345], 2345);
    let dir = temp_dir("fp16");
    let ws = Workspace::with_root(&dir);
    feed(&ws, "h", t.clone());
    save(&ws, &["h"], "h.minidb", vec![]).unwrap();
    let keys: Vec<String> = read_minidb_by_hand(&format!("{dir}/h.minidb"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["h#%0", "h#%1", "h#%2"]);
    let fresh = Workspace::with_root(&dir);
    load(&fresh, &["h"], vec![s("db", "h.minidb")]).unwrap();
    assert_eq!(fetch(&fresh, "h"), t);
}
