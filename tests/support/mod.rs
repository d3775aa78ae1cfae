//! Helpers shared by the operator-level integration tests (DB ops, Load/Save, queues, golden
//! DBs): OperatorDef/Argument builders, blob feed/fetch,
//! golden-file paths and tensor values as JSON (to compare with the golden manifests).
//! Each test crate uses a different subset. `child` runs a test case in a child process;
//! `hostile` classifies and replays the reproducers under tests/data/hostile.
#![allow(dead_code)]

pub mod child;
pub mod hostile;

use std::path::PathBuf;

use caffe2rs::proto::{Argument, OperatorDef};
use caffe2rs::tensor::{DataType, Tensor};
use caffe2rs::workspace::Workspace;
use serde_json::Value;

/// Path of `name` under tests/data/golden/`folder`.
pub fn golden(folder: &str, name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(folder)
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Path of `name` under tests/data/golden/db.
pub fn golden_db(name: &str) -> String {
    golden("db", name)
}

/// A fresh copy of the golden LevelDB directory `name`, private to `tag` (and this process):
/// opening a LevelDB writes to its directory (LOCK, LOG, a new MANIFEST and log), and the
/// golden copy must stay byte-identical to ../shared/golden.
pub fn golden_leveldb_copy(name: &str, tag: &str) -> String {
    let dst = std::env::temp_dir().join(format!("c2rs-golden-{}-{tag}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).expect("temp dir");
    for entry in std::fs::read_dir(golden_db(name)).expect("golden LevelDB directory") {
        let entry = entry.expect("directory entry");
        std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy golden file");
    }
    dst.to_string_lossy().into_owned()
}

/// Where to open golden `file` as `db_type`: minidb and LMDB in place (opened read-only),
/// LevelDB as a private copy (see `golden_leveldb_copy`).
pub fn golden_db_source(db_type: &str, file: &str, tag: &str) -> String {
    if db_type.eq_ignore_ascii_case("leveldb") {
        golden_leveldb_copy(file, tag)
    } else {
        golden_db(file)
    }
}

/// The golden record DBs: (db_type, file), every type the library reads.
pub const GOLDEN_RECORD_DBS: [(&str, &str); 3] = [
    ("minidb", "records.minidb"),
    ("lmdb", "records.lmdb"),
    ("leveldb", "records.leveldb"),
];

/// A golden manifest's `dims` array.
pub fn json_dims(dims: &Value) -> Vec<i64> {
    dims.as_array()
        .expect("dims array")
        .iter()
        .map(|d| d.as_i64().expect("integer dim"))
        .collect()
}

/// `t` has the manifest entry's `data_type`, `dims` and `values`.
pub fn assert_tensor_matches(t: &Tensor, want: &Value) {
    assert_eq!(t.dtype().name(), want["data_type"].as_str().unwrap());
    assert_eq!(t.dims(), json_dims(&want["dims"]).as_slice());
    assert_eq!(values_json(t), *want["values"].as_array().unwrap());
}

pub fn op(ty: &str, inputs: &[&str], outputs: &[&str], args: Vec<Argument>) -> OperatorDef {
    OperatorDef {
        r#type: Some(ty.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        arg: args,
        ..Default::default()
    }
}

pub fn arg_i(name: &str, v: i64) -> Argument {
    Argument {
        name: Some(name.into()),
        i: Some(v),
        ..Default::default()
    }
}

pub fn arg_f(name: &str, v: f32) -> Argument {
    Argument {
        name: Some(name.into()),
        f: Some(v),
        ..Default::default()
    }
}

pub fn arg_s(name: &str, v: &str) -> Argument {
    Argument {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

pub fn arg_floats(name: &str, v: &[f32]) -> Argument {
    Argument {
        name: Some(name.into()),
        floats: v.to_vec(),
        ..Default::default()
    }
}

pub fn arg_ints(name: &str, v: &[i64]) -> Argument {
    Argument {
        name: Some(name.into()),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn arg_strings(name: &str, v: &[&str]) -> Argument {
    Argument {
        name: Some(name.into()),
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// Stores `t` in blob `name` (created if missing).
pub fn feed(ws: &Workspace, name: &str, t: Tensor) {
    ws.create_blob(name)
        .expect("blob can be created")
        .set_tensor(t);
}

/// The tensor in blob `name`; panics when there is none.
pub fn fetch(ws: &Workspace, name: &str) -> Tensor {
    ws.get_blob(name)
        .expect("blob exists")
        .tensor()
        .expect("blob holds a tensor")
}

/// Every element of `t` as a JSON value, in row-major order (floats exactly, as f64).
pub fn values_json(t: &Tensor) -> Vec<Value> {
    fn each<T: caffe2rs::tensor::Pod>(t: &Tensor, to: impl Fn(T) -> Value) -> Vec<Value> {
        t.typed::<T>()
            .expect("dtype matches")
            .iter()
            .map(|&v| to(v))
            .collect()
    }
    match t.dtype() {
        DataType::Byte | DataType::Uint8 => each::<u8>(t, Value::from),
        DataType::Int8 => each::<i8>(t, Value::from),
        DataType::Int16 => each::<i16>(t, Value::from),
        DataType::Uint16 => each::<u16>(t, Value::from),
        DataType::Int32 => each::<i32>(t, Value::from),
        DataType::Int64 => each::<i64>(t, Value::from),
        DataType::Float => each::<f32>(t, |v| Value::from(f64::from(v))),
        DataType::Double => each::<f64>(t, Value::from),
        DataType::Bool => each::<u8>(t, |v| Value::from(v != 0)),
        DataType::String => t
            .strings()
            .expect("strings")
            .iter()
            .map(|s| Value::from(String::from_utf8_lossy(s).into_owned()))
            .collect(),
        DataType::Float16 => panic!("FLOAT16 values are compared as bits in these tests"),
    }
}
