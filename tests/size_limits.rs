//! Sizes callers and files give, through the C ABI (issue 11): sizes the caller really asks
//! for fail with "out of memory allocating N bytes" (C2RS_INTERNAL) instead of aborting;
//! thread counts, prefetch depth and batch sizes have documented maximums; sizes from files
//! are checked against the bytes behind them (partial chunks, DLPack shapes, memonger sizes).
//! Cases that really allocate run in a child process under an address-space limit, so the
//! result does not depend on the machine's memory and a regression cannot abort the runner.

use std::ffi::{CStr, CString};
use std::ptr::null_mut;
use std::time::Duration;

use caffe2rs::ffi::db::{
    C2RS_MAX_BATCH_SIZE, C2RS_MAX_PREFETCH_DEPTH, C2RS_MAX_PREFETCH_THREADS,
    c2rs_batch_reader_free, c2rs_batch_reader_new, c2rs_db_reader_free, c2rs_db_reader_new,
    c2rs_workspace_deserialize_blob,
};
use caffe2rs::ffi::handle::c2rs_workspace;
use caffe2rs::ffi::memonger::{
    c2rs_memonger_compute_assignments, c2rs_memonger_plan, c2rs_memory_plan_free,
};
use caffe2rs::ffi::status::*;
use caffe2rs::ffi::tensor::{
    C2RS_DTYPE_FLOAT, C2RS_DTYPE_STRING, C2RS_MAX_IMPLICIT_ZERO_BYTES, c2rs_tensor_free,
    c2rs_tensor_from_proto, c2rs_tensor_new,
};
use caffe2rs::ffi::version::c2rs_last_error_message;
use caffe2rs::ffi::workspace::{
    c2rs_workspace_create_net, c2rs_workspace_fetch, c2rs_workspace_free, c2rs_workspace_new,
    c2rs_workspace_run_operator_once,
};
use caffe2rs::proto::tensor_proto::Segment;
use caffe2rs::proto::{
    Argument, BlobProto, NetDef, OperatorDef, TensorProto, TensorShape, TensorShapes,
};
use caffe2rs::tensor::{DataType, Tensor};
use prost::Message;

mod support;
use support::hostile::Scratch;
use support::{arg_i, arg_s, arg_strings, child, golden_db, op};

const OOM_TEST: &str = "sizes_the_caller_asks_for_fail_as_out_of_memory_instead_of_aborting";

fn message() -> String {
    // SAFETY: this thread's current message, read right after the failing call.
    unsafe { CStr::from_ptr(c2rs_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn new_ws() -> *mut c2rs_workspace {
    let mut ws = null_mut();
    assert_eq!(c2rs_workspace_new(null_mut(), &mut ws), C2RS_OK);
    ws
}

fn run(ws: *mut c2rs_workspace, def: &OperatorDef) -> (i32, String) {
    let bytes = def.encode_to_vec();
    let st = c2rs_workspace_run_operator_once(ws, bytes.as_ptr(), bytes.len());
    (
        st,
        if st == C2RS_OK {
            String::new()
        } else {
            message()
        },
    )
}

fn arg_ints(name: &str, v: &[i64]) -> Argument {
    Argument {
        name: Some(name.into()),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// In a child with a limited address space: the case's status and message.
fn oom_case(case: &str) -> (i32, String) {
    match case {
        "tensor_new_string_2e31" => {
            let dims = [1i64 << 31];
            let mut t = null_mut();
            let st = c2rs_tensor_new(C2RS_DTYPE_STRING, dims.as_ptr(), 1, &mut t);
            let m = if st == C2RS_OK {
                String::new()
            } else {
                message()
            };
            c2rs_tensor_free(t);
            (st, m)
        }
        "constant_fill_string_2e31" | "constant_fill_string_value_copies" => {
            let ws = new_ws();
            let mut args = vec![
                arg_i("dtype", DataType::String.as_i32() as i64),
                arg_ints("shape", &[1 << 31]),
            ];
            if case == "constant_fill_string_value_copies" {
                // 1024 copies of a 1 MiB string under a 512 MiB limit: the headers fit, the
                // copies do not.
                args = vec![
                    arg_i("dtype", DataType::String.as_i32() as i64),
                    arg_ints("shape", &[1024]),
                    arg_s("value", &"v".repeat(1 << 20)),
                ];
            }
            let r = run(ws, &op("ConstantFill", &[], &["y"], args));
            c2rs_workspace_free(ws);
            r
        }
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn sizes_the_caller_asks_for_fail_as_out_of_memory_instead_of_aborting() {
    if let Some(case) = child::case() {
        let (status, message) = oom_case(&case);
        child::report("status", &status.to_string());
        child::report("message", &message);
        return;
    }
    for (case, limit, part) in [
        (
            "tensor_new_string_2e31",
            4u64 << 30,
            "out of memory allocating 51539607552 bytes for 2147483648 STRING elements",
        ),
        (
            "constant_fill_string_2e31",
            4 << 30,
            "out of memory allocating 51539607552 bytes",
        ),
        (
            "constant_fill_string_value_copies",
            512 << 20,
            "out of memory allocating 1073741824 bytes for 1024 copies of a 1048576-byte string",
        ),
    ] {
        let out = child::run(
            OOM_TEST,
            case,
            Duration::from_secs(120),
            &[(child::CHILD_MEMORY_ENV, &limit.to_string())],
        );
        assert!(out.passed(), "{case}: {}", out.describe());
        assert_eq!(out.get("status"), C2RS_INTERNAL.to_string(), "{case}");
        assert!(
            out.get("message").contains(part),
            "{case}: {}",
            out.get("message")
        );
    }
}

const BACKED_OOM_TEST: &str =
    "a_backed_tensor_proto_that_memory_cannot_hold_is_out_of_memory_not_a_parse_error";

/// This process's address space in use, in bytes (/proc/self/statm: size in pages).
fn address_space_in_use() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("statm size");
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).expect("page size")
}

#[test]
fn a_backed_tensor_proto_that_memory_cannot_hold_is_out_of_memory_not_a_parse_error() {
    // A FLOAT [N/2] TensorProto carrying its elements as bfloat16 halves in N bytes of
    // raw_data: every size in it is backed by bytes, so the input is not at fault when the
    // tensor (2N bytes) cannot be allocated. Decoding holds N bytes (2N while prost copies
    // the field), the tensor needs 2N more.
    const N: usize = 32 << 20;
    if child::case().is_some() {
        let proto = TensorProto {
            dims: vec![(N / 2) as i64],
            data_type: Some(DataType::Float.as_i32()),
            data_format: Some(1),
            raw_data: Some(vec![0x3f; N]),
            ..Default::default()
        }
        .encode_to_vec();
        // Room for decoding (2N), not for the decoded field and the tensor (3N).
        let limit = (address_space_in_use() + 2 * N + N / 2) as libc::rlim_t;
        let lim = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: setrlimit reads a valid struct; it only limits this child process.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
        let mut t = null_mut();
        let st = c2rs_tensor_from_proto(proto.as_ptr(), proto.len(), &mut t);
        let m = if st == C2RS_OK {
            String::new()
        } else {
            message()
        };
        child::report("out_is_null", &t.is_null().to_string());
        c2rs_tensor_free(t);
        child::report("status", &st.to_string());
        child::report("message", &m);
        return;
    }
    let out = child::run(
        BACKED_OOM_TEST,
        "bfloat16_32mib",
        Duration::from_secs(120),
        // No default limit: the child sets its own once the input is built.
        &[(child::CHILD_MEMORY_ENV, "0")],
    );
    assert!(out.passed(), "{}", out.describe());
    assert_eq!(
        out.get("status"),
        C2RS_INTERNAL.to_string(),
        "{}",
        out.get("message")
    );
    assert!(
        out.get("message").starts_with(&format!(
            "c2rs_tensor_from_proto: out of memory allocating {} bytes",
            2 * N
        )),
        "{}",
        out.get("message")
    );
    assert_eq!(out.get("out_is_null"), "true");
}

#[test]
fn huge_shapes_are_out_of_memory_with_their_size_in_process() {
    // 2^46 elements exceed every address space: refused by the allocator, never an abort.
    let dims = [1i64 << 46];
    for (dtype, bytes) in [
        (C2RS_DTYPE_FLOAT, 1u64 << 48),
        (C2RS_DTYPE_STRING, (1u64 << 46) * 24),
    ] {
        let mut t = null_mut();
        assert_eq!(
            c2rs_tensor_new(dtype, dims.as_ptr(), 1, &mut t),
            C2RS_INTERNAL
        );
        assert!(t.is_null());
        assert!(
            message().starts_with(&format!(
                "c2rs_tensor_new: out of memory allocating {bytes} bytes"
            )),
            "{}",
            message()
        );
    }
    let ws = new_ws();
    let (st, m) = run(
        ws,
        &op(
            "ConstantFill",
            &[],
            &["y"],
            vec![arg_ints("shape", &[1 << 46])],
        ),
    );
    assert_eq!(st, C2RS_INTERNAL);
    assert!(
        m.contains("out of memory allocating 281474976710656 bytes"),
        "{m}"
    );
    c2rs_workspace_free(ws);
}

#[test]
fn batch_reader_limits_are_invalid_arguments_naming_the_argument() {
    let ty = CString::new("minidb").unwrap();
    let src = CString::new(golden_db("records.minidb")).unwrap();
    let mut reader = null_mut();
    assert_eq!(
        c2rs_db_reader_new(ty.as_ptr(), src.as_ptr(), 1, 0, &mut reader),
        C2RS_OK
    );
    for (batch, depth, threads, part) in [
        (
            1usize << 30,
            1,
            1,
            "batch_size 1073741824 exceeds the maximum 16777216",
        ),
        (4, 1, 1 << 20, "num_threads 1048576 exceeds the maximum 256"),
        (
            4,
            1 << 40,
            1,
            "prefetch depth 1099511627776 exceeds the maximum 1024",
        ),
    ] {
        let mut br = null_mut();
        assert_eq!(
            c2rs_batch_reader_new(reader, batch, 2, depth, threads, &mut br),
            C2RS_INVALID_ARGUMENT
        );
        assert!(br.is_null());
        assert!(message().contains(part), "{}", message());
    }
    // The maximums themselves are accepted (no prefetch threads: nothing is read yet).
    let mut br = null_mut();
    assert_eq!(
        c2rs_batch_reader_new(
            reader,
            C2RS_MAX_BATCH_SIZE,
            2,
            C2RS_MAX_PREFETCH_DEPTH,
            0,
            &mut br
        ),
        C2RS_OK
    );
    c2rs_batch_reader_free(br);
    assert_eq!(C2RS_MAX_PREFETCH_THREADS, 256);
    c2rs_db_reader_free(reader);
}

#[test]
fn tensor_protos_db_input_limits_are_enforce_errors_at_creation() {
    let ws = new_ws();
    let create = op(
        "CreateDB",
        &[],
        &["reader"],
        vec![
            arg_s("db_type", "minidb"),
            arg_s("db", &golden_db("records.minidb")),
        ],
    );
    assert_eq!(run(ws, &create).0, C2RS_OK);
    for (arg, value, part) in [
        (
            "batch_size",
            1i64 << 30,
            "TensorProtosDBInput: batch_size 1073741824 exceeds the maximum 16777216",
        ),
        (
            "num_decode_threads",
            1 << 20,
            "num_decode_threads 1048576 exceeds the maximum 256",
        ),
        (
            "prefetch_depth",
            1 << 40,
            "prefetch_depth 1099511627776 exceeds the maximum 1024",
        ),
    ] {
        let (st, m) = run(
            ws,
            &op(
                "TensorProtosDBInput",
                &["reader"],
                &["data", "label"],
                vec![arg_i(arg, value)],
            ),
        );
        assert_eq!(st, C2RS_ENFORCE_NOT_MET, "{arg}: {m}");
        assert!(m.contains(part), "{m}");
    }
    c2rs_workspace_free(ws);
}

#[test]
fn dag_num_workers_above_the_maximum_is_an_enforce_error() {
    let ws = new_ws();
    #[allow(deprecated)]
    let net = NetDef {
        name: Some("wide".into()),
        r#type: Some("dag".into()),
        num_workers: Some(i32::MAX),
        op: vec![
            op("ConstantFill", &[], &["a"], vec![arg_ints("shape", &[1])]),
            op("ConstantFill", &[], &["b"], vec![arg_ints("shape", &[1])]),
        ],
        ..Default::default()
    };
    let bytes = net.encode_to_vec();
    assert_eq!(
        c2rs_workspace_create_net(ws, bytes.as_ptr(), bytes.len(), false),
        C2RS_ENFORCE_NOT_MET
    );
    assert!(
        message().contains("num_workers 2147483647 exceeds the maximum 1024"),
        "{}",
        message()
    );
    c2rs_workspace_free(ws);
}

#[test]
fn a_single_chunk_beyond_the_zero_fill_allowance_is_a_parse_error() {
    let ws = new_ws();
    let name = CString::new("w").unwrap();
    let blob = |end: i64, dims: i64| {
        BlobProto {
            name: Some(b"w".to_vec()),
            r#type: Some("Tensor".into()),
            tensor: Some(TensorProto {
                dims: vec![dims],
                data_type: Some(DataType::Float.as_i32()),
                float_data: vec![1.0; end as usize],
                segment: Some(Segment { begin: 0, end }),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let allowance = (C2RS_MAX_IMPLICIT_ZERO_BYTES / 4) as i64;
    // Up to the allowance the chunk becomes a tensor, zero outside its segment (Caffe2).
    let ok = blob(1, allowance + 1);
    assert_eq!(
        c2rs_workspace_deserialize_blob(ws, name.as_ptr(), ok.as_ptr(), ok.len()),
        C2RS_OK
    );
    let mut t = null_mut();
    assert_eq!(c2rs_workspace_fetch(ws, name.as_ptr(), &mut t), C2RS_OK);
    c2rs_tensor_free(t);
    let bad = blob(1, allowance + 2);
    assert_eq!(
        c2rs_workspace_deserialize_blob(ws, name.as_ptr(), bad.as_ptr(), bad.len()),
        C2RS_PARSE_ERROR
    );
    assert!(
        message().contains("the 16777220 bytes outside it are not in the input"),
        "{}",
        message()
    );
    c2rs_workspace_free(ws);
}

#[test]
fn load_assembles_a_chunked_tensor_larger_than_the_zero_fill_allowance() {
    // 6M floats (24 MB) saved in chunks of 1M, loaded back exactly.
    let scratch = Scratch::new("load-chunked");
    let path = scratch.path().join("ckpt.minidb");
    let path = path.to_string_lossy().into_owned();
    let ws = caffe2rs::workspace::Workspace::new();
    let n = 6_000_000usize;
    let values: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let t = Tensor::from_slice(DataType::Float, &[2, (n / 2) as i64], &values).unwrap();
    ws.create_blob("w").unwrap().set_tensor(t.clone());
    let common = || {
        vec![
            arg_s("db", &path),
            arg_s("db_type", "minidb"),
            arg_i("absolute_path", 1),
        ]
    };
    let mut save = common();
    save.push(arg_i("chunk_size", 1_000_000));
    ws.run_operator_once(&op("Save", &["w"], &[], save))
        .unwrap();
    let mut load = common();
    load.push(arg_strings("source_blob_names", &["w"]));
    ws.run_operator_once(&op("Load", &[], &["w2"], load))
        .unwrap();
    assert_eq!(ws.get_blob("w2").unwrap().tensor().unwrap(), t);
    // A chunk of another shape in the middle of the blob's chunks is refused.
    let other = scratch.path().join("mixed.minidb");
    let other = other.to_string_lossy().into_owned();
    let chunk = |dims: i64, begin: i64| {
        BlobProto {
            name: Some(b"m".to_vec()),
            r#type: Some("Tensor".into()),
            tensor: Some(TensorProto {
                dims: vec![dims],
                data_type: Some(DataType::Float.as_i32()),
                float_data: vec![1.0],
                segment: Some(Segment {
                    begin,
                    end: begin + 1,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let db = caffe2rs::db::open_db("minidb", &other, caffe2rs::db::Mode::New).unwrap();
    let mut txn = db.new_transaction().unwrap();
    txn.put(b"m#%0", &chunk(2, 0)).unwrap();
    txn.put(b"m#%1", &chunk(3, 1)).unwrap();
    txn.commit().unwrap();
    drop(txn);
    let e = ws
        .run_operator_once(&op(
            "Load",
            &[],
            &[],
            vec![
                arg_s("db", &other),
                arg_s("db_type", "minidb"),
                arg_i("absolute_path", 1),
                arg_i("load_all", 1),
            ],
        ))
        .unwrap_err();
    assert!(e.message().contains("does not belong"), "{}", e.message());
}

fn shapes(sizes: &[(&str, i64)]) -> Vec<u8> {
    TensorShapes {
        shapes: sizes
            .iter()
            .map(|(n, d)| TensorShape {
                name: Some(n.as_bytes().to_vec()),
                dims: vec![*d],
                data_type: Some(DataType::Double.as_i32()),
                ..Default::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

#[test]
fn memonger_sizes_that_overflow_their_sum_are_invalid_arguments() {
    let net = NetDef {
        name: Some("n".into()),
        op: vec![
            op("Relu", &["x"], &["a"], vec![]),
            op("Relu", &["a"], &["b"], vec![]),
        ],
        external_input: vec!["x".into()],
        external_output: vec!["b".into()],
        ..Default::default()
    }
    .encode_to_vec();
    // Each size fits in int64 (2^60 elements of 8 bytes = 2^63 … minus one element); two
    // of them do not add up in it.
    let big = (1i64 << 60) - 1;
    let s = shapes(&[("x", big), ("a", big), ("b", 1)]);
    let mut plan = null_mut();
    assert_eq!(
        c2rs_memonger_plan(
            net.as_ptr(),
            net.len(),
            s.as_ptr(),
            s.len(),
            std::ptr::null(),
            0,
            &mut plan
        ),
        C2RS_INVALID_ARGUMENT
    );
    assert!(
        message().contains("the sizes add up to more than 2^63-1 bytes"),
        "{}",
        message()
    );
    c2rs_memory_plan_free(plan);
    // Live ranges given directly: an op position whose successor overflows, and sizes
    // whose sum does.
    let names: Vec<CString> = ["p", "q"]
        .iter()
        .map(|n| CString::new(*n).unwrap())
        .collect();
    let name_ptrs: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let mut out = null_mut();
    for (used, sizes, part) in [
        (
            [0i64, i64::MAX],
            [1i64, 1],
            "used[1] = 9223372036854775807 exceeds",
        ),
        (
            [1, 1],
            [i64::MAX, 1],
            "sizes add up to more than 2^63-1 bytes",
        ),
    ] {
        let defined = [0i64, 0];
        assert_eq!(
            c2rs_memonger_compute_assignments(
                name_ptrs.as_ptr(),
                defined.as_ptr(),
                used.as_ptr(),
                sizes.as_ptr(),
                2,
                std::ptr::null(),
                0,
                0,
                &mut out
            ),
            C2RS_INVALID_ARGUMENT
        );
        assert!(message().contains(part), "{}", message());
    }
}
