//! Blob and net names are UTF-8 strings of any content and length, byte for byte, through the
//! C ABI (issue 13 item 4): names with NUL bytes, non-ASCII text and 1 MB length go through
//! feed, fetch, operators (outputs found by their own name), nets created and run by name,
//! GetAllBlobNames, the string-list accessors, error messages and a Save/Load round trip;
//! names the C ABI cannot carry (bytes that are not UTF-8) are refused, never repaired.

use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

use caffe2rs::ffi::buffer::*;
use caffe2rs::ffi::handle::{c2rs_string_list, c2rs_tensor, c2rs_workspace};
use caffe2rs::ffi::tensor::*;
use caffe2rs::ffi::version::{
    c2rs_last_error_code, c2rs_last_error_message, c2rs_last_error_message_n,
};
use caffe2rs::ffi::workspace::*;
use caffe2rs::ffi::workspace_names::*;
use caffe2rs::proto::{Argument, NetDef, OperatorDef};
use prost::Message;

const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 2;
const NOT_FOUND: i32 = 3;
const PARSE_ERROR: i32 = 9;

/// A 1 MB name with NUL bytes and non-ASCII text inside.
fn megabyte_name() -> String {
    let mut s = "m".repeat(1 << 20);
    s.replace_range(10..11, "\0");
    s.replace_range(500_000..500_002, "é");
    s
}

/// The names every test runs through: NUL inside, NUL only, empty, non-ASCII, 1 MB.
fn hard_names() -> Vec<String> {
    vec![
        "a\0b".into(),
        "\0".into(),
        String::new(),
        "blob é 漢字 \u{1F600}".into(),
        "a\0".into(),
        megabyte_name(),
    ]
}

fn ptr(s: &str) -> *const c_char {
    s.as_ptr().cast()
}

fn message() -> String {
    // SAFETY: this thread's current message, read before any other call.
    unsafe { CStr::from_ptr(c2rs_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn exact_message() -> Vec<u8> {
    let mut len = usize::MAX;
    let p = c2rs_last_error_message_n(&mut len);
    // SAFETY: the exact message covers `len` bytes, followed by a NUL.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0);
    bytes[..len].to_vec()
}

fn new_ws() -> *mut c2rs_workspace {
    let mut ws = null_mut();
    assert_eq!(c2rs_workspace_new(null_mut(), &mut ws), OK);
    ws
}

fn floats(values: &[f32]) -> *mut c2rs_tensor {
    let mut t = null_mut();
    let dims = [values.len() as i64];
    assert_eq!(c2rs_tensor_new(1, dims.as_ptr(), 1, &mut t), OK);
    let mut data = null_mut();
    assert_eq!(c2rs_tensor_mutable_data(t, &mut data), OK);
    // SAFETY: a FLOAT tensor of `values.len()` elements.
    unsafe { std::slice::from_raw_parts_mut(data.cast::<f32>(), values.len()) }
        .copy_from_slice(values);
    t
}

fn values_of(t: *const c2rs_tensor) -> Vec<f32> {
    let mut n = 0;
    assert_eq!(c2rs_tensor_numel(t, &mut n), OK);
    let mut data = null();
    assert_eq!(c2rs_tensor_data(t, &mut data), OK);
    if n == 0 {
        return Vec::new();
    }
    // SAFETY: a FLOAT tensor of `n` elements.
    unsafe { std::slice::from_raw_parts(data.cast::<f32>(), n as usize) }.to_vec()
}

fn fetch_n(ws: *const c2rs_workspace, name: &str) -> Vec<f32> {
    let mut t = null_mut();
    assert_eq!(
        c2rs_workspace_fetch_n(ws, ptr(name), name.len(), &mut t),
        OK,
        "{}",
        message()
    );
    let v = values_of(t);
    c2rs_tensor_free(t);
    v
}

fn has_n(ws: *const c2rs_workspace, name: &str) -> bool {
    let mut out = false;
    assert_eq!(
        c2rs_workspace_has_blob_n(ws, ptr(name), name.len(), &mut out),
        OK
    );
    out
}

fn list_n(list: *mut c2rs_string_list) -> Vec<Vec<u8>> {
    let out = (0..c2rs_string_list_len(list))
        .map(|i| {
            let mut p = null();
            let mut len = 0;
            assert_eq!(c2rs_string_list_get_n(list, i, &mut p, &mut len), OK);
            // SAFETY: entry `i` covers `len` bytes.
            unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec()
        })
        .collect();
    c2rs_string_list_free(list);
    out
}

fn blob_names(ws: *const c2rs_workspace) -> Vec<Vec<u8>> {
    let mut list = null_mut();
    assert_eq!(c2rs_workspace_blob_names(ws, true, &mut list), OK);
    list_n(list)
}

fn sorted_bytes(names: &[String]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = names.iter().map(|s| s.as_bytes().to_vec()).collect();
    v.sort();
    v
}

fn op(ty: &str, inputs: &[&str], outputs: &[&str], args: Vec<Argument>) -> OperatorDef {
    OperatorDef {
        r#type: Some(ty.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        arg: args,
        ..Default::default()
    }
}

fn fill(output: &str, value: f32) -> OperatorDef {
    op(
        "ConstantFill",
        &[],
        &[output],
        vec![
            Argument {
                name: Some("shape".into()),
                ints: vec![2],
                ..Default::default()
            },
            Argument {
                name: Some("value".into()),
                f: Some(value),
                ..Default::default()
            },
        ],
    )
}

fn arg_s(name: &str, v: &str) -> Argument {
    Argument {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn run_op(ws: *mut c2rs_workspace, def: &OperatorDef) -> i32 {
    let bytes = def.encode_to_vec();
    c2rs_workspace_run_operator_once(ws, bytes.as_ptr(), bytes.len())
}

/// Replaces the first occurrence of `from` in `bytes` by `to` (same length).
fn patched(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    bytes[at..at + from.len()].copy_from_slice(to);
    bytes
}

#[test]
fn feed_and_fetch_keep_every_byte_of_the_name() {
    let ws = new_ws();
    for (k, name) in hard_names().iter().enumerate() {
        assert_eq!(
            c2rs_workspace_feed_move_n(ws, ptr(name), name.len(), floats(&[k as f32, 0.5])),
            OK
        );
    }
    for (k, name) in hard_names().iter().enumerate() {
        assert!(has_n(ws, name));
        assert_eq!(fetch_n(ws, name), [k as f32, 0.5]);
    }
    // Each name is its own blob: the C-string prefix of "a\0b" is another name.
    assert!(!has_n(ws, "a"));
    let mut out = true;
    assert_eq!(c2rs_workspace_has_blob(ws, c"a".as_ptr(), &mut out), OK);
    assert!(!out);
    assert_eq!(blob_names(ws), sorted_bytes(&hard_names()));

    // Copying feed, blob type, identity, rename and remove by exact name.
    let t = floats(&[7.0]);
    assert_eq!(c2rs_workspace_feed_n(ws, ptr("a\0b"), 3, t), OK);
    c2rs_tensor_free(t);
    assert_eq!(fetch_n(ws, "a\0b"), [7.0]);
    let mut ty = null();
    assert_eq!(c2rs_workspace_blob_type_n(ws, ptr("a\0b"), 3, &mut ty), OK);
    // SAFETY: a static type name.
    assert_eq!(unsafe { CStr::from_ptr(ty) }, c"caffe2::Tensor");
    let (mut id1, mut id2) = (null(), null());
    assert_eq!(c2rs_workspace_blob_id_n(ws, ptr("a\0b"), 3, &mut id1), OK);
    assert_eq!(
        c2rs_workspace_rename_blob_n(ws, ptr("a\0b"), 3, ptr("é\0"), 3),
        OK
    );
    assert_eq!(c2rs_workspace_blob_id_n(ws, ptr("é\0"), 3, &mut id2), OK);
    assert!(!id1.is_null());
    assert_eq!(id1, id2);
    assert!(!has_n(ws, "a\0b"));
    let mut removed = false;
    assert_eq!(
        c2rs_workspace_remove_blob_n(ws, ptr("é\0"), 3, &mut removed),
        OK
    );
    assert!(removed);
    assert_eq!(
        c2rs_workspace_remove_blob_n(ws, ptr("é\0"), 3, &mut removed),
        OK
    );
    assert!(!removed);

    // Byte-string blobs, created empty and local.
    assert_eq!(
        c2rs_workspace_feed_string_n(ws, ptr("s\0"), 2, b"v\0w".as_ptr(), 3),
        OK
    );
    let mut buf = null_mut();
    assert_eq!(
        c2rs_workspace_fetch_string_n(ws, ptr("s\0"), 2, &mut buf),
        OK
    );
    // SAFETY: the buffer covers its length.
    let got = unsafe { std::slice::from_raw_parts(c2rs_buffer_data(buf), c2rs_buffer_len(buf)) };
    assert_eq!(got, b"v\0w");
    c2rs_buffer_free(buf);
    assert_eq!(c2rs_workspace_create_blob_n(ws, ptr("e\0"), 2), OK);
    assert_eq!(c2rs_workspace_create_local_blob_n(ws, ptr("l\0"), 2), OK);
    assert!(has_n(ws, "e\0") && has_n(ws, "l\0"));
    c2rs_workspace_free(ws);
}

#[test]
fn names_that_are_not_utf8_are_refused_and_nothing_is_created() {
    let ws = new_ws();
    let bad = b"x\xffy";
    let t = floats(&[1.0]);
    assert_eq!(
        c2rs_workspace_feed_n(ws, bad.as_ptr().cast(), bad.len(), t),
        INVALID_ARGUMENT
    );
    c2rs_tensor_free(t);
    assert_eq!(
        message(),
        "c2rs_workspace_feed_n: argument `name` is not valid UTF-8 (byte 1 of 3); blob and net \
         names are UTF-8 strings"
    );
    assert_eq!(
        c2rs_workspace_create_blob_n(ws, bad.as_ptr().cast(), bad.len()),
        INVALID_ARGUMENT
    );
    assert_eq!(
        c2rs_workspace_create_blob_n(ws, null(), 4),
        INVALID_ARGUMENT
    );
    assert!(message().contains("`name` is NULL with length 4"));
    assert!(blob_names(ws).is_empty());
    // Length 0 with NULL is the empty name.
    assert_eq!(c2rs_workspace_create_blob_n(ws, null(), 0), OK);
    assert_eq!(blob_names(ws), [Vec::<u8>::new()]);
    c2rs_workspace_free(ws);
}

#[test]
fn operator_outputs_are_found_by_their_own_name() {
    let ws = new_ws();
    for (k, name) in hard_names().iter().enumerate() {
        assert_eq!(run_op(ws, &fill(name, k as f32)), OK, "{}", message());
        let copy = format!("copy of {name}");
        assert_eq!(run_op(ws, &op("Copy", &[name], &[&copy], vec![])), OK);
        assert_eq!(fetch_n(ws, name), [k as f32; 2]);
        assert_eq!(fetch_n(ws, &copy), [k as f32; 2]);
    }
    let mut want = hard_names();
    want.extend(hard_names().iter().map(|n| format!("copy of {n}")));
    assert_eq!(blob_names(ws), sorted_bytes(&want));
    c2rs_workspace_free(ws);
}

#[test]
fn a_missing_input_message_keeps_the_name_exact() {
    let ws = new_ws();
    assert_ne!(run_op(ws, &op("Copy", &["no\0such"], &["y"], vec![])), OK);
    assert_eq!(
        message(),
        "c2rs_workspace_run_operator_once: op Copy: Encountered a non-existing input blob: no\\0such"
    );
    assert_eq!(
        exact_message(),
        b"c2rs_workspace_run_operator_once: op Copy: Encountered a non-existing input blob: no\0such"
    );
    let mut t = null_mut();
    assert_eq!(
        c2rs_workspace_fetch_n(ws, ptr("x\0y"), 3, &mut t),
        NOT_FOUND
    );
    assert_eq!(c2rs_last_error_code(), NOT_FOUND);
    assert_eq!(
        exact_message(),
        b"c2rs_workspace_fetch_n: Can't find blob: x\0y"
    );
    c2rs_workspace_free(ws);
}

#[test]
fn a_non_utf8_output_in_an_operator_def_is_refused_naming_operator_and_output() {
    let ws = new_ws();
    let bytes = patched(fill("okQQ", 1.0).encode_to_vec(), b"QQ", b"\xc3\x28");
    assert_eq!(
        c2rs_workspace_run_operator_once(ws, bytes.as_ptr(), bytes.len()),
        INVALID_ARGUMENT
    );
    assert!(
        message().starts_with(
            r#"c2rs_workspace_run_operator_once: OperatorDef: op (ConstantFill): output 0 "ok\xc3(" is not valid UTF-8; "#
        ),
        "{}",
        message()
    );
    assert!(blob_names(ws).is_empty(), "no output was created");
    // Garbage is still a parse error.
    assert_eq!(
        c2rs_workspace_run_operator_once(ws, [0x0a, 0x09].as_ptr(), 2),
        PARSE_ERROR
    );
    c2rs_workspace_free(ws);
}

#[test]
fn a_net_whose_name_holds_nul_is_created_and_run_by_that_name() {
    let ws = new_ws();
    let name = "net\0one é";
    let net = NetDef {
        name: Some(name.into()),
        op: vec![fill("out\0put", 4.0)],
        ..Default::default()
    };
    let bytes = net.encode_to_vec();
    assert_eq!(
        c2rs_workspace_create_net(ws, bytes.as_ptr(), bytes.len(), false),
        OK
    );
    let mut has = false;
    assert_eq!(
        c2rs_workspace_has_net_n(ws, ptr(name), name.len(), &mut has),
        OK
    );
    assert!(has);
    // The C-string prefix "net" names no net.
    assert_eq!(c2rs_workspace_run_net(ws, c"net".as_ptr(), 1), NOT_FOUND);
    assert_eq!(c2rs_workspace_run_net_n(ws, ptr(name), name.len(), 2), OK);
    assert_eq!(fetch_n(ws, "out\0put"), [4.0, 4.0]);
    let mut list = null_mut();
    assert_eq!(c2rs_workspace_net_names(ws, &mut list), OK);
    assert_eq!(list_n(list), [name.as_bytes().to_vec()]);

    // Not found by name keeps the name exact in the message; a long name works the same.
    assert_eq!(
        c2rs_workspace_run_net_n(ws, ptr("net\0two"), 7, 1),
        NOT_FOUND
    );
    assert_eq!(
        exact_message(),
        b"c2rs_workspace_run_net_n: Network net\0two does not exist yet."
    );
    let long = megabyte_name();
    let net = NetDef {
        name: Some(long.clone()),
        op: vec![fill(&long, 5.0)],
        ..Default::default()
    };
    let bytes = net.encode_to_vec();
    assert_eq!(
        c2rs_workspace_create_net(ws, bytes.as_ptr(), bytes.len(), false),
        OK
    );
    assert_eq!(c2rs_workspace_run_net_n(ws, ptr(&long), long.len(), 1), OK);
    assert_eq!(fetch_n(ws, &long), [5.0, 5.0]);

    let mut deleted = false;
    assert_eq!(
        c2rs_workspace_delete_net_n(ws, ptr(name), name.len(), &mut deleted),
        OK
    );
    assert!(deleted);
    assert_eq!(
        c2rs_workspace_has_net_n(ws, ptr(name), name.len(), &mut has),
        OK
    );
    assert!(!has);
    assert_eq!(
        c2rs_workspace_run_net_n(ws, ptr(name), name.len(), -1),
        INVALID_ARGUMENT
    );
    c2rs_workspace_free(ws);
}

#[test]
fn a_non_utf8_name_in_a_net_def_is_refused_naming_net_op_and_field() {
    let ws = new_ws();
    let net = NetDef {
        name: Some("n".into()),
        op: vec![fill("x", 1.0), op("Copy", &["x"], &["yQQ"], vec![])],
        ..Default::default()
    };
    let bytes = patched(net.encode_to_vec(), b"QQ", b"\xfe\xff");
    assert_eq!(
        c2rs_workspace_create_net(ws, bytes.as_ptr(), bytes.len(), false),
        INVALID_ARGUMENT
    );
    assert!(
        message().starts_with(
            r#"c2rs_workspace_create_net: NetDef: net "n": op #1 (Copy): output 0 "y\xfe\xff" is not valid UTF-8; "#
        ),
        "{}",
        message()
    );
    let mut has = true;
    assert_eq!(c2rs_workspace_has_net(ws, c"n".as_ptr(), &mut has), OK);
    assert!(!has);
    c2rs_workspace_free(ws);
}

#[test]
fn get_all_blob_names_holds_the_exact_bytes() {
    let ws = new_ws();
    for name in hard_names() {
        assert_eq!(c2rs_workspace_create_blob_n(ws, ptr(&name), name.len()), OK);
    }
    let out = "all\0names";
    assert_eq!(run_op(ws, &op("GetAllBlobNames", &[], &[out], vec![])), OK);
    let mut t = null_mut();
    assert_eq!(c2rs_workspace_fetch_n(ws, ptr(out), out.len(), &mut t), OK);
    let mut n = 0;
    assert_eq!(c2rs_tensor_numel(t, &mut n), OK);
    let got: Vec<Vec<u8>> = (0..n as usize)
        .map(|i| {
            let (mut p, mut len) = (null(), 0);
            assert_eq!(c2rs_tensor_string_at(t, i, &mut p, &mut len), OK);
            if len == 0 {
                return Vec::new();
            }
            // SAFETY: string `i` covers `len` bytes.
            unsafe { std::slice::from_raw_parts(p, len) }.to_vec()
        })
        .collect();
    c2rs_tensor_free(t);
    let mut want = hard_names();
    want.push(out.into());
    assert_eq!(got, sorted_bytes(&want));
    c2rs_workspace_free(ws);
}

#[test]
fn string_lists_refuse_to_truncate_a_name_with_nul() {
    let ws = new_ws();
    assert_eq!(c2rs_workspace_create_blob_n(ws, ptr("a\0b"), 3), OK);
    assert_eq!(c2rs_workspace_create_blob(ws, c"plain".as_ptr()), OK);
    let mut list = null_mut();
    assert_eq!(c2rs_workspace_local_blob_names(ws, &mut list), OK);
    assert_eq!(c2rs_string_list_len(list), 2);
    assert!(c2rs_string_list_get(list, 0).is_null());
    assert_eq!(c2rs_last_error_code(), INVALID_ARGUMENT);
    assert!(message().contains("string 0 holds a NUL byte at offset 1 of 3"));
    // SAFETY: entry 1 holds no NUL.
    assert_eq!(
        unsafe { CStr::from_ptr(c2rs_string_list_get(list, 1)) },
        c"plain"
    );
    assert_eq!(list_n(list), [b"a\0b".to_vec(), b"plain".to_vec()]);
    c2rs_workspace_free(ws);
}

#[test]
fn save_and_load_round_trip_every_name() {
    let dir = std::env::temp_dir().join(format!("c2rs-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let root = format!("{}\0", dir.to_string_lossy());
    // Save refuses the empty name ("Blob name to save must not be empty", as Caffe2).
    let mut names: Vec<String> = hard_names().into_iter().filter(|n| !n.is_empty()).collect();
    // A name with the chunk separator inside comes back whole.
    names.push("a#%b".into());
    names.push("c#%7x".into());

    let mut ws = null_mut();
    assert_eq!(
        c2rs_workspace_new_with_root(null_mut(), ptr(&root), &mut ws),
        OK
    );
    for (k, name) in names.iter().enumerate() {
        let t = floats(&[k as f32, -1.0, 2.5]);
        assert_eq!(c2rs_workspace_feed_move_n(ws, ptr(name), name.len(), t), OK);
    }
    assert_eq!(
        c2rs_workspace_feed_string_n(ws, ptr("s\0é"), 4, b"x".as_ptr(), 1),
        OK
    );
    let mut inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    inputs.push("s\0é");
    let save = op(
        "Save",
        &inputs,
        &[],
        vec![
            arg_s("db", "names.minidb"),
            arg_s("db_type", "minidb"),
            Argument {
                name: Some("chunk_size".into()),
                i: Some(2),
                ..Default::default()
            },
        ],
    );
    assert_eq!(run_op(ws, &save), OK, "{}", message());

    let mut fresh = null_mut();
    assert_eq!(
        c2rs_workspace_new_with_root(null_mut(), ptr(&root), &mut fresh),
        OK
    );
    let load = op(
        "Load",
        &[],
        &[],
        vec![
            arg_s("db", "names.minidb"),
            arg_s("db_type", "minidb"),
            Argument {
                name: Some("load_all".into()),
                i: Some(1),
                ..Default::default()
            },
        ],
    );
    assert_eq!(run_op(fresh, &load), OK, "{}", message());
    let mut want = names.clone();
    want.push("s\0é".into());
    assert_eq!(blob_names(fresh), sorted_bytes(&want));
    for (k, name) in names.iter().enumerate() {
        assert_eq!(fetch_n(fresh, name), [k as f32, -1.0, 2.5]);
    }
    // Loading by output name finds the same blobs.
    let mut third = null_mut();
    assert_eq!(
        c2rs_workspace_new_with_root(null_mut(), ptr(&root), &mut third),
        OK
    );
    let load_some = op(
        "Load",
        &[],
        &["a\0b", "a#%b"],
        vec![arg_s("db", "names.minidb"), arg_s("db_type", "minidb")],
    );
    assert_eq!(run_op(third, &load_some), OK, "{}", message());
    assert_eq!(fetch_n(third, "a\0b"), [0.0, -1.0, 2.5]);
    assert_eq!(fetch_n(third, "a#%b"), [5.0, -1.0, 2.5]);
    for w in [ws, fresh, third] {
        c2rs_workspace_free(w);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn text_format_subnet_names_are_read_unescaped() {
    use caffe2rs::memonger::graph::{
        escape_text_literal, for_each_text_name, unescape_text_literal,
    };
    let text = b"op {\n  input: \"a\\000b\"\n  output: '\\303\\251x'\n  input: \"q\\\"uote\\\\\"\n  output: \"\\xff\"\n}\nexternal_output: \"\\346\\274\\242\\t\"\n";
    let mut seen = Vec::new();
    for_each_text_name(text, |r, name| seen.push((text[r].to_vec(), name)));
    assert_eq!(
        seen,
        [
            (b"a\\000b".to_vec(), "a\0b".to_string()),
            (b"\\303\\251x".to_vec(), "éx".to_string()),
            (b"q\\\"uote\\\\".to_vec(), "q\"uote\\".to_string()),
            // "\xff" spells no UTF-8 name: skipped.
            (b"\\346\\274\\242\\t".to_vec(), "漢\t".to_string()),
        ]
    );
    for name in hard_names()
        .iter()
        .chain(&["q\"'\\\n\r\t\u{7f}".to_string()])
    {
        let escaped = escape_text_literal(name);
        assert!(
            escaped.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{escaped:?}"
        );
        assert_eq!(unescape_text_literal(escaped.as_bytes()), name.as_bytes());
    }
    assert_eq!(escape_text_literal("a\0é"), "a\\000\\303\\251");
}

#[test]
fn name_parsers_never_panic_on_hostile_bytes() {
    use caffe2rs::memonger::graph::{for_each_text_name, unescape_text_literal};
    use caffe2rs::workspace::names::{decode_net_def, decode_operator_def, decode_plan_def};
    // Every string of up to 4 bytes over an alphabet of escape-relevant bytes.
    let alphabet = [b'\\', b'"', b'\'', b'x', b'7', b'0', b'a', b'\n', 0xff];
    let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..4 {
        let longer: Vec<Vec<u8>> = cases
            .iter()
            .filter(|c| c.len() == cases.last().map_or(0, Vec::len))
            .flat_map(|c| {
                alphabet.iter().map(move |&b| {
                    let mut n = c.clone();
                    n.push(b);
                    n
                })
            })
            .collect();
        cases.extend(longer);
    }
    for body in &cases {
        let _ = unescape_text_literal(body);
        let mut text = b"input: ".to_vec();
        text.extend_from_slice(body);
        for_each_text_name(&text, |r, _| assert!(r.end <= text.len()));
    }
    // Every truncation and every single-byte corruption of a net with hard names decodes or
    // fails with a status, never a panic.
    let net = NetDef {
        name: Some("n\0é".into()),
        op: vec![fill("a\0b", 1.0), op("Copy", &["a\0b"], &["漢"], vec![])],
        external_output: vec!["漢".into()],
        ..Default::default()
    };
    let bytes = net.encode_to_vec();
    for cut in 0..bytes.len() {
        let _ = decode_net_def(&bytes[..cut]);
        let _ = decode_operator_def(&bytes[..cut]);
        let _ = decode_plan_def(&bytes[..cut]);
    }
    for at in 0..bytes.len() {
        for b in [0x00, 0x80, 0xff, 0x0a] {
            let mut damaged = bytes.clone();
            damaged[at] = b;
            match decode_net_def(&damaged) {
                Ok(_) => {}
                Err(e) => assert!(
                    matches!(
                        e.kind(),
                        caffe2rs::ErrorKind::Parse | caffe2rs::ErrorKind::InvalidArgument
                    ),
                    "{e}"
                ),
            }
        }
    }
}

#[test]
fn a_queue_created_by_an_operator_keeps_its_name_and_slot_names_exact() {
    let ws = new_ws();
    let int_arg = |name: &str, v: i64| Argument {
        name: Some(name.into()),
        i: Some(v),
        ..Default::default()
    };
    let queue = "q\0ueue é";
    assert_eq!(
        run_op(
            ws,
            &op(
                "CreateBlobsQueue",
                &[],
                &[queue],
                vec![int_arg("capacity", 2), int_arg("num_blobs", 1)]
            )
        ),
        OK,
        "{}",
        message()
    );
    // Caffe2 names the slots <queue>_<i>_<j>.
    for slot in ["q\0ueue é_0_0", "q\0ueue é_1_0"] {
        assert!(has_n(ws, slot), "{slot:?}");
    }
    assert_eq!(run_op(ws, &fill("item\0", 9.0)), OK);
    assert_eq!(
        run_op(
            ws,
            &op("EnqueueBlobs", &[queue, "item\0"], &["item\0"], vec![])
        ),
        OK,
        "{}",
        message()
    );
    assert_eq!(
        run_op(ws, &op("DequeueBlobs", &[queue], &["out\0"], vec![])),
        OK,
        "{}",
        message()
    );
    assert_eq!(fetch_n(ws, "out\0"), [9.0, 9.0]);
    let mut ty = null();
    assert_eq!(
        c2rs_workspace_blob_type_n(ws, ptr(queue), queue.len(), &mut ty),
        OK
    );
    // SAFETY: a static type name.
    assert_eq!(
        unsafe { CStr::from_ptr(ty) },
        c"std::shared_ptr<caffe2::BlobsQueue>"
    );
    c2rs_workspace_free(ws);
}
