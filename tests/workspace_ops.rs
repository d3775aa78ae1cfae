//! Operators, schemas, nets and GetAllBlobNames. Ported from Caffe2's
//! `caffe2/core/operator_test.cc` (RegistryWorks, RegistryWrongDevice, ExceptionWorks,
//! FallbackIfEngineDoesNotBuild, MultipleEngineChoices, CannotUseUninitializedBlob,
//! TestSetUp, TestSetUpInputOutputCount, TestOutputValues, TestScaffolding*, EnginePrefTest,
//! RequiredArg), `caffe2/core/net_test.cc` (Construction*, Declared*, FailingOperator) and
//! the GetAllBlobNames cases of spec/workspace.md. Changes: Caffe2's bool results are
//! `Result<()>` (false = `ErrorKind::RunFailed`); test operators are registered once per
//! process in the global registry under names unique to this file.

// NetDef.num_workers is deprecated in caffe2.proto but is what net_test.cc sets.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use caffe2rs::C2rsError;
use caffe2rs::ErrorKind;
use caffe2rs::operator::{
    DEVICE_CPU, DEVICE_CUDA, OpBase, OpSchema, Operator, create_operator, global_registry,
};
use caffe2rs::ops::FnOperator;
use caffe2rs::proto::{Argument, DeviceOption, NetDef, OperatorDef};
use caffe2rs::tensor::{DataType, Tensor};
use caffe2rs::workspace::Workspace;
use parking_lot::{Condvar, Mutex};

mod support;

// ---------------------------------------------------------------- test operators

/// Counters by name, so tests running in parallel do not share one.
static COUNTERS: once_cell::sync::Lazy<Mutex<HashMap<String, Arc<AtomicUsize>>>> =
    once_cell::sync::Lazy::new(|| Mutex::new(HashMap::new()));

fn counter(name: &str) -> Arc<AtomicUsize> {
    Arc::clone(COUNTERS.lock().entry(name.to_string()).or_default())
}

/// Flags set by tests and waited on by `WsTestWait`.
struct Gate {
    set: Mutex<HashMap<String, bool>>,
    changed: Condvar,
}
static GATE: once_cell::sync::Lazy<Gate> = once_cell::sync::Lazy::new(|| Gate {
    set: Mutex::new(HashMap::new()),
    changed: Condvar::new(),
});

fn raise(flag: &str) {
    GATE.set.lock().insert(flag.to_string(), true);
    GATE.changed.notify_all();
}

/// Waits (bounded) until `flag` is raised; false on timeout.
fn wait_for(flag: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut set = GATE.set.lock();
    while !set.get(flag).copied().unwrap_or(false) {
        if GATE.changed.wait_until(&mut set, deadline).timed_out() {
            return set.get(flag).copied().unwrap_or(false);
        }
    }
    true
}

/// Blocks until flag `release` (arg) is raised or it is cancelled; raises `started` first.
struct WaitOp {
    base: OpBase,
    cancelled: AtomicBool,
}
impl Operator for WaitOp {
    fn base(&self) -> &OpBase {
        &self.base
    }
    fn run(&self) -> caffe2rs::Result<bool> {
        let started: String = self.base.single_arg("started", String::new())?;
        let release: String = self.base.single_arg("release", String::new())?;
        raise(&started);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.cancelled.load(Ordering::Acquire) {
                raise(&format!("{release}:cancelled"));
                return Ok(false);
            }
            if wait_for(&release, Duration::from_millis(20)) {
                return Ok(true);
            }
        }
        Err(C2rsError::timeout("WsTestWait was never released"))
    }
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
}

fn register_test_ops() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut r = global_registry().write();
        r.register(
            OpSchema::new("WsTestJust")
                .num_inputs_range(0, 1)
                .num_outputs_range(0, 1),
            |b| Ok(FnOperator::boxed(b, |_| Ok(true))),
        )
        .unwrap();
        // Engine variants: FOO never builds (unsupported), BAR builds.
        r.register_creator(
            DEVICE_CPU,
            "WsTestJust_ENGINE_FOO",
            Arc::new(|_| Err(C2rsError::unsupported("FOO does not support this"))),
        )
        .unwrap();
        r.register_creator(
            DEVICE_CPU,
            "WsTestJust_ENGINE_BAR",
            Arc::new(|b| Ok(FnOperator::boxed(b, |_| Ok(true)))),
        )
        .unwrap();
        r.register(OpSchema::new("WsTestThrow"), |b| {
            Ok(FnOperator::boxed(b, |_| {
                Err(C2rsError::enforce("Throws an exception."))
            }))
        })
        .unwrap();
        r.register(OpSchema::new("WsTestFalse"), |b| {
            Ok(FnOperator::boxed(b, |_| Ok(false)))
        })
        .unwrap();
        r.register(OpSchema::new("WsTestPanic"), |b| {
            Ok(FnOperator::boxed(b, |_| panic!("operator bug")))
        })
        .unwrap();
        r.register(OpSchema::new("WsTestPanicOnCreate"), |_| {
            panic!("creator bug")
        })
        .unwrap();
        // Writes 5 (INT32 scalar) to its output.
        r.register(OpSchema::new("WsTestWithOutput").num_outputs(1), |b| {
            Ok(FnOperator::boxed(b, |b| {
                b.set_output_tensor(0, Tensor::from_slice(DataType::Int32, &[], &[5i32])?)?;
                Ok(true)
            }))
        })
        .unwrap();
        // NetTestDummy: counts successful runs in counter `counter`; fails with arg fail=1.
        r.register(OpSchema::new("WsTestCount"), |b| {
            Ok(FnOperator::boxed(b, |b| {
                if b.single_arg::<bool>("fail", false)? {
                    return Ok(false);
                }
                counter(&b.single_arg::<String>("counter", String::new())?)
                    .fetch_add(1, Ordering::SeqCst);
                Ok(true)
            }))
        })
        .unwrap();
        r.register(OpSchema::new("WsTestWait"), |b| {
            Ok(Box::new(WaitOp {
                base: b,
                cancelled: AtomicBool::new(false),
            }))
        })
        .unwrap();
        // Building it raises flag `started` (arg), then waits (bounded) for flag `release`.
        r.register(OpSchema::new("WsTestSlowCreate"), |b| {
            raise(&b.single_arg::<String>("started", String::new())?);
            let release = b.single_arg::<String>("release", String::new())?;
            if !wait_for(&release, Duration::from_secs(20)) {
                return Err(C2rsError::timeout("WsTestSlowCreate was never released"));
            }
            Ok(FnOperator::boxed(b, |_| Ok(true)))
        })
        .unwrap();
        r.register(
            OpSchema::new("WsTestRequired").arg_is_required("test_arg"),
            |b| Ok(FnOperator::boxed(b, |_| Ok(true))),
        )
        .unwrap();
        // Engine preference targets.
        r.register(OpSchema::new("WsTestPref"), |b| {
            Ok(FnOperator::boxed(b, |_| Ok(true)))
        })
        .unwrap();
        r.register_creator(
            DEVICE_CPU,
            "WsTestPref_ENGINE_P",
            Arc::new(|b| Ok(FnOperator::boxed(b, |_| Ok(true)))),
        )
        .unwrap();
        r.set_per_op_engine_pref(DEVICE_CPU, "WsTestPref", vec!["P".into()]);
    });
}

// ---------------------------------------------------------------- helpers

fn op(ty: &str, inputs: &[&str], outputs: &[&str]) -> OperatorDef {
    support::op(ty, inputs, outputs, vec![])
}

fn with_arg(mut d: OperatorDef, a: Argument) -> OperatorDef {
    d.arg.push(a);
    d
}

fn net(name: &str, ty: &str, ops: Vec<OperatorDef>) -> NetDef {
    NetDef {
        name: Some(name.into()),
        r#type: Some(ty.into()),
        op: ops,
        ..Default::default()
    }
}

fn strings(ws: &Workspace, blob: &str) -> Vec<String> {
    let t = ws.get_blob(blob).unwrap().tensor().unwrap();
    assert_eq!(t.dims().len(), 1);
    t.strings()
        .unwrap()
        .iter()
        .map(|s| String::from_utf8(s.clone()).unwrap())
        .collect()
}

// ---------------------------------------------------------------- operator_test.cc

#[test]
fn registry_works_and_wrong_device_fails() {
    register_test_ops();
    let ws = Workspace::new();
    let o = create_operator(&op("WsTestJust", &[], &[]), &ws, None).unwrap();
    assert_eq!(o.base().op_type(), "WsTestJust");
    let mut d = op("WsTestJust", &[], &[]);
    d.device_option = Some(DeviceOption {
        device_type: Some(DEVICE_CUDA),
        ..Default::default()
    });
    let e = create_operator(&d, &ws, None).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.message()
            .contains("Cannot create operator of type 'WsTestJust' on the device 'CUDA'"),
        "{}",
        e.message()
    );
    d.device_option = Some(DeviceOption {
        device_type: Some(42),
        ..Default::default()
    });
    let e = create_operator(&d, &ws, None).err().unwrap();
    assert_eq!(e.message(), "Device type 42 not registered.");
}

/// Thread A starts building net `name` (slowly); while it builds, thread B creates a net of
/// the same name. With `overwrite` A's net replaces B's when it is done; without, A fails.
fn race_to_create(name: &str, overwrite: bool) {
    register_test_ops();
    let ws = Workspace::new();
    let (started, release) = (format!("{name}:building"), format!("{name}:created"));
    let slow = net(
        name,
        "simple",
        vec![with_arg(
            with_arg(
                op("WsTestSlowCreate", &[], &[]),
                support::arg_s("started", &started),
            ),
            support::arg_s("release", &release),
        )],
    );
    let a = {
        let ws = Arc::clone(&ws);
        std::thread::spawn(move || ws.create_net(&slow, overwrite))
    };
    assert!(wait_for(&started, Duration::from_secs(20)));
    let fast = net(name, "simple", vec![op("WsTestJust", &[], &[])]);
    let b = ws
        .create_net(&fast, false)
        .expect("nothing under the name yet");
    raise(&release);
    let a = a.join().unwrap();
    let kept = ws.get_net(name).expect("a net under the name");
    if overwrite {
        assert!(Arc::ptr_eq(&kept, &a.expect("overwrite replaces")));
    } else {
        let e = a.err().expect("the name was taken while building");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(Arc::ptr_eq(&kept, &b), "the first net stays");
    }
}

#[test]
fn a_net_created_under_the_name_while_another_builds_wins_unless_overwrite() {
    race_to_create("race_keep", false);
    race_to_create("race_overwrite", true);
}

#[test]
fn exception_works() {
    register_test_ops();
    let ws = Workspace::new();
    let e = ws
        .run_operator_once(&op("WsTestThrow", &[], &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Enforce);
    assert_eq!(e.message(), "op (WsTestThrow): Throws an exception.");
}

#[test]
fn operator_returning_false_is_a_run_failure() {
    register_test_ops();
    let ws = Workspace::new();
    let e = ws
        .run_operator_once(&op("WsTestFalse", &[], &["o"]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RunFailed);
    // Outputs stay even though the run failed.
    assert!(ws.has_blob("o"));
}

#[test]
fn panicking_operator_becomes_a_panic_error() {
    register_test_ops();
    let ws = Workspace::new();
    let e = ws
        .run_operator_once(&op("WsTestPanic", &[], &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic);
    assert!(e.message().contains("operator bug"));
    assert!(!ws.is_poisoned());
}

#[test]
fn panic_while_creating_a_net_poisons_the_workspace() {
    register_test_ops();
    let ws = Workspace::new();
    let d = net(
        "poison",
        "simple",
        vec![op("WsTestPanicOnCreate", &[], &[])],
    );
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ws.create_net(&d, false)));
    assert!(caught.is_err());
    assert!(ws.is_poisoned());
    let e = ws
        .create_net(&net("n", "simple", vec![]), false)
        .err()
        .unwrap();
    assert_eq!(e.message(), "workspace poisoned by an earlier panic");
    assert!(ws.run_operator_once(&op("WsTestJust", &[], &[])).is_err());
}

#[test]
fn fallback_if_engine_does_not_build_and_multiple_engine_choices() {
    register_test_ops();
    let ws = Workspace::new();
    let mut d = op("WsTestJust", &[], &[]);
    d.engine = Some("FOO".into());
    let o = create_operator(&d, &ws, None).unwrap();
    assert_eq!(o.base().engine(), "");
    d.engine = Some("FOO,BAR".into());
    let o = create_operator(&d, &ws, None).unwrap();
    assert_eq!(o.base().engine(), "BAR");
}

#[test]
fn per_op_engine_preference_is_used() {
    register_test_ops();
    let ws = Workspace::new();
    let o = create_operator(&op("WsTestPref", &[], &[]), &ws, None).unwrap();
    assert_eq!(o.base().engine(), "P");
}

#[test]
fn cannot_use_uninitialized_blob() {
    register_test_ops();
    let ws = Workspace::new();
    let e = create_operator(&op("WsTestJust", &["input"], &["output"]), &ws, None)
        .err()
        .unwrap();
    assert_eq!(
        e.message(),
        "op WsTestJust: Encountered a non-existing input blob: input"
    );
    assert!(!ws.has_blob("output"));
}

#[test]
fn relu_with_missing_input_names_it() {
    let ws = Workspace::new();
    let e = ws
        .run_operator_once(&op("Relu", &["X"], &["Y"]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Enforce);
    assert!(
        e.message()
            .contains("op Relu: Encountered a non-existing input blob: X")
    );
}

#[test]
fn set_up_creates_outputs_at_construction() {
    register_test_ops();
    let ws = Workspace::new();
    ws.create_blob("input");
    assert!(!ws.has_blob("output"));
    let o = create_operator(&op("WsTestJust", &["input"], &["output"]), &ws, None).unwrap();
    assert!(ws.has_blob("output"));
    assert!(std::ptr::eq(
        o.base().outputs()[0].as_ref(),
        ws.get_blob("output").unwrap().as_ref()
    ));
}

#[test]
fn set_up_input_output_count_is_checked_by_the_schema() {
    register_test_ops();
    let ws = Workspace::new();
    ws.create_blob("input");
    ws.create_blob("input2");
    let e = create_operator(
        &op("WsTestJust", &["input", "input2"], &["output"]),
        &ws,
        None,
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    assert!(
        e.message()
            .contains("Operator def did not pass schema checking")
    );
    assert!(
        e.message()
            .contains("Input size 2 not in range [min=0, max=1]"),
        "{}",
        e.message()
    );
    let e = create_operator(
        &op("WsTestJust", &["input"], &["output", "output2"]),
        &ws,
        None,
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    assert!(create_operator(&op("WsTestJust", &["input"], &["output"]), &ws, None).is_ok());
}

#[test]
fn output_values_are_written() {
    register_test_ops();
    let ws = Workspace::new();
    ws.run_operator_once(&op("WsTestWithOutput", &[], &["output"]))
        .unwrap();
    let t = ws.get_blob("output").unwrap().tensor().unwrap();
    assert_eq!(t.typed::<i32>().unwrap(), &[5]);
}

#[test]
fn required_argument_is_enforced() {
    register_test_ops();
    let ws = Workspace::new();
    let e = ws
        .run_operator_once(&op("WsTestRequired", &[], &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    assert!(e.message().contains("Argument 'test_arg' is required"));
    ws.run_operator_once(&with_arg(
        op("WsTestRequired", &[], &[]),
        support::arg_i("test_arg", 1),
    ))
    .unwrap();
}

#[test]
fn unknown_type_is_not_found_naming_it() {
    let ws = Workspace::new();
    let e = ws
        .run_operator_once(&op("NoSuchOperator", &[], &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("'NoSuchOperator'"));
    assert!(
        e.message().contains("caffe2rs has no implementation"),
        "{}",
        e.message()
    );
}

#[test]
fn unknown_type_message_shows_argument_values_cut_short() {
    let ws = Workspace::new();
    let mut d = op("NoSuchOperator", &["x"], &["y"]);
    d.arg.push(support::arg_i("axis", 3));
    d.arg.push(support::arg_ints("shape", &[2, 5]));
    d.arg.push(support::arg_s("mode", "wrap"));
    d.arg.push(support::arg_floats("values", &[0.5; 1000]));
    let e = ws.run_operator_once(&d).unwrap_err();
    let m = e.message();
    for part in [
        r#"input: "x""#,
        r#"output: "y""#,
        r#"arg { name: "axis" i: 3 }"#,
        r#"arg { name: "shape" ints: 2 ints: 5 }"#,
        r#"arg { name: "mode" s: "wrap" }"#,
        "… (1000 floats in all)",
    ] {
        assert!(m.contains(part), "{part} missing from: {m}");
    }
    assert_eq!(m.matches("floats: 0.5").count(), 8, "{m}");
}

#[test]
fn scaffolding_simple_and_dag_nets_run() {
    register_test_ops();
    for ty in ["simple", "dag", "async_scheduling", "singlethread_async"] {
        let ws = Workspace::new();
        let mut d = net(
            &format!("scaffold_{ty}"),
            ty,
            vec![
                op("WsTestJust", &[], &["out"]),
                op("WsTestJust", &["out"], &[]),
            ],
        );
        d.num_workers = Some(2);
        let n = ws.create_net(&d, false).unwrap();
        n.run().unwrap();
        ws.run_net(&format!("scaffold_{ty}")).unwrap();
    }
}

// ---------------------------------------------------------------- ConstantFill / Copy / Relu

#[test]
fn constant_fill_copy_and_relu() {
    let ws = Workspace::new();
    let fill = OperatorDef {
        arg: vec![
            Argument {
                name: Some("shape".into()),
                ints: vec![2, 2],
                ..Default::default()
            },
            Argument {
                name: Some("value".into()),
                f: Some(-1.5),
                ..Default::default()
            },
        ],
        ..op("ConstantFill", &[], &["x"])
    };
    ws.run_operator_once(&fill).unwrap();
    assert_eq!(ws.blobs(), ["x"]);
    ws.run_operator_once(&op("Copy", &["x"], &["y"])).unwrap();
    ws.run_operator_once(&op("Relu", &["y"], &["y"])).unwrap();
    let x = ws.get_blob("x").unwrap().tensor().unwrap();
    let y = ws.get_blob("y").unwrap().tensor().unwrap();
    assert_eq!(x.dims(), &[2, 2]);
    assert_eq!(x.typed::<f32>().unwrap(), &[-1.5; 4]);
    assert_eq!(y.typed::<f32>().unwrap(), &[0.0; 4]);
    let int_fill = OperatorDef {
        arg: vec![support::arg_i("dtype", 10), support::arg_i("value", 7)],
        ..op("ConstantFill", &["x"], &["z"])
    };
    ws.run_operator_once(&int_fill).unwrap();
    let z = ws.get_blob("z").unwrap().tensor().unwrap();
    assert_eq!((z.dtype(), z.dims()), (DataType::Int64, &[2i64, 2][..]));
    assert_eq!(z.typed::<i64>().unwrap(), &[7; 4]);
    // Copy is not in place.
    assert_eq!(
        ws.run_operator_once(&op("Copy", &["x"], &["x"]))
            .unwrap_err()
            .kind(),
        ErrorKind::SchemaMismatch
    );
}

// ---------------------------------------------------------------- GetAllBlobNames

#[test]
fn get_all_blob_names_in_empty_workspace_lists_its_output() {
    let ws = Workspace::new();
    ws.run_operator_once(&op("GetAllBlobNames", &[], &["names"]))
        .unwrap();
    assert_eq!(strings(&ws, "names"), ["names"]);
}

#[test]
fn get_all_blob_names_lists_sorted_locals_and_parent_unless_local_only() {
    let parent = Workspace::new();
    parent.create_blob("p");
    let ws = Workspace::new_child(&parent);
    ws.create_blob("b");
    ws.create_blob("a");
    ws.run_operator_once(&op("GetAllBlobNames", &[], &["names"]))
        .unwrap();
    assert_eq!(strings(&ws, "names"), ["a", "b", "names", "p"]);
    let local = with_arg(
        op("GetAllBlobNames", &[], &["local"]),
        support::arg_i("include_shared", 0),
    );
    ws.run_operator_once(&local).unwrap();
    assert_eq!(strings(&ws, "local"), ["a", "b", "local", "names"]);
    // Shadowing lists a name twice.
    ws.create_local_blob("p");
    ws.run_operator_once(&op("GetAllBlobNames", &[], &["names"]))
        .unwrap();
    assert_eq!(
        strings(&ws, "names"),
        ["a", "b", "local", "names", "p", "p"]
    );
}

#[test]
fn get_all_blob_names_lists_forwarded_names_only_with_shared() {
    let src = Workspace::new();
    src.create_blob("s");
    let ws = Workspace::new_with_mapping(Some(&src), &[("fwd".into(), "s".into())]).unwrap();
    ws.run_operator_once(&op("GetAllBlobNames", &[], &["all"]))
        .unwrap();
    assert_eq!(strings(&ws, "all"), ["all", "fwd"]);
    ws.run_operator_once(&with_arg(
        op("GetAllBlobNames", &[], &["loc"]),
        support::arg_i("include_shared", 0),
    ))
    .unwrap();
    assert_eq!(strings(&ws, "loc"), ["all", "loc"]);
}

#[test]
fn get_all_blob_names_rejects_inputs_and_extra_outputs() {
    let ws = Workspace::new();
    ws.create_blob("x");
    let e = ws
        .run_operator_once(&op("GetAllBlobNames", &["x"], &["names"]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    let e = ws
        .run_operator_once(&op("GetAllBlobNames", &[], &["a", "b"]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    let e = ws
        .run_operator_once(&with_arg(
            op("GetAllBlobNames", &[], &["n"]),
            support::arg_s("include_shared", "yes"),
        ))
        .unwrap_err();
    assert!(e.message().contains("expected field i"));
}

// ---------------------------------------------------------------- net_test.cc

fn dummy_net(name: &str, inputs: &[&str], outputs: &[&str]) -> NetDef {
    let mut d = net(
        name,
        "simple",
        vec![
            op("WsTestJust", &["in"], &["hidden"]),
            op("WsTestJust", &["hidden"], &["out"]),
        ],
    );
    d.external_input = inputs.iter().map(|s| s.to_string()).collect();
    d.external_output = outputs.iter().map(|s| s.to_string()).collect();
    d
}

#[test]
fn net_construction_checks_declared_inputs_and_outputs() {
    register_test_ops();
    let ws = Workspace::new();
    ws.create_blob("in");
    ws.create_net(&dummy_net("no_decl", &[], &[]), false)
        .unwrap();
    ws.create_net(&dummy_net("decl_in", &["in"], &[]), false)
        .unwrap();
    ws.create_net(&dummy_net("decl_out", &[], &["out"]), false)
        .unwrap();
    let e = ws
        .create_net(&dummy_net("insufficient", &["unuseful"], &[]), false)
        .err()
        .unwrap();
    assert!(
        e.message()
            .contains("op WsTestJust: Source for input in is unknown for net insufficient"),
        "{}",
        e.message()
    );
    let e = ws
        .create_net(&dummy_net("unmet", &[], &["unproduced"]), false)
        .err()
        .unwrap();
    assert!(
        e.message()
            .contains("declared as output but never produced")
    );
    assert!(e.message().contains("unproduced") && e.message().contains("unmet"));
    assert!(!ws.has_net("insufficient") && !ws.has_net("unmet"));
    assert_eq!(ws.nets(), ["decl_in", "decl_out", "no_decl"]);
}

#[test]
fn create_net_refuses_to_overwrite_unless_asked() {
    register_test_ops();
    let ws = Workspace::new();
    ws.create_net(&net("n", "simple", vec![]), false).unwrap();
    let e = ws
        .create_net(&net("n", "simple", vec![]), false)
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        e.message(),
        "I respectfully refuse to overwrite an existing net of the same name \"n\", unless you explicitly specify overwrite=true."
    );
    ws.create_net(&net("n", "dag", vec![]), true).unwrap();
    // A failed rebuild with overwrite loses the old net.
    assert!(
        ws.create_net(
            &net("n", "simple", vec![op("NoSuchOperator", &[], &[])]),
            true
        )
        .is_err()
    );
    assert!(!ws.has_net("n"));
}

#[test]
fn unknown_net_type_creates_no_entry_and_missing_net_is_not_found() {
    let ws = Workspace::new();
    let e = ws
        .create_net(&net("odd", "no_such_executor", vec![]), false)
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(!ws.has_net("odd"));
    let e = ws
        .run_net_once(&net("odd", "no_such_executor", vec![]))
        .unwrap_err();
    assert_eq!(
        e.message(),
        "Could not create net: odd of type no_such_executor"
    );
    // Any other failure to build keeps its own error, a missing operator type included.
    let e = ws
        .run_net_once(&net("odd", "simple", vec![op("NoSuchOperator", &[], &[])]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.message()
            .contains("Cannot create operator of type 'NoSuchOperator'"),
        "{}",
        e.message()
    );
    let e = ws.run_net("missing").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.message(), "Network missing does not exist yet.");
}

#[test]
fn run_net_once_does_not_register_the_net() {
    let ws = Workspace::new();
    let fill = with_arg(
        op("ConstantFill", &[], &["testblob"]),
        Argument {
            name: Some("shape".into()),
            ints: vec![1],
            ..Default::default()
        },
    );
    ws.run_net_once(&net("once", "", vec![fill])).unwrap();
    assert!(ws.has_blob("testblob"));
    assert!(ws.nets().is_empty());
}

#[test]
fn simple_net_stops_at_first_failure_and_names_the_op() {
    register_test_ops();
    let ws = Workspace::new();
    let name = "simple_stop";
    let c = counter(name);
    let count = || with_arg(op("WsTestCount", &[], &[]), support::arg_s("counter", name));
    let d = net(
        name,
        "simple",
        vec![
            count(),
            with_arg(op("WsTestCount", &[], &[]), support::arg_i("fail", 1)),
            count(),
        ],
    );
    ws.create_net(&d, false).unwrap();
    assert_eq!(
        ws.last_failed_op_net_position(),
        None,
        "nothing failed yet in a new workspace"
    );
    let e = ws.run_net(name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RunFailed);
    assert_eq!(e.message(), "op #1 (WsTestCount): operator returned false");
    assert_eq!(c.load(Ordering::SeqCst), 1);
    assert_eq!(ws.last_failed_op_net_position(), Some(1));
    // A later failure outside any net has no position: it replaces the net's.
    ws.run_operator_once(&op("WsTestFalse", &[], &["o"]))
        .unwrap_err();
    assert_eq!(ws.last_failed_op_net_position(), None);
}

#[test]
fn dag_failing_operator_stops_after_one_op() {
    register_test_ops();
    let ws = Workspace::new();
    ws.create_blob("in");
    let name = "dag_failing";
    let c = counter(name);
    let mut d = net(
        name,
        "dag",
        vec![
            with_arg(
                op("WsTestCount", &["in"], &["hidden"]),
                support::arg_s("counter", name),
            ),
            with_arg(
                with_arg(
                    op("WsTestCount", &["hidden"], &["out"]),
                    support::arg_i("fail", 1),
                ),
                support::arg_s("counter", name),
            ),
            with_arg(
                op("WsTestCount", &["out"], &["final"]),
                support::arg_s("counter", name),
            ),
        ],
    );
    d.external_input.push("in".into());
    d.num_workers = Some(4);
    let n = ws.create_net(&d, false).unwrap();
    for _ in 0..10 {
        c.store(0, Ordering::SeqCst);
        assert_eq!(n.run().unwrap_err().kind(), ErrorKind::RunFailed);
        assert_eq!(c.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn dag_runs_independent_ops_in_parallel() {
    register_test_ops();
    // Each op raises its own "started" flag and waits for the other's: only parallel
    // execution lets both finish (bounded by the ops' 20 s limit).
    let ws = Workspace::new();
    let a = with_arg(
        with_arg(
            op("WsTestWait", &[], &["a"]),
            support::arg_s("started", "par_a"),
        ),
        support::arg_s("release", "par_b"),
    );
    let b = with_arg(
        with_arg(
            op("WsTestWait", &[], &["b"]),
            support::arg_s("started", "par_b"),
        ),
        support::arg_s("release", "par_a"),
    );
    let mut d = net("parallel", "dag", vec![a, b]);
    d.num_workers = Some(2);
    ws.run_net_once(&d).unwrap();
    let dag = ws.create_net(&d, true).unwrap();
    assert_eq!(dag.operators().len(), 2);
}

#[test]
fn dag_failure_cancels_running_ops() {
    register_test_ops();
    let ws = Workspace::new();
    // Op 0 blocks until cancelled; op 1 waits until op 0 has started, then fails.
    let wait = with_arg(
        with_arg(
            op("WsTestWait", &[], &["w"]),
            support::arg_s("started", "cancel_started"),
        ),
        support::arg_s("release", "cancel_never"),
    );
    let gate = with_arg(
        with_arg(
            op("WsTestWait", &[], &["g"]),
            support::arg_s("started", "cancel_gate_started"),
        ),
        support::arg_s("release", "cancel_started"),
    );
    let fail = with_arg(op("WsTestCount", &["g"], &[]), support::arg_i("fail", 1));
    let mut d = net("cancel", "dag", vec![wait, gate, fail]);
    d.num_workers = Some(3);
    let e = ws.run_net_once(&d).unwrap_err();
    assert_eq!(e.message(), "op #2 (WsTestCount): operator returned false");
    assert!(wait_for("cancel_never:cancelled", Duration::from_secs(20)));
}

// ---------------------------------------------------------------- concurrency

#[test]
fn blocked_operator_does_not_block_feed_fetch_or_other_runs() {
    register_test_ops();
    let ws = Workspace::new();
    let blocker = with_arg(
        with_arg(
            op("WsTestWait", &[], &["blocked_out"]),
            support::arg_s("started", "block_started"),
        ),
        support::arg_s("release", "block_release"),
    );
    ws.create_net(&net("blocker", "simple", vec![blocker]), false)
        .unwrap();
    let fill = with_arg(
        op("ConstantFill", &[], &["filled"]),
        Argument {
            name: Some("shape".into()),
            ints: vec![3],
            ..Default::default()
        },
    );
    ws.create_net(&net("filler", "simple", vec![fill]), false)
        .unwrap();

    std::thread::scope(|s| {
        let runner = s.spawn(|| ws.run_net("blocker"));
        assert!(wait_for("block_started", Duration::from_secs(20)));
        // Meanwhile, from several threads: create/feed/fetch/remove blobs, run another net.
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let ws = &ws;
                s.spawn(move || {
                    for i in 0..50 {
                        let name = format!("t{t}_{i}");
                        let b = ws.create_blob(&name).unwrap();
                        b.set_tensor(Tensor::from_slice(DataType::Int32, &[1], &[i]).unwrap());
                        assert_eq!(
                            ws.get_blob(&name)
                                .unwrap()
                                .tensor()
                                .unwrap()
                                .typed::<i32>()
                                .unwrap(),
                            &[i]
                        );
                        assert!(ws.remove_blob(&name));
                    }
                    ws.run_net("filler").unwrap();
                    ws.run_operator_once(&op("GetAllBlobNames", &[], &[&format!("names{t}")]))
                        .unwrap();
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        raise("block_release");
        runner.join().unwrap().unwrap();
    });
    assert_eq!(
        ws.get_blob("filled").unwrap().tensor().unwrap().dims(),
        &[3]
    );
}

#[test]
fn removing_a_blob_used_by_a_net_keeps_the_net_working() {
    let ws = Workspace::new();
    let fill = with_arg(
        op("ConstantFill", &[], &["x"]),
        Argument {
            name: Some("shape".into()),
            ints: vec![2],
            ..Default::default()
        },
    );
    let n = ws
        .create_net(
            &net("keep", "simple", vec![fill, op("Relu", &["x"], &["y"])]),
            false,
        )
        .unwrap();
    assert!(ws.remove_blob("x"));
    assert!(ws.remove_blob("y"));
    n.run().unwrap();
    assert!(!ws.has_blob("x"));
    assert_eq!(
        n.operators()[1].base().outputs()[0]
            .tensor()
            .unwrap()
            .dims(),
        &[2]
    );
}

#[test]
fn threads_mutating_blobs_while_a_net_runs_leave_results_unchanged() {
    let ws = Workspace::new();
    let fill = OperatorDef {
        arg: vec![
            Argument {
                name: Some("shape".into()),
                ints: vec![4],
                ..Default::default()
            },
            Argument {
                name: Some("value".into()),
                f: Some(-2.0),
                ..Default::default()
            },
        ],
        ..op("ConstantFill", &[], &["x"])
    };
    ws.create_net(
        &net(
            "stable",
            "dag",
            vec![fill, op("Relu", &["x"], &["y"]), op("Copy", &["x"], &["z"])],
        ),
        false,
    )
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let ws = &ws;
            s.spawn(move || {
                for i in 0..100 {
                    let name = format!("m{t}_{i}");
                    ws.create_blob(&name).unwrap().set_string(vec![1, 2]);
                    ws.remove_blob(&name);
                }
            });
        }
        for _ in 0..50 {
            ws.run_net("stable").unwrap();
        }
    });
    assert_eq!(
        ws.get_blob("y")
            .unwrap()
            .tensor()
            .unwrap()
            .typed::<f32>()
            .unwrap(),
        &[0.0; 4]
    );
    assert_eq!(
        ws.get_blob("z")
            .unwrap()
            .tensor()
            .unwrap()
            .typed::<f32>()
            .unwrap(),
        &[-2.0; 4]
    );
    assert_eq!(ws.local_blobs(), ["x", "y", "z"]);
}

#[test]
fn a_net_refuses_to_read_a_blob_removed_after_it_was_created() {
    let ws = Workspace::new();
    support::feed(
        &ws,
        "z",
        Tensor::from_slice(DataType::Float, &[1], &[-2.0f32]).unwrap(),
    );
    ws.create_net(
        &net("uses_z", "simple", vec![op("Relu", &["z"], &["r"])]),
        false,
    )
    .unwrap();
    ws.run_net("uses_z").unwrap();
    assert!(ws.remove_blob("z"));
    support::feed(
        &ws,
        "z",
        Tensor::from_slice(DataType::Float, &[1], &[3.0f32]).unwrap(),
    );
    // The old net was built on the removed blob: it says so instead of reading it silently.
    let e = ws.run_net("uses_z").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Enforce);
    assert!(
        e.message().contains("op #0 (Relu)")
            && e.message()
                .contains("blob z was removed from the workspace"),
        "{}",
        e.message()
    );
    // A net created again binds the new blob.
    ws.create_net(
        &net("uses_z", "simple", vec![op("Relu", &["z"], &["r"])]),
        true,
    )
    .unwrap();
    ws.run_net("uses_z").unwrap();
    assert_eq!(support::fetch(&ws, "r").typed::<f32>().unwrap(), &[3.0f32]);
}
