//! The DB operators through the operator registry: CreateDB, TensorProtosDBInput (golden
//! records in batches of 4 and 3 with wrap-around, prefetch settings, bad input), DBExists,
//! and DBReader blobs (serialisation, as Caffe2's DBReaderTest).

use std::sync::Arc;

use caffe2rs::ErrorKind;
use caffe2rs::db::{DbReader, Mode, open_db};
use caffe2rs::operator::{Operator, create_operator, run_operator};
use caffe2rs::proto::{Argument, BlobProto, DbReaderProto, TensorProtos};
use caffe2rs::tensor::{DataType, Tensor, tensor_to_proto};
use caffe2rs::workspace::Workspace;
use caffe2rs::workspace::serialize::{deserialize_blob, serialize_blob_to_proto};
use prost::Message;
use serde_json::Value;

mod support;
use support::{
    GOLDEN_RECORD_DBS, arg_i, arg_s, golden_db as golden, golden_db_source, json_dims, op,
    values_json as values_of,
};

fn temp(name: &str) -> String {
    let p = std::env::temp_dir().join(format!("c2rs-dbops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    let _ = std::fs::remove_file(&p);
    p.to_string_lossy().into_owned()
}

fn create_db(ws: &Arc<Workspace>, db_type: &str, path: &str) -> caffe2rs::Result<()> {
    ws.run_operator_once(&op(
        "CreateDB",
        &[],
        &["reader"],
        vec![arg_s("db_type", db_type), arg_s("db", path)],
    ))
}

fn input_op(
    ws: &Arc<Workspace>,
    outputs: &[&str],
    args: Vec<Argument>,
) -> caffe2rs::Result<Box<dyn Operator>> {
    create_operator(
        &op("TensorProtosDBInput", &["reader"], outputs, args),
        ws,
        None,
    )
}

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(golden("manifest.json")).unwrap()).unwrap()
}

#[test]
fn golden_dbs_through_the_operator_give_batches_of_4_and_3_that_wrap() {
    let manifest = manifest();
    let records = manifest["records"].as_array().unwrap();
    let outs = ["image", "label", "weights", "tag"];
    for (db_type, file) in GOLDEN_RECORD_DBS {
        let source = golden_db_source(db_type, file, "operator-batches");
        for (batch, extra) in [
            (4i64, vec![]),
            (3, vec![arg_i("no_prefetch", 1)]),
            (
                3,
                vec![arg_i("prefetch_depth", 3), arg_i("num_decode_threads", 2)],
            ),
        ] {
            let ws = Workspace::new();
            create_db(&ws, db_type, &source).unwrap();
            let mut args = vec![arg_i("batch_size", batch)];
            args.extend(extra.clone());
            let input = input_op(&ws, &outs, args).unwrap();
            let mut next = 0usize;
            for _ in 0..5 {
                run_operator(input.as_ref()).unwrap();
                for (o, name) in outs.iter().enumerate() {
                    let t = ws.get_blob(name).unwrap().tensor().unwrap();
                    let want0 = &records[0]["tensors"][o];
                    assert_eq!(t.dtype().name(), want0["data_type"].as_str().unwrap());
                    let mut dims = vec![batch];
                    dims.extend(json_dims(&want0["dims"]));
                    assert_eq!(t.dims(), dims.as_slice(), "{db_type} {name}");
                    let values = values_of(&t);
                    let per = values.len() / batch as usize;
                    for k in 0..batch as usize {
                        let want = &records[(next + k) % records.len()]["tensors"][o]["values"];
                        assert_eq!(
                            &values[k * per..(k + 1) * per],
                            want.as_array().unwrap().as_slice(),
                            "{db_type} B={batch} {name} item {k}"
                        );
                    }
                }
                next += batch as usize;
            }
        }
    }
}

fn write_records(path: &str, records: &[(String, Vec<Tensor>)]) {
    let db = open_db("minidb", path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    for (key, tensors) in records {
        let value = TensorProtos {
            protos: tensors
                .iter()
                .map(|x| tensor_to_proto(x).unwrap())
                .collect(),
        };
        t.put(key.as_bytes(), &value.encode_to_vec()).unwrap();
    }
    t.commit().unwrap();
}

fn floats(dims: &[i64], v: f32) -> Tensor {
    let n: i64 = dims.iter().product();
    Tensor::from_slice(DataType::Float, dims, &vec![v; n as usize]).unwrap()
}

#[test]
fn batch_size_zero_outputs_each_record_without_a_batch_dim_and_shapes_may_vary() {
    let path = temp("varying.minidb");
    write_records(
        &path,
        &[
            ("a".into(), vec![floats(&[2], 1.0)]),
            ("b".into(), vec![floats(&[3, 1], 2.0)]),
            ("c".into(), vec![floats(&[], 3.0)]),
        ],
    );
    let ws = Workspace::new();
    create_db(&ws, "minidb", &path).unwrap();
    let input = input_op(&ws, &["x"], vec![]).unwrap();
    let mut shapes = Vec::new();
    for _ in 0..4 {
        run_operator(input.as_ref()).unwrap();
        shapes.push(ws.get_blob("x").unwrap().tensor().unwrap().dims().to_vec());
    }
    assert_eq!(shapes, vec![vec![2], vec![3, 1], vec![], vec![2]]);
}

#[test]
fn mismatched_shapes_within_a_batch_are_an_error_naming_the_key() {
    let path = temp("mismatch.minidb");
    write_records(
        &path,
        &[
            ("rec0".into(), vec![floats(&[2], 1.0)]),
            ("rec1".into(), vec![floats(&[3], 2.0)]),
        ],
    );
    for no_prefetch in [0, 1] {
        let ws = Workspace::new();
        create_db(&ws, "minidb", &path).unwrap();
        let input = input_op(
            &ws,
            &["x"],
            vec![arg_i("batch_size", 2), arg_i("no_prefetch", no_prefetch)],
        )
        .unwrap();
        let e = run_operator(input.as_ref()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Enforce);
        assert!(
            e.message().contains("record 'rec1' output 0 has [3]/FLOAT"),
            "{}",
            e.message()
        );
        // The failure sticks, as Caffe2's prefetching ops stayed failed.
        assert_eq!(run_operator(input.as_ref()).unwrap_err(), e);
    }
}

#[test]
fn a_prefetch_error_surfaces_on_the_run_that_needs_the_batch_then_sticks() {
    let path = temp("prefetch-error.minidb");
    let db = open_db("minidb", &path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    for i in 0..4 {
        let value = if i == 2 {
            b"\xff\xff not a proto".to_vec()
        } else {
            TensorProtos {
                protos: vec![tensor_to_proto(&floats(&[1], i as f32)).unwrap()],
            }
            .encode_to_vec()
        };
        t.put(format!("k{i}").as_bytes(), &value).unwrap();
    }
    t.commit().unwrap();
    drop(t);
    drop(db);
    let ws = Workspace::new();
    create_db(&ws, "minidb", &path).unwrap();
    let input = input_op(
        &ws,
        &["x"],
        vec![arg_i("prefetch_depth", 2), arg_i("num_decode_threads", 2)],
    )
    .unwrap();
    run_operator(input.as_ref()).unwrap();
    run_operator(input.as_ref()).unwrap();
    assert_eq!(
        ws.get_blob("x")
            .unwrap()
            .tensor()
            .unwrap()
            .typed::<f32>()
            .unwrap(),
        &[1.0]
    );
    let e = run_operator(input.as_ref()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    assert!(e.message().contains("record 'k2'"), "{}", e.message());
    assert_eq!(run_operator(input.as_ref()).unwrap_err(), e);
    // Dropping the operator joins its threads.
    drop(input);
}

#[test]
fn a_record_with_the_wrong_tensor_count_names_the_key() {
    let path = temp("count.minidb");
    write_records(
        &path,
        &[("only".into(), vec![floats(&[1], 1.0), floats(&[1], 2.0)])],
    );
    let ws = Workspace::new();
    create_db(&ws, "minidb", &path).unwrap();
    let input = input_op(&ws, &["x"], vec![]).unwrap();
    let e = run_operator(input.as_ref()).unwrap_err();
    assert!(
        e.message()
            .contains("record 'only' has 2 TensorProtos, the op has 1 outputs"),
        "{}",
        e.message()
    );
}

#[test]
fn a_truncated_db_is_an_error_naming_the_path_not_a_shorter_dataset() {
    let path = temp("truncated.minidb");
    write_records(
        &path,
        &[
            ("a".into(), vec![floats(&[4], 1.0)]),
            ("b".into(), vec![floats(&[4], 2.0)]),
        ],
    );
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let ws = Workspace::new();
    create_db(&ws, "minidb", &path).unwrap();
    let input = input_op(&ws, &["x"], vec![arg_i("batch_size", 2)]).unwrap();
    let e = run_operator(input.as_ref()).unwrap_err();
    assert!(e.message().contains(&path), "{}", e.message());
}

#[test]
fn create_db_reports_missing_names_paths_and_unknown_types() {
    let ws = Workspace::new();
    let e = ws
        .run_operator_once(&op(
            "CreateDB",
            &[],
            &["r"],
            vec![arg_s("db_type", "minidb")],
        ))
        .unwrap_err();
    assert!(
        e.message().contains("Must specify a db name."),
        "{}",
        e.message()
    );
    let e = create_db(&ws, "foodb", "/tmp/x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.message().contains("Unknown db type: foodb"),
        "{}",
        e.message()
    );
    let missing = temp("missing.minidb");
    let e = create_db(&ws, "minidb", &missing).unwrap_err();
    assert!(e.message().contains(&missing), "{}", e.message());
    // Zero-length keys cannot be written (C++ wrote unreadable records).
    let db = open_db("minidb", &temp("zero-key.minidb"), Mode::New).unwrap();
    let e = db.new_transaction().unwrap().put(b"", b"v").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Enforce);
    // The reader blob has the DBReader type.
    create_db(&ws, "minidb", &golden("records.minidb")).unwrap();
    assert_eq!(
        ws.get_blob("reader").unwrap().type_name(),
        "std::unique_ptr<caffe2::db::DBReader>"
    );
    // TensorProtosDBInput on a blob that is not a reader says so.
    ws.create_blob("notreader")
        .unwrap()
        .set_tensor(floats(&[1], 0.0));
    let e = ws
        .run_operator_once(&op("TensorProtosDBInput", &["notreader"], &["x"], vec![]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch);
}

#[test]
fn rerunning_create_db_rewinds_the_input() {
    let path = temp("rewind.minidb");
    let recs: Vec<(String, Vec<Tensor>)> = (0..5)
        .map(|i| (format!("k{i}"), vec![floats(&[1], i as f32)]))
        .collect();
    write_records(&path, &recs);
    let ws = Workspace::new();
    create_db(&ws, "minidb", &path).unwrap();
    let input = input_op(&ws, &["x"], vec![arg_i("batch_size", 2)]).unwrap();
    let x = || {
        ws.get_blob("x")
            .unwrap()
            .tensor()
            .unwrap()
            .typed::<f32>()
            .unwrap()
            .to_vec()
    };
    run_operator(input.as_ref()).unwrap();
    run_operator(input.as_ref()).unwrap();
    assert_eq!(x(), [2.0, 3.0]);
    create_db(&ws, "minidb", &path).unwrap();
    run_operator(input.as_ref()).unwrap();
    assert_eq!(x(), [0.0, 1.0]);
}

#[test]
fn db_exists_answers_for_known_types_and_rejects_unknown_ones() {
    let dir = temp("exists-root");
    std::fs::create_dir_all(&dir).unwrap();
    write_records(
        &format!("{dir}/here.minidb"),
        &[("a".into(), vec![floats(&[1], 1.0)])],
    );
    let ws = Workspace::with_root(&dir);
    let exists = |name: &str, ty: &str, absolute: bool| {
        ws.run_operator_once(&op(
            "DBExists",
            &[],
            &["e"],
            vec![
                arg_s("db_name", name),
                arg_s("db_type", ty),
                arg_i("absolute_path", i64::from(absolute)),
            ],
        ))
        .map(|()| ws.get_blob("e").unwrap().tensor().unwrap().bytes().unwrap()[0] == 1)
    };
    assert!(exists("here.minidb", "minidb", false).unwrap());
    assert!(!exists("absent.minidb", "minidb", false).unwrap());
    assert!(exists(&format!("{dir}/here.minidb"), "minidb", true).unwrap());
    assert!(!exists("here.minidb", "minidb", true).unwrap());
    let t = ws.get_blob("e").unwrap().tensor().unwrap();
    assert_eq!((t.dtype(), t.dims()), (DataType::Bool, &[][..]));
    let e = exists("here.minidb", "foodb", false).unwrap_err();
    assert!(
        e.message().contains("Unknown db type: foodb"),
        "{}",
        e.message()
    );
}

fn ten_row_lmdb(name: &str) -> String {
    let path = temp(name);
    let db = open_db("lmdb", &path, Mode::New).unwrap();
    let mut t = db.new_transaction().unwrap();
    for i in 0..10 {
        let k = format!("{i:02}");
        t.put(k.as_bytes(), k.as_bytes()).unwrap();
    }
    t.commit().unwrap();
    path
}

// Ported from caffe2/core/db_test.cc DBReaderTest (serialisation part): after Seek("05") the
// serialised reader names its source, type and key "05"; deserialising gives a reader whose
// cursor is at "05".
#[test]
fn db_reader_blob_serializes_with_its_key_and_deserializes_at_it() {
    let path = ten_row_lmdb("reader-ser");
    let ws = Workspace::new();
    create_db(&ws, "lmdb", &path).unwrap();
    let blob = ws.get_blob("reader").unwrap();
    let reader = blob.native::<DbReader>().unwrap();
    reader.with_cursor(|c| c.seek(b"05")).unwrap();
    let proto = serialize_blob_to_proto("saved_reader", &blob.read()).unwrap();
    assert_eq!(proto.name.as_deref(), Some(&b"saved_reader"[..]));
    assert_eq!(proto.r#type.as_deref(), Some("DBReader"));
    let content = DbReaderProto::decode(proto.content.as_deref().unwrap()).unwrap();
    assert_eq!(content.source.as_deref(), Some(path.as_bytes()));
    assert_eq!(content.db_type.as_deref(), Some("lmdb"));
    assert_eq!(content.key.as_deref(), Some(&b"05"[..]));
    let bytes = proto.encode_to_vec();
    let restored = ws.create_blob("restored").unwrap();
    deserialize_blob(
        BlobProto::decode(bytes.as_slice()).unwrap(),
        &restored,
        true,
    )
    .unwrap();
    let r = restored.native::<DbReader>().unwrap();
    assert_eq!(r.with_cursor(|c| Ok(c.key().to_vec())).unwrap(), b"05");
    assert_eq!(r.read().unwrap().0, b"05");
    assert_eq!(r.read().unwrap().0, b"06");
    // minidb cursors cannot seek: no key is written.
    create_db(&ws, "minidb", &golden("records.minidb")).unwrap();
    let p = serialize_blob_to_proto("m", &ws.get_blob("reader").unwrap().read()).unwrap();
    assert!(
        DbReaderProto::decode(p.content.as_deref().unwrap())
            .unwrap()
            .key
            .is_none()
    );
}

// Ported from caffe2/python/examples/lmdb_create_example.py: 128 records [FLOAT (3,64,32) from
// float_data, INT32 scalar label], keys "0".."127"; 4 runs of batch 32; the checksum
// Σ sum(img)·label over the runs matches the writer's (records in lexicographic key order).
#[test]
fn lmdb_create_example_checksum_matches_the_writer() {
    let path = temp("lmdb-create-example");
    let db = open_db("lmdb", &path, Mode::New).unwrap();
    let mut txn = db.new_transaction().unwrap();
    let mut by_key = std::collections::BTreeMap::new();
    let mut state = 12345u32;
    for j in 0..128 {
        let mut img = Vec::with_capacity(3 * 64 * 32);
        for _ in 0..3 * 64 * 32 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            img.push((state >> 16) as f32 / 65536.0);
        }
        let label = j % 10;
        let value = TensorProtos {
            protos: vec![
                tensor_to_proto(&Tensor::from_slice(DataType::Float, &[3, 64, 32], &img).unwrap())
                    .unwrap(),
                tensor_to_proto(&Tensor::from_slice(DataType::Int32, &[], &[label]).unwrap())
                    .unwrap(),
            ],
        };
        let key = j.to_string();
        txn.put(key.as_bytes(), &value.encode_to_vec()).unwrap();
        let sum: f64 = img.iter().map(|&v| f64::from(v)).sum();
        by_key.insert(key, sum * f64::from(label));
    }
    txn.commit().unwrap();
    drop(txn);
    drop(db);
    let writer_checksum: f64 = by_key.values().sum();

    let ws = Workspace::new();
    create_db(&ws, "lmdb", &path).unwrap();
    let input = input_op(&ws, &["X", "Y"], vec![arg_i("batch_size", 32)]).unwrap();
    let mut checksum = 0.0f64;
    for _ in 0..4 {
        run_operator(input.as_ref()).unwrap();
        let x = ws.get_blob("X").unwrap().tensor().unwrap();
        let y = ws.get_blob("Y").unwrap().tensor().unwrap();
        assert_eq!(x.dims(), &[32, 3, 64, 32]);
        assert_eq!(y.dims(), &[32]);
        let per = 3 * 64 * 32;
        for (k, &label) in y.typed::<i32>().unwrap().iter().enumerate() {
            let s: f64 = x.typed::<f32>().unwrap()[k * per..(k + 1) * per]
                .iter()
                .map(|&v| f64::from(v))
                .sum();
            checksum += s * f64::from(label);
        }
    }
    assert!(
        (checksum - writer_checksum).abs() < 0.1,
        "{checksum} vs {writer_checksum}"
    );
}
