//! The `operator` target: OperatorDef bytes through `c2rs_workspace_run_operator_once`, in a
//! fresh workspace per input that already holds tensors of several dtypes, a BlobsQueue and a
//! RebatchingQueue (one record in each) and DB readers on valid files (see [`FIXTURE_BLOBS`]).
//!
//! Blocking is not hanging: a watchdog thread closes the two queues [`WATCHDOG_MS`] after the
//! operator starts, so a dequeue from an empty queue or an enqueue into a full one returns
//! (C2RS_CLOSED or similar); only what does not return after that is a hang. (The watchdog
//! also calls `c2rs_workspace_cancel`, which only plans notice: see `crate::plan`.)
//!
//! Files: the workspace's root folder is a scratch directory holding the fixtures
//! (`fx_records.minidb`, `fx_records.lmdb/`, `fx_checkpoint.minidb`); a string argument
//! `@/NAME` is rewritten to `<root>/NAME` before the run, so seeds can name fixtures by an
//! absolute path (CreateDB uses `db` as given). To keep the fuzzer inside that directory the
//! harness skips (does not run) an operator whose string arguments hold any other `/`, and a
//! writer (Save, Checkpoint, Snapshot) that names a fixture or sets `absolute_path`. Whatever
//! an operator wrote is removed after it, so every input starts from the same files.
//!
//! C2RS_INTERNAL "out of memory" is accepted here (an operator argument such as a
//! ConstantFill `shape` is the caller asking); the sanitizer refuses any one allocation above
//! 64 MiB, so such a request must come back as that status, not an abort.

use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use caffe2rs::ffi::buffer::{
    c2rs_string_list_free, c2rs_string_list_get, c2rs_string_list_get_n, c2rs_string_list_len,
};
use caffe2rs::ffi::db::{c2rs_db_reader_free, c2rs_db_reader_new, c2rs_workspace_set_db_reader};
use caffe2rs::ffi::handle::{c2rs_blobs_queue, c2rs_rebatching_queue, c2rs_tensor, c2rs_workspace};
use caffe2rs::ffi::queue::{
    c2rs_blobs_queue_close, c2rs_blobs_queue_create, c2rs_blobs_queue_enqueue,
    c2rs_blobs_queue_free, c2rs_rebatching_queue_close, c2rs_rebatching_queue_create,
    c2rs_rebatching_queue_enqueue, c2rs_rebatching_queue_free,
};
use caffe2rs::ffi::status::C2RS_OK;
use caffe2rs::ffi::tensor::{
    c2rs_tensor_free, c2rs_tensor_mutable_data, c2rs_tensor_new, c2rs_tensor_set_string,
};
use caffe2rs::ffi::workspace::{
    c2rs_workspace_blob_names, c2rs_workspace_cancel, c2rs_workspace_create_net,
    c2rs_workspace_feed_move, c2rs_workspace_free, c2rs_workspace_new,
    c2rs_workspace_new_with_root, c2rs_workspace_run_net, c2rs_workspace_run_operator_once,
};
use caffe2rs::ffi::workspace_names::c2rs_workspace_fetch_n;
use caffe2rs::proto::{Argument, NetDef, OperatorDef};
use prost::Message;

use crate::check::{Oom, check, check_out, finding, trace};
use crate::{defs, scratch, tensor};

/// How long an operator may block on the fixture queues before the watchdog closes them.
pub const WATCHDOG_MS: u64 = 50;

/// Blobs every input's workspace starts with (name, what it holds).
pub const FIXTURE_BLOBS: [(&str, &str); 15] = [
    ("X", "FLOAT [2,3]"),
    ("Y", "INT32 [3]"),
    ("S", "STRING [2]"),
    ("B", "BOOL scalar"),
    ("E", "FLOAT [0,5]"),
    ("L", "INT64 [2] = [2,3] (a shape)"),
    ("U", "UINT8 [2,2]"),
    ("H", "FLOAT16 [2]"),
    ("D", "DOUBLE [2]"),
    ("iter", "INT64 scalar"),
    (
        "queue",
        "BlobsQueue, capacity 4, 2 blobs, one record (FLOAT [2], INT32 [2])",
    ),
    (
        "rqueue",
        "RebatchingQueue, capacity 4, 2 blobs, one element (FLOAT [3], INT32 [2])",
    ),
    (
        "reader",
        "DBReader on fx_records.minidb (TensorProtos records)",
    ),
    ("lreader", "DBReader on fx_records.lmdb (the same records)"),
    (
        "ckreader",
        "DBReader on fx_checkpoint.minidb (BlobProto records)",
    ),
];

/// Fixture files in the workspace root (name, golden file they copy).
pub const FIXTURE_FILES: [(&str, &[u8]); 3] = [
    (
        "fx_records.minidb",
        include_bytes!("../../tests/data/golden/db/records.minidb"),
    ),
    (
        "fx_checkpoint.minidb",
        include_bytes!("../../tests/data/golden/db/checkpoint.minidb"),
    ),
    (
        "fx_records.lmdb/data.mdb",
        include_bytes!("../../tests/data/golden/db/records.lmdb/data.mdb"),
    ),
];

/// Operators that write files (under the root folder).
const WRITERS: [&str; 3] = ["Save", "Checkpoint", "Snapshot"];

/// A workspace, freed when dropped.
pub struct Workspace(*mut c2rs_workspace);

impl Workspace {
    /// A root workspace; `root` is its root folder (".", when `None`).
    pub fn new(root: Option<&Path>) -> Self {
        let mut ws = ptr::null_mut();
        let status = match root {
            Some(root) => {
                let root = c_path(root);
                c2rs_workspace_new_with_root(ptr::null_mut(), root.as_ptr(), &mut ws)
            }
            None => c2rs_workspace_new(ptr::null_mut(), &mut ws),
        };
        if !check_out(status, ws, "c2rs_workspace_new", Oom::Finding) {
            finding("c2rs_workspace_new", "cannot create a workspace");
        }
        Self(ws)
    }

    pub fn ptr(&self) -> *mut c2rs_workspace {
        self.0
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        c2rs_workspace_free(self.0);
    }
}

fn c_path(path: &Path) -> CString {
    c_str(&path.to_string_lossy())
}

fn c_str(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| finding("harness", &format!("{s:?} holds a NUL byte")))
}

/// Runs one serialized OperatorDef; true on C2RS_OK.
pub fn run_op(ws: &Workspace, op: &[u8], oom: Oom) -> bool {
    let status = c2rs_workspace_run_operator_once(ws.ptr(), op.as_ptr(), op.len());
    check(status, "c2rs_workspace_run_operator_once", oom)
}

/// Creates `net` (replacing one of the same name) and runs it `iterations` times; true on
/// C2RS_OK.
pub fn run_net(ws: &Workspace, net: &NetDef, iterations: i32, oom: Oom) -> bool {
    let bytes = defs::bytes(net);
    let status = c2rs_workspace_create_net(ws.ptr(), bytes.as_ptr(), bytes.len(), true);
    if !check(status, "c2rs_workspace_create_net", oom) {
        return false;
    }
    let name = c_str(net.name.as_deref().unwrap_or_default());
    check(
        c2rs_workspace_run_net(ws.ptr(), name.as_ptr(), iterations),
        "c2rs_workspace_run_net",
        oom,
    )
}

/// The root folder with the fixture files, written once per process.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = scratch::dir().join("root");
        for (name, bytes) in FIXTURE_FILES {
            let path = root.join(name);
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, bytes));
            if let Err(e) = written {
                finding("harness", &format!("cannot write {}: {e}", path.display()));
            }
        }
        root
    })
}

/// One input: skip it if it would leave the scratch directory, else run it in a fresh
/// fixture workspace under the watchdog, then read back every tensor it left.
pub fn run(data: &[u8]) {
    let root = root();
    let bytes = match OperatorDef::decode(data) {
        Ok(mut op) => {
            if !confined(&op) {
                trace("skipped: the operator could touch files outside the scratch root");
                return;
            }
            if rewrite_root_paths(&mut op.arg, root) {
                op.encode_to_vec()
            } else {
                data.to_vec()
            }
        }
        // Not an OperatorDef: the library must say so (nothing else can happen).
        Err(_) => data.to_vec(),
    };
    {
        let fixture = Fixture::new(root);
        let armed = Watchdog::arm(&fixture, Duration::from_millis(WATCHDOG_MS));
        run_op(&fixture.ws, &bytes, Oom::Allowed);
        drop(armed);
        read_back(&fixture.ws);
    }
    remove_written_files(root);
}

/// Every string an argument holds, nested nets included.
pub(crate) fn arg_strings<'a>(args: &'a [Argument], out: &mut Vec<&'a [u8]>) {
    for arg in args {
        out.extend(arg.s.as_deref());
        out.extend(arg.strings.iter().map(Vec::as_slice));
        for net in arg.n.iter().chain(&arg.nets) {
            for op in &net.op {
                arg_strings(&op.arg, out);
            }
        }
    }
}

/// `@/NAME` with a plain NAME (no `/`, not `..`).
fn root_path_name(s: &[u8]) -> Option<&[u8]> {
    let name = s.strip_prefix(b"@/")?;
    (!name.contains(&b'/') && name != b"..").then_some(name)
}

/// True when running `op` cannot touch files outside the scratch root nor overwrite a fixture.
pub(crate) fn confined(op: &OperatorDef) -> bool {
    let mut strings = Vec::new();
    arg_strings(&op.arg, &mut strings);
    if strings
        .iter()
        .any(|s| s.contains(&b'/') && root_path_name(s).is_none())
    {
        return false;
    }
    let ty = op.r#type.as_deref().unwrap_or_default();
    if WRITERS.contains(&ty) {
        let names_fixture = strings
            .iter()
            .any(|s| s.starts_with(b"@/") || s.windows(3).any(|w| w == b"fx_"));
        let absolute = op
            .arg
            .iter()
            .any(|a| a.name.as_deref() == Some("absolute_path") && a.i.unwrap_or(0) != 0);
        if names_fixture || absolute {
            return false;
        }
    }
    true
}

/// Rewrites `@/NAME` strings to `<root>/NAME`; true when something changed.
pub(crate) fn rewrite_root_paths(args: &mut [Argument], root: &Path) -> bool {
    let full = |s: &mut Vec<u8>| -> bool {
        let Some(name) = root_path_name(s) else {
            return false;
        };
        let mut path = root.as_os_str().as_encoded_bytes().to_vec();
        path.push(b'/');
        path.extend_from_slice(name);
        *s = path;
        true
    };
    let mut changed = false;
    for arg in args {
        if let Some(s) = arg.s.as_mut() {
            changed |= full(s);
        }
        for s in &mut arg.strings {
            changed |= full(s);
        }
        for net in arg.n.iter_mut().chain(arg.nets.iter_mut()) {
            for op in &mut net.op {
                changed |= rewrite_root_paths(&mut op.arg, root);
            }
        }
    }
    changed
}

/// Removes what an operator wrote into the root folder (everything but the fixtures).
pub(crate) fn remove_written_files(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(b"fx_") {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// The per-input workspace and the handles the watchdog closes.
pub(crate) struct Fixture {
    pub(crate) ws: Workspace,
    queue: *mut c2rs_blobs_queue,
    rqueue: *mut c2rs_rebatching_queue,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        c2rs_blobs_queue_free(self.queue);
        c2rs_rebatching_queue_free(self.rqueue);
    }
}

fn must(status: i32, call: &str) {
    if !check(status, call, Oom::Finding) {
        finding(call, "failed while building the fixture workspace");
    }
}

/// A tensor of `dtype` and `dims` whose bytes are `fill` repeated (not for STRING).
fn tensor(dtype: i32, dims: &[i64], fill: &[u8]) -> *mut c2rs_tensor {
    let mut t = ptr::null_mut();
    must(
        c2rs_tensor_new(dtype, dims.as_ptr(), dims.len(), &mut t),
        "c2rs_tensor_new",
    );
    if !fill.is_empty() {
        let mut data = ptr::null_mut();
        must(
            c2rs_tensor_mutable_data(t, &mut data),
            "c2rs_tensor_mutable_data",
        );
        // SAFETY: the tensor owns at least `fill.len()` bytes (callers pass a fill of exactly
        // numel × itemsize bytes).
        unsafe { ptr::copy_nonoverlapping(fill.as_ptr(), data.cast::<u8>(), fill.len()) };
    }
    t
}

fn floats(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Fixture {
    pub(crate) fn new(root: &Path) -> Self {
        let ws = Workspace::new(Some(root));
        let feed = |name: &str, t: *mut c2rs_tensor| {
            let name = c_str(name);
            must(
                c2rs_workspace_feed_move(ws.ptr(), name.as_ptr(), t),
                "c2rs_workspace_feed_move",
            );
        };
        feed(
            "X",
            tensor(1, &[2, 3], &floats(&[0.5, -1.0, 2.0, 3.5, 0.0, -7.25])),
        );
        feed("Y", tensor(2, &[3], &i32s(&[1, 2, 3])));
        let s = tensor(4, &[2], &[]);
        for (i, v) in [&b"a"[..], b"bc"].iter().enumerate() {
            must(
                c2rs_tensor_set_string(s, i, v.as_ptr(), v.len()),
                "c2rs_tensor_set_string",
            );
        }
        feed("S", s);
        feed("B", tensor(5, &[], &[1]));
        feed("E", tensor(1, &[0, 5], &[]));
        feed("L", tensor(10, &[2], &i64s(&[2, 3])));
        feed("U", tensor(6, &[2, 2], &[1, 2, 3, 4]));
        feed("H", tensor(12, &[2], &[0x00, 0x3c, 0x00, 0xc0]));
        feed("D", tensor(13, &[2], &[0; 16]));
        feed("iter", tensor(10, &[], &i64s(&[0])));

        let name = c_str("queue");
        let mut queue = ptr::null_mut();
        must(
            c2rs_blobs_queue_create(ws.ptr(), name.as_ptr(), 4, 2, false, &mut queue),
            "c2rs_blobs_queue_create",
        );
        let record = [
            tensor(1, &[2], &floats(&[1.0, 2.0])),
            tensor(2, &[2], &i32s(&[7, 8])),
        ];
        must(
            c2rs_blobs_queue_enqueue(queue, record.as_ptr(), record.len()),
            "c2rs_blobs_queue_enqueue",
        );

        let name = c_str("rqueue");
        let mut rqueue = ptr::null_mut();
        must(
            c2rs_rebatching_queue_create(ws.ptr(), name.as_ptr(), 4, 2, &mut rqueue),
            "c2rs_rebatching_queue_create",
        );
        let element = [
            tensor(1, &[3], &floats(&[1.0, 2.0, 3.0])),
            tensor(2, &[2], &i32s(&[5, 6])),
        ];
        let borrowed: Vec<*const c2rs_tensor> = element.iter().map(|&t| t.cast_const()).collect();
        must(
            c2rs_rebatching_queue_enqueue(rqueue, borrowed.as_ptr(), borrowed.len(), false),
            "c2rs_rebatching_queue_enqueue",
        );
        element.into_iter().for_each(|t| c2rs_tensor_free(t));

        for (blob, db_type, file) in [
            ("reader", "minidb", "fx_records.minidb"),
            ("lreader", "lmdb", "fx_records.lmdb"),
            ("ckreader", "minidb", "fx_checkpoint.minidb"),
        ] {
            let (db_type, source) = (c_str(db_type), c_path(&root.join(file)));
            let mut reader = ptr::null_mut();
            must(
                c2rs_db_reader_new(db_type.as_ptr(), source.as_ptr(), 1, 0, &mut reader),
                "c2rs_db_reader_new",
            );
            let blob = c_str(blob);
            must(
                c2rs_workspace_set_db_reader(ws.ptr(), blob.as_ptr(), reader),
                "c2rs_workspace_set_db_reader",
            );
            c2rs_db_reader_free(reader);
        }
        Self { ws, queue, rqueue }
    }
}

/// Fetches every tensor blob the workspace holds and reads it through every accessor.
pub(crate) fn read_back(ws: &Workspace) {
    let mut names = ptr::null_mut();
    let status = c2rs_workspace_blob_names(ws.ptr(), false, &mut names);
    if !check_out(status, names, "c2rs_workspace_blob_names", Oom::Finding) {
        finding("c2rs_workspace_blob_names", "refused on a live workspace");
    }
    for i in 0..c2rs_string_list_len(names) {
        // Names are byte strings (a NUL inside is allowed): read them with their length, and
        // check that the C-string getter refuses only names it cannot carry.
        let (mut name, mut len) = (ptr::null(), 0usize);
        if c2rs_string_list_get_n(names, i, &mut name, &mut len) != C2RS_OK || name.is_null() {
            finding(
                "c2rs_string_list_get_n",
                &format!("refused index {i} < len"),
            );
        }
        // SAFETY: get_n gave `len` readable bytes at `name`, valid until `names` is freed.
        let bytes = unsafe { std::slice::from_raw_parts(name, len) };
        let c_name: *const c_char = c2rs_string_list_get(names, i);
        if c_name.is_null() != bytes.contains(&0) {
            finding(
                "c2rs_string_list_get",
                &format!("NULL is {} for index {i} of {bytes:?}", c_name.is_null()),
            );
        }
        let mut t = ptr::null_mut();
        // Non-tensor blobs (queues, readers) answer C2RS_TYPE_MISMATCH.
        let status = c2rs_workspace_fetch_n(ws.ptr(), name.cast(), len, &mut t);
        if check_out(status, t, "c2rs_workspace_fetch", Oom::Allowed) {
            tensor::inspect(t);
            c2rs_tensor_free(t);
        }
    }
    c2rs_string_list_free(names);
}

/// The raw handles the watchdog uses from its thread: the fixture's queues (closed) and its
/// workspace (`c2rs_workspace_cancel`).
struct Handles {
    queue: *mut c2rs_blobs_queue,
    rqueue: *mut c2rs_rebatching_queue,
    ws: *mut c2rs_workspace,
}

// SAFETY: queue handles are fully thread-safe (ARCHITECTURE.md convention 10) and
// `c2rs_workspace_cancel` is safe from any thread; the harness frees them only after
// disarming, which waits for the watchdog to let go of them.
unsafe impl Send for Handles {}

/// Guarded by `Watchdog::state.0`. Invariant: `Some` exactly while an operator or plan runs;
/// the watchdog thread uses the handles only while holding the lock.
struct Armed {
    deadline: Instant,
    period: Duration,
    handles: Handles,
}

pub(crate) struct Watchdog {
    state: (Mutex<Option<Armed>>, Condvar),
}

/// Disarms the watchdog when dropped.
pub(crate) struct ArmedGuard(&'static Watchdog);

impl Drop for ArmedGuard {
    fn drop(&mut self) {
        let mut armed = self.0.state.0.lock().unwrap_or_else(|e| e.into_inner());
        *armed = None;
    }
}

impl Watchdog {
    fn get() -> &'static Watchdog {
        static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
        WATCHDOG.get_or_init(|| {
            let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
                state: (Mutex::new(None), Condvar::new()),
            }));
            std::thread::Builder::new()
                .name("fuzz-watchdog".into())
                .spawn(move || dog.watch())
                .unwrap_or_else(|e| finding("harness", &format!("no watchdog thread: {e}")));
            dog
        })
    }

    /// Arms the watchdog for `fixture` until the guard drops: every `period` from now it
    /// closes the fixture's queues and cancels the plans running on its workspace. It keeps
    /// doing so while armed: a plan that started after a cancel (which only reaches plans
    /// already running) is cancelled one period later.
    pub(crate) fn arm(fixture: &Fixture, period: Duration) -> ArmedGuard {
        let dog = Self::get();
        let mut armed = dog.state.0.lock().unwrap_or_else(|e| e.into_inner());
        *armed = Some(Armed {
            deadline: Instant::now() + period,
            period,
            handles: Handles {
                queue: fixture.queue,
                rqueue: fixture.rqueue,
                ws: fixture.ws.ptr(),
            },
        });
        dog.state.1.notify_one();
        ArmedGuard(dog)
    }

    fn watch(&self) {
        let (lock, cvar) = &self.state;
        let mut armed = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let wait = match armed.as_mut() {
                None => None,
                Some(a) => {
                    let now = Instant::now();
                    if now >= a.deadline {
                        // Closing and cancelling are idempotent and the statuses do not
                        // matter here.
                        let _ = c2rs_blobs_queue_close(a.handles.queue);
                        let _ = c2rs_rebatching_queue_close(a.handles.rqueue);
                        let mut cancelled = 0usize;
                        let _ = c2rs_workspace_cancel(a.handles.ws, &mut cancelled);
                        a.deadline = now + a.period;
                    }
                    Some(a.deadline.saturating_duration_since(now))
                }
            };
            armed = match wait {
                None => cvar.wait(armed).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    cvar.wait_timeout(armed, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}
