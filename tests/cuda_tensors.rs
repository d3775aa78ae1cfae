//! CUDA tensors in blobs and the cross-device copy operators (CopyCPUToGPU, CopyGPUToCPU,
//! Copy on CUDA, EnsureCPUOutput, CopyFromCPUInput), through Rust and the C ABI.
//!
//! The `no_gpu_*` and CPU tests run everywhere (the `no_gpu_*` ones skip when a GPU is
//! present); the others need a GPU, self-skip without one and fail under
//! `C2RS_REQUIRE_GPU=1`.

mod context_common;
mod support;

use std::ffi::{CStr, CString, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use caffe2rs::ErrorKind;
use caffe2rs::context::cuda::{CUDA_TENSOR_TYPE_NAME, CudaTensor};
use caffe2rs::ffi::context::{c2rs_cuda_device_count, c2rs_cuda_pointer_device};
use caffe2rs::ffi::cuda_tensor::*;
use caffe2rs::ffi::handle::{c2rs_tensor, c2rs_workspace};
use caffe2rs::ffi::tensor::*;
use caffe2rs::ffi::workspace::*;
use caffe2rs::operator::create_operator;
use caffe2rs::proto::{DeviceOption, OperatorDef};
use caffe2rs::tensor::dlpack::{
    DLDataType, DLDevice, DLManagedTensorVersioned, DLPackVersion, DLTensor,
};
use caffe2rs::tensor::{DataType, Tensor};
use caffe2rs::workspace::Workspace;
use context_common::{gpus_or_skip, last_error};
use prost::Message;
use support::{feed, fetch, op};

const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 2;
const NOT_FOUND: i32 = 3;
const TYPE_MISMATCH: i32 = 5;
const SCHEMA_MISMATCH: i32 = 6;
const UNSUPPORTED: i32 = 7;
const DL_CUDA: i32 = 2;

fn on_cuda(mut def: OperatorDef, gpu: Option<i32>) -> OperatorDef {
    def.device_option = Some(DeviceOption {
        device_type: Some(1),
        device_id: gpu,
        ..Default::default()
    });
    def
}

fn floats(n: usize) -> Tensor {
    let v: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
    Tensor::from_slice(DataType::Float, &[n as i64], &v).unwrap()
}

fn no_gpu() -> bool {
    if c2rs_cuda_device_count() != 0 {
        eprintln!("no_gpu test skipped: a GPU is present (run with C2RS_DISABLE_CUDA=1)");
        return false;
    }
    true
}

// ---------------------------------------------------------------- C ABI helpers

struct CWs(*mut c2rs_workspace);

impl CWs {
    fn new() -> Self {
        let mut ws = std::ptr::null_mut();
        assert_eq!(c2rs_workspace_new(std::ptr::null_mut(), &mut ws), OK);
        Self(ws)
    }
    fn feed(&self, name: &str, t: &Tensor) {
        let h = c_tensor(t);
        let n = CString::new(name).unwrap();
        assert_eq!(c2rs_workspace_feed(self.0, n.as_ptr(), h), OK);
        c2rs_tensor_free(h);
    }
    fn blob_type(&self, name: &str) -> String {
        let n = CString::new(name).unwrap();
        let mut p = std::ptr::null();
        assert_eq!(c2rs_workspace_blob_type(self.0, n.as_ptr(), &mut p), OK);
        // SAFETY: interned, NUL-terminated.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
    fn device(&self, name: &str) -> Result<(i32, i32), i32> {
        let n = CString::new(name).unwrap();
        let (mut t, mut id) = (-1, -1);
        match c2rs_workspace_blob_device(self.0, n.as_ptr(), &mut t, &mut id) {
            OK => Ok((t, id)),
            rc => Err(rc),
        }
    }
}

impl Drop for CWs {
    fn drop(&mut self) {
        c2rs_workspace_free(self.0);
    }
}

fn c_tensor(t: &Tensor) -> *mut c2rs_tensor {
    let mut h = std::ptr::null_mut();
    let dims = t.dims().to_vec();
    assert_eq!(
        c2rs_tensor_new(t.dtype().as_i32(), dims.as_ptr(), dims.len(), &mut h),
        OK
    );
    let mut p = std::ptr::null_mut();
    assert_eq!(c2rs_tensor_mutable_data(h, &mut p), OK);
    let bytes = t.bytes().unwrap();
    if !bytes.is_empty() {
        // SAFETY: `p` has room for the tensor's bytes (same dtype and dims).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, bytes.len()) };
    }
    h
}

fn c_tensor_floats(h: *const c2rs_tensor) -> Vec<f32> {
    let mut n = 0i64;
    assert_eq!(c2rs_tensor_numel(h, &mut n), OK);
    let mut p = std::ptr::null();
    assert_eq!(c2rs_tensor_data(h, &mut p), OK);
    if n == 0 {
        return Vec::new();
    }
    // SAFETY: a FLOAT tensor of `n` elements.
    unsafe { std::slice::from_raw_parts(p as *const f32, n as usize) }.to_vec()
}

/// A hand-made DLPack tensor whose deleter counts its calls (and frees nothing else).
#[repr(C)]
struct Counted {
    managed: DLManagedTensorVersioned,
    shape: [i64; 1],
    deletes: Arc<AtomicUsize>,
}

unsafe extern "C" fn count_delete(m: *mut DLManagedTensorVersioned) {
    // SAFETY: `m` is the first field of a leaked `Box<Counted>` (repr(C)); called once.
    let boxed = unsafe { Box::from_raw(m as *mut Counted) };
    boxed.deletes.fetch_add(1, Ordering::SeqCst);
}

fn counted_dlpack(
    data: *mut c_void,
    device: DLDevice,
    n: i64,
    deletes: &Arc<AtomicUsize>,
) -> *mut DLManagedTensorVersioned {
    let b = Box::new(Counted {
        managed: DLManagedTensorVersioned {
            version: DLPackVersion { major: 1, minor: 0 },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(count_delete),
            flags: 0,
            dl_tensor: DLTensor {
                data,
                device,
                ndim: 1,
                dtype: DLDataType {
                    code: 2,
                    bits: 32,
                    lanes: 1,
                },
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
        },
        shape: [n],
        deletes: Arc::clone(deletes),
    });
    let raw = Box::into_raw(b);
    // SAFETY: freshly leaked box; point `shape` at its own array.
    unsafe { (*raw).managed.dl_tensor.shape = (*raw).shape.as_mut_ptr() };
    raw as *mut DLManagedTensorVersioned
}

// Layout check: `Counted` must start with the managed struct.
const _: () = assert!(std::mem::offset_of!(Counted, managed) == 0);

// ---------------------------------------------------------------- everywhere

#[test]
fn blob_device_reports_cpu_for_cpu_tensors_and_refuses_other_blobs() {
    let ws = CWs::new();
    ws.feed("x", &floats(3));
    assert_eq!(ws.device("x"), Ok((0, 0)));
    let name = CString::new("s").unwrap();
    assert_eq!(
        c2rs_workspace_feed_string(ws.0, name.as_ptr(), b"abc".as_ptr(), 3),
        OK
    );
    assert_eq!(ws.device("s"), Err(TYPE_MISMATCH));
    assert!(last_error().contains("not a tensor"), "{}", last_error());
    assert_eq!(ws.device("missing"), Err(NOT_FOUND));
}

#[test]
fn cpu_dlpack_import_refuses_kdlcuda_and_names_the_cuda_import() {
    let deletes = Arc::new(AtomicUsize::new(0));
    let mut backing = [0f32; 4];
    let m = counted_dlpack(
        backing.as_mut_ptr() as *mut c_void,
        DLDevice {
            device_type: DL_CUDA,
            device_id: 0,
        },
        4,
        &deletes,
    );
    let mut t = std::ptr::null_mut();
    assert_eq!(c2rs_tensor_from_dlpack(m, &mut t), UNSUPPORTED);
    assert!(
        last_error().contains("c2rs_cuda_tensor_from_dlpack"),
        "{}",
        last_error()
    );
    assert!(t.is_null());
    assert_eq!(
        deletes.load(Ordering::SeqCst),
        0,
        "the caller still owns it"
    );
    // SAFETY: still ours; delete it once.
    unsafe { ((*m).deleter.unwrap())(m) };
    assert_eq!(deletes.load(Ordering::SeqCst), 1);
}

#[test]
fn no_gpu_every_cuda_tensor_entry_point_is_unsupported() {
    if !no_gpu() {
        return;
    }
    let ws = CWs::new();
    ws.feed("x", &floats(2));
    let x = CString::new("x").unwrap();
    let h = c_tensor(&floats(2));
    assert_eq!(c2rs_cuda_tensor_feed(ws.0, x.as_ptr(), 0, h), UNSUPPORTED);
    assert!(
        last_error().contains("CUDA tensors need a CUDA device: no CUDA GPU"),
        "{}",
        last_error()
    );
    c2rs_tensor_free(h);
    let mut out = std::ptr::null_mut();
    assert_eq!(
        c2rs_cuda_tensor_fetch(ws.0, x.as_ptr(), &mut out),
        UNSUPPORTED
    );
    let mut p = std::ptr::null_mut();
    assert_eq!(c2rs_cuda_tensor_data(ws.0, x.as_ptr(), &mut p), UNSUPPORTED);
    let mut m = std::ptr::null_mut();
    assert_eq!(
        c2rs_cuda_tensor_to_dlpack(ws.0, x.as_ptr(), &mut m),
        UNSUPPORTED
    );
    assert!(m.is_null());
    let deletes = Arc::new(AtomicUsize::new(0));
    let mut backing = [0f32; 2];
    let managed = counted_dlpack(
        backing.as_mut_ptr() as *mut c_void,
        DLDevice {
            device_type: DL_CUDA,
            device_id: 0,
        },
        2,
        &deletes,
    );
    let y = CString::new("y").unwrap();
    assert_eq!(
        c2rs_cuda_tensor_from_dlpack(ws.0, y.as_ptr(), managed),
        UNSUPPORTED
    );
    assert_eq!(deletes.load(Ordering::SeqCst), 0);
    // SAFETY: still ours.
    unsafe { ((*managed).deleter.unwrap())(managed) };
    // The blob still holds its CPU tensor.
    assert_eq!(ws.device("x"), Ok((0, 0)));
    // Rust API: nothing is built.
    let e = CudaTensor::from_host(&floats(2), 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[test]
fn cuda_tensor_calls_check_their_pointers() {
    let ws = CWs::new();
    let x = CString::new("x").unwrap();
    let mut t = 0;
    let mut id = 0;
    assert_eq!(
        c2rs_workspace_blob_device(ws.0, x.as_ptr(), std::ptr::null_mut(), &mut id),
        INVALID_ARGUMENT
    );
    assert_eq!(
        c2rs_workspace_blob_device(std::ptr::null(), x.as_ptr(), &mut t, &mut id),
        INVALID_ARGUMENT
    );
    assert_eq!(
        c2rs_cuda_tensor_from_dlpack(ws.0, x.as_ptr(), std::ptr::null_mut()),
        INVALID_ARGUMENT
    );
    assert_eq!(
        c2rs_cuda_tensor_fetch(ws.0, x.as_ptr(), std::ptr::null_mut()),
        INVALID_ARGUMENT
    );
}

#[test]
fn ensure_cpu_output_shares_a_cpu_input_without_a_gpu() {
    let ws = Workspace::new();
    feed(&ws, "x", floats(5));
    ws.run_operator_once(&op("EnsureCPUOutput", &["x"], &["y"], vec![]))
        .unwrap();
    let (x, y) = (fetch(&ws, "x"), fetch(&ws, "y"));
    assert_eq!(y.typed::<f32>().unwrap(), x.typed::<f32>().unwrap());
    assert_eq!(y.dims(), &[5]);
    assert_eq!(
        y.data_ptr().unwrap(),
        x.data_ptr().unwrap(),
        "shared, not copied"
    );
    // Strings are tensors too on the CPU.
    let s = Tensor::from_strings(&[2], vec![b"a".to_vec(), b"bc".to_vec()]).unwrap();
    feed(&ws, "s", s);
    ws.run_operator_once(&op("EnsureCPUOutput", &["s"], &["t"], vec![]))
        .unwrap();
    assert_eq!(fetch(&ws, "t").strings().unwrap()[1], b"bc");
    // A non-tensor input is a type mismatch naming the blob.
    ws.create_blob("q").unwrap().set_string(b"z".to_vec());
    let e = ws
        .run_operator_once(&op("EnsureCPUOutput", &["q"], &["r"], vec![]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch);
    assert!(e.message().contains("blob q holds std::string"), "{e}");
}

#[test]
fn copy_from_cpu_input_on_cpu_copies() {
    let ws = Workspace::new();
    feed(&ws, "x", floats(4));
    ws.run_operator_once(&op("CopyFromCPUInput", &["x"], &["y"], vec![]))
        .unwrap();
    let (x, y) = (fetch(&ws, "x"), fetch(&ws, "y"));
    assert_eq!(y.typed::<f32>().unwrap(), x.typed::<f32>().unwrap());
    assert_ne!(y.data_ptr().unwrap(), x.data_ptr().unwrap());
}

#[test]
fn gpu_only_copies_are_not_registered_for_cpu_and_keep_caffe2_arity() {
    let ws = Workspace::new();
    feed(&ws, "x", floats(2));
    for ty in ["CopyCPUToGPU", "CopyGPUToCPU"] {
        let e = create_operator(&op(ty, &["x"], &["y"], vec![]), &ws, None)
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{ty}: {e}");
        assert!(
            e.message().contains(&format!(
                "Cannot create operator of type '{ty}' on the device 'CPU'"
            )),
            "{e}"
        );
        // Schema checks come before the device: 2 inputs is a schema error on CUDA too.
        let e = create_operator(
            &on_cuda(op(ty, &["x", "x"], &["y"], vec![]), Some(0)),
            &ws,
            None,
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{ty}: {e}");
    }
}

#[test]
fn no_gpu_cuda_copy_operators_fail_at_creation_saying_there_is_no_cuda_device() {
    if !no_gpu() {
        return;
    }
    let ws = Workspace::new();
    feed(&ws, "x", floats(2));
    for ty in [
        "CopyCPUToGPU",
        "CopyGPUToCPU",
        "Copy",
        "EnsureCPUOutput",
        "CopyFromCPUInput",
    ] {
        for gpu in [Some(0), None] {
            let def = on_cuda(op(ty, &["x"], &["y"], vec![]), gpu);
            let e = create_operator(&def, &ws, None).err().unwrap();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{ty}: {e}");
            assert!(
                e.message().contains("there is no usable CUDA device"),
                "{ty}: {e}"
            );
            assert!(e.message().starts_with(ty), "{e}");
            let e = ws.run_operator_once(&def).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported);
        }
    }
    // The output was created by the failed attempts but never written.
    assert!(ws.get_blob("y").is_none_or(|b| b.is_empty()));
}

#[test]
fn no_gpu_cuda_copy_operator_through_the_c_abi_is_unsupported() {
    if !no_gpu() {
        return;
    }
    let ws = CWs::new();
    ws.feed("x", &floats(2));
    let def = on_cuda(op("CopyCPUToGPU", &["x"], &["y"], vec![]), Some(0)).encode_to_vec();
    assert_eq!(
        c2rs_workspace_run_operator_once(ws.0, def.as_ptr(), def.len()),
        UNSUPPORTED
    );
    assert!(
        last_error().contains("no usable CUDA device"),
        "{}",
        last_error()
    );
    let def = op("CopyCPUToGPU", &["x", "x"], &["y"], vec![]).encode_to_vec();
    assert_eq!(
        c2rs_workspace_run_operator_once(ws.0, def.as_ptr(), def.len()),
        SCHEMA_MISMATCH
    );
}

// ---------------------------------------------------------------- GPU

#[test]
fn copy_operators_round_trip_cpu_gpu_gpu_cpu_with_content() {
    if !gpus_or_skip("copy_operators_round_trip", 1) {
        return;
    }
    let ws = Workspace::new();
    for n in [0usize, 1, 1000, 1 << 20] {
        let x = floats(n);
        feed(&ws, "x", x.clone());
        ws.run_operator_once(&on_cuda(
            op("CopyCPUToGPU", &["x"], &["xg"], vec![]),
            Some(0),
        ))
        .unwrap();
        let blob = ws.get_blob("xg").unwrap();
        assert_eq!(blob.type_name(), CUDA_TENSOR_TYPE_NAME);
        let xg = blob.native::<CudaTensor>().unwrap();
        assert_eq!(
            (xg.gpu(), xg.dims(), xg.dtype()),
            (0, &[n as i64][..], DataType::Float)
        );
        ws.run_operator_once(&on_cuda(op("Copy", &["xg"], &["xg2"], vec![]), Some(0)))
            .unwrap();
        let xg2 = ws.get_blob("xg2").unwrap().native::<CudaTensor>().unwrap();
        if n > 0 {
            assert_ne!(xg2.data_ptr(), xg.data_ptr());
        }
        ws.run_operator_once(&on_cuda(
            op("CopyGPUToCPU", &["xg2"], &["y"], vec![]),
            Some(0),
        ))
        .unwrap();
        assert_eq!(
            fetch(&ws, "y").typed::<f32>().unwrap(),
            x.typed::<f32>().unwrap()
        );
        // EnsureCPUOutput on either device copies a CUDA input to the host.
        ws.run_operator_once(&on_cuda(
            op("EnsureCPUOutput", &["xg"], &["z"], vec![]),
            Some(0),
        ))
        .unwrap();
        assert_eq!(
            fetch(&ws, "z").typed::<f32>().unwrap(),
            x.typed::<f32>().unwrap()
        );
        ws.run_operator_once(&op("EnsureCPUOutput", &["xg2"], &["z2"], vec![]))
            .unwrap();
        assert_eq!(
            fetch(&ws, "z2").typed::<f32>().unwrap(),
            x.typed::<f32>().unwrap()
        );
        ws.run_operator_once(&on_cuda(
            op("CopyFromCPUInput", &["x"], &["w"], vec![]),
            None,
        ))
        .unwrap();
        let w = ws.get_blob("w").unwrap().native::<CudaTensor>().unwrap();
        assert_eq!(
            w.to_host().unwrap().typed::<f32>().unwrap(),
            x.typed::<f32>().unwrap()
        );
    }
    // Integer types keep their bits.
    let ints = Tensor::from_slice(DataType::Int64, &[2, 2], &[i64::MIN, -1, 0, i64::MAX]).unwrap();
    let g = CudaTensor::from_host(&ints, 0).unwrap();
    assert_eq!(
        g.to_host().unwrap().typed::<i64>().unwrap(),
        &[i64::MIN, -1, 0, i64::MAX]
    );
    assert_eq!(g.to_host().unwrap().dims(), &[2, 2]);
}

#[test]
fn copy_operators_refuse_strings_and_wrong_devices() {
    if !gpus_or_skip("copy_operators_refuse", 1) {
        return;
    }
    let ws = Workspace::new();
    feed(
        &ws,
        "s",
        Tensor::from_strings(&[1], vec![b"a".to_vec()]).unwrap(),
    );
    let e = ws
        .run_operator_once(&on_cuda(
            op("CopyCPUToGPU", &["s"], &["g"], vec![]),
            Some(0),
        ))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
    feed(&ws, "x", floats(3));
    // A CPU input to CopyGPUToCPU / Copy on CUDA is a type mismatch naming both types.
    for ty in ["CopyGPUToCPU", "Copy"] {
        let e = ws
            .run_operator_once(&on_cuda(op(ty, &["x"], &["g"], vec![]), Some(0)))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
        assert!(e.message().contains("a CUDA tensor (CudaTensor)"), "{e}");
    }
    ws.run_operator_once(&on_cuda(
        op("CopyCPUToGPU", &["x"], &["g"], vec![]),
        Some(0),
    ))
    .unwrap();
    let e = ws
        .run_operator_once(&on_cuda(
            op("CopyCPUToGPU", &["g"], &["h"], vec![]),
            Some(0),
        ))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
    let bad = c2rs_cuda_device_count();
    let e = create_operator(
        &on_cuda(op("CopyCPUToGPU", &["x"], &["g"], vec![]), Some(bad)),
        &ws,
        None,
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

#[test]
fn cuda_tensor_feed_fetch_round_trip_through_the_c_abi() {
    if !gpus_or_skip("cuda_tensor_feed_fetch", 1) {
        return;
    }
    let ws = CWs::new();
    let x = CString::new("x").unwrap();
    for n in [0usize, 1, 4096] {
        let host = floats(n);
        let h = c_tensor(&host);
        assert_eq!(
            c2rs_cuda_tensor_feed(ws.0, x.as_ptr(), 0, h),
            OK,
            "{}",
            last_error()
        );
        c2rs_tensor_free(h);
        assert_eq!(ws.blob_type("x"), "CudaTensor");
        assert_eq!(ws.device("x"), Ok((1, 0)));
        let mut p = std::ptr::null_mut();
        assert_eq!(c2rs_cuda_tensor_data(ws.0, x.as_ptr(), &mut p), OK);
        assert!(!p.is_null());
        let mut owner = -2;
        assert_eq!(c2rs_cuda_pointer_device(p, &mut owner), OK);
        assert_eq!(owner, 0);
        let mut back = std::ptr::null_mut();
        assert_eq!(c2rs_cuda_tensor_fetch(ws.0, x.as_ptr(), &mut back), OK);
        assert_eq!(c_tensor_floats(back), host.typed::<f32>().unwrap());
        c2rs_tensor_free(back);
    }
    // A CPU blob is not a CUDA tensor; a string tensor cannot go to the GPU.
    ws.feed("c", &floats(1));
    let c = CString::new("c").unwrap();
    let mut back = std::ptr::null_mut();
    assert_eq!(
        c2rs_cuda_tensor_fetch(ws.0, c.as_ptr(), &mut back),
        TYPE_MISMATCH
    );
    let strings = Tensor::from_strings(&[1], vec![b"a".to_vec()]).unwrap();
    let mut h = std::ptr::null_mut();
    assert_eq!(
        c2rs_tensor_new(strings.dtype().as_i32(), [1i64].as_ptr(), 1, &mut h),
        OK
    );
    assert_eq!(c2rs_cuda_tensor_feed(ws.0, c.as_ptr(), 0, h), TYPE_MISMATCH);
    c2rs_tensor_free(h);
    let h = c_tensor(&floats(1));
    assert_eq!(
        c2rs_cuda_tensor_feed(ws.0, c.as_ptr(), 99, h),
        INVALID_ARGUMENT
    );
    c2rs_tensor_free(h);
}

#[test]
fn cuda_dlpack_export_and_import_round_trip_with_one_delete() {
    if !gpus_or_skip("cuda_dlpack_round_trip", 1) {
        return;
    }
    let ws = CWs::new();
    let x = CString::new("x").unwrap();
    let host = floats(6);
    let h = c_tensor(&host);
    assert_eq!(c2rs_cuda_tensor_feed(ws.0, x.as_ptr(), 0, h), OK);
    c2rs_tensor_free(h);
    let mut data = std::ptr::null_mut();
    assert_eq!(c2rs_cuda_tensor_data(ws.0, x.as_ptr(), &mut data), OK);
    let mut m = std::ptr::null_mut();
    assert_eq!(c2rs_cuda_tensor_to_dlpack(ws.0, x.as_ptr(), &mut m), OK);
    // SAFETY: a live export, read before its deleter runs.
    unsafe {
        assert_eq!((*m).dl_tensor.device.device_type, DL_CUDA);
        assert_eq!((*m).dl_tensor.device.device_id, 0);
        assert_eq!((*m).dl_tensor.data, data);
        assert_eq!((*m).dl_tensor.ndim, 1);
        assert_eq!(*(*m).dl_tensor.shape, 6);
        assert!((*m).dl_tensor.strides.is_null());
    }
    // The export outlives the blob.
    let mut removed = false;
    assert_eq!(
        c2rs_workspace_remove_blob(ws.0, x.as_ptr(), &mut removed),
        OK
    );
    assert!(removed);
    // Import it back, zero copy: same device address, same values.
    let y = CString::new("y").unwrap();
    assert_eq!(
        c2rs_cuda_tensor_from_dlpack(ws.0, y.as_ptr(), m),
        OK,
        "{}",
        last_error()
    );
    let mut ydata = std::ptr::null_mut();
    assert_eq!(c2rs_cuda_tensor_data(ws.0, y.as_ptr(), &mut ydata), OK);
    assert_eq!(ydata, data);
    let mut back = std::ptr::null_mut();
    assert_eq!(c2rs_cuda_tensor_fetch(ws.0, y.as_ptr(), &mut back), OK);
    assert_eq!(c_tensor_floats(back), host.typed::<f32>().unwrap());
    c2rs_tensor_free(back);

    // A producer's tensor: its deleter runs exactly once, when the blob lets go.
    let g = CudaTensor::from_host(&floats(4), 0).unwrap();
    let deletes = Arc::new(AtomicUsize::new(0));
    let managed = counted_dlpack(
        g.data_ptr(),
        DLDevice {
            device_type: DL_CUDA,
            device_id: 0,
        },
        4,
        &deletes,
    );
    let z = CString::new("z").unwrap();
    assert_eq!(c2rs_cuda_tensor_from_dlpack(ws.0, z.as_ptr(), managed), OK);
    let mut back = std::ptr::null_mut();
    assert_eq!(c2rs_cuda_tensor_fetch(ws.0, z.as_ptr(), &mut back), OK);
    assert_eq!(c_tensor_floats(back), floats(4).typed::<f32>().unwrap());
    c2rs_tensor_free(back);
    assert_eq!(deletes.load(Ordering::SeqCst), 0);
    assert_eq!(
        c2rs_workspace_remove_blob(ws.0, z.as_ptr(), &mut removed),
        OK
    );
    assert_eq!(deletes.load(Ordering::SeqCst), 1);
    // Host memory labelled kDLCUDA is refused, and the caller keeps it.
    let mut backing = [0f32; 4];
    let bogus = counted_dlpack(
        backing.as_mut_ptr() as *mut c_void,
        DLDevice {
            device_type: DL_CUDA,
            device_id: 0,
        },
        4,
        &deletes,
    );
    assert_eq!(
        c2rs_cuda_tensor_from_dlpack(ws.0, z.as_ptr(), bogus),
        INVALID_ARGUMENT
    );
    assert_eq!(deletes.load(Ordering::SeqCst), 1);
    // The failed import leaves no empty blob behind.
    let mut has = true;
    assert_eq!(c2rs_workspace_has_blob(ws.0, z.as_ptr(), &mut has), OK);
    assert!(!has);
    // SAFETY: still ours.
    unsafe { ((*bogus).deleter.unwrap())(bogus) };
    drop(g);
}
