//! The golden minidb, LMDB and LevelDB files (written by an independent reference writer,
//! py-lmdb, and Google's C++ LevelDB 1.22 with Snappy) yield exactly the records of
//! tests/data/golden/db/manifest.json, in order, and wrap around.

use caffe2rs::db::{DbReader, Mode, open_db};
use caffe2rs::proto::TensorProtos;
use caffe2rs::tensor::tensor_from_proto;
use prost::Message;
use serde_json::Value;

mod support;
use support::{
    GOLDEN_RECORD_DBS, assert_tensor_matches, golden_db as golden, golden_db_source, json_dims,
    values_json as values_of,
};

fn manifest() -> Value {
    serde_json::from_str(&std::fs::read_to_string(golden("manifest.json")).expect("manifest"))
        .expect("JSON")
}

fn check_record(key: &[u8], value: &[u8], expected: &Value) {
    assert_eq!(
        std::str::from_utf8(key).unwrap(),
        expected["key"].as_str().unwrap()
    );
    let protos = TensorProtos::decode(value).expect("value is a TensorProtos");
    let tensors = expected["tensors"].as_array().unwrap();
    assert_eq!(protos.protos.len(), tensors.len());
    for (proto, want) in protos.protos.iter().zip(tensors) {
        assert_tensor_matches(&tensor_from_proto(proto).unwrap(), want);
    }
}

#[test]
fn golden_minidb_lmdb_and_leveldb_hold_the_manifest_records_in_order() {
    let manifest = manifest();
    let records = manifest["records"].as_array().unwrap();
    assert_eq!(records.len(), 10);
    for (db_type, file) in GOLDEN_RECORD_DBS {
        let source = golden_db_source(db_type, file, "in-order");
        let db = open_db(db_type, &source, Mode::Read).unwrap();
        let mut cursor = db.new_cursor().unwrap();
        for expected in records {
            assert!(cursor.valid(), "{db_type}: too few records");
            check_record(cursor.key(), cursor.value(), expected);
            cursor.next().unwrap();
        }
        assert!(!cursor.valid(), "{db_type}: more records than the manifest");
    }
}

#[test]
fn golden_dbs_wrap_around_through_a_reader() {
    let manifest = manifest();
    let records = manifest["records"].as_array().unwrap();
    for (db_type, file) in GOLDEN_RECORD_DBS {
        let source = golden_db_source(db_type, file, "wrap");
        let reader = DbReader::open(db_type, &source, 1, 0).unwrap();
        for i in 0..25 {
            let (k, v) = reader.read().unwrap();
            check_record(&k, &v, &records[i % records.len()]);
        }
    }
}

#[test]
fn golden_checkpoint_holds_tensor_blob_protos() {
    let manifest = manifest();
    let blobs = manifest["checkpoint.minidb"]["blobs"].as_array().unwrap();
    let db = open_db("minidb", &golden("checkpoint.minidb"), Mode::Read).unwrap();
    let mut cursor = db.new_cursor().unwrap();
    let mut seen = 0;
    while cursor.valid() {
        let blob = caffe2rs::proto::BlobProto::decode(cursor.value()).unwrap();
        assert_eq!(blob.r#type.as_deref(), Some("Tensor"));
        let name = String::from_utf8(blob.name.clone().unwrap()).unwrap();
        let want = blobs
            .iter()
            .find(|b| b["name"] == name.as_str())
            .expect("blob listed in the manifest");
        let t = tensor_from_proto(blob.tensor.as_ref().unwrap()).unwrap();
        assert_eq!(t.dtype().name(), want["data_type"].as_str().unwrap());
        assert_eq!(values_of(&t), *want["values"].as_array().unwrap());
        seen += 1;
        cursor.next().unwrap();
    }
    assert_eq!(seen, blobs.len());
}

/// TensorProtosDBInput semantics through the host batch reader: batches of 4 and 3 over the
/// golden DBs are `[B] + dims` stacks of consecutive records, wrapping to the first record.
#[test]
fn golden_dbs_batch_in_record_order_and_wrap() {
    use caffe2rs::db::{BatchAssembler, BatchReader};
    use std::sync::Arc;
    let manifest = manifest();
    let records = manifest["records"].as_array().unwrap();
    for (db_type, file) in GOLDEN_RECORD_DBS {
        let source = golden_db_source(db_type, file, "batches");
        for (batch_size, threads) in [(4usize, 2usize), (3, 0), (3, 1)] {
            let reader = Arc::new(DbReader::open(db_type, &source, 1, 0).unwrap());
            let br = BatchReader::new(
                reader,
                BatchAssembler {
                    batch_size,
                    num_outputs: 4,
                },
                2,
                threads,
            )
            .unwrap();
            let mut next_record = 0usize;
            for _ in 0..5 {
                let batch = br.next().unwrap();
                assert_eq!(batch.len(), 4);
                for (o, out) in batch.iter().enumerate() {
                    let want = &records[0]["tensors"][o];
                    let mut dims = vec![batch_size as i64];
                    dims.extend(json_dims(&want["dims"]));
                    assert_eq!(
                        out.dims(),
                        dims.as_slice(),
                        "{db_type} B={batch_size} output {o}"
                    );
                    let per_row = values_of(out).len() / batch_size;
                    for k in 0..batch_size {
                        let expected =
                            &records[(next_record + k) % records.len()]["tensors"][o]["values"];
                        assert_eq!(
                            &values_of(out)[k * per_row..(k + 1) * per_row],
                            expected.as_array().unwrap().as_slice()
                        );
                    }
                }
                next_record += batch_size;
            }
        }
    }
}
