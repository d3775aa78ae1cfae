//! The utility operators plans and checkpoints use, against Caffe2's values: the
//! `GivenTensor*Fill` family (`given_tensor_fill_op.{h,cc}`, `filler_op.h` shape rules),
//! `Iter`/`AtomicIter`/`CreateMutex` (`sgd/iter_op.{h,cc}`), the counters (`counter_ops`),
//! the timers (`stats_ops.cc`), `Free` and `Alias`, and a net rewritten by
//! `release_blobs_when_used` running and freeing what it says.
//! Differences from Caffe2 (see the op files): a shape whose element count differs from the
//! number of values is an error; a non-INT64 Iter counter is an error.

use std::collections::HashSet;
use std::sync::Arc;

use caffe2rs::ErrorKind;
use caffe2rs::memonger::release::release_blobs_when_used;
use caffe2rs::proto::{Argument, NetDef, OperatorDef};
use caffe2rs::tensor::{DataType, Tensor};
use caffe2rs::workspace::Workspace;

mod support;
use support::{arg_floats, arg_i, arg_ints, arg_s, arg_strings, feed, fetch, op};

fn run(ws: &Arc<Workspace>, def: OperatorDef) -> caffe2rs::Result<()> {
    ws.run_operator_once(&def)
}

fn i64s(dims: &[i64], v: &[i64]) -> Tensor {
    Tensor::from_slice(DataType::Int64, dims, v).unwrap()
}

fn fill(ty: &str, out: &str, args: Vec<Argument>) -> OperatorDef {
    op(ty, &[], &[out], args)
}

fn err_of(r: caffe2rs::Result<()>) -> caffe2rs::C2rsError {
    r.expect_err("the operator must fail")
}

// ------------------------------------------------------------------ GivenTensor*Fill

#[test]
fn given_tensor_fill_family_gives_caffe2_types_shapes_and_values() {
    let ws = Workspace::new();
    let shape = arg_ints("shape", &[2, 3]);
    run(
        &ws,
        fill(
            "GivenTensorFill",
            "f",
            vec![
                shape.clone(),
                arg_floats("values", &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
            ],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "f");
    assert_eq!((t.dtype(), t.dims()), (DataType::Float, &[2i64, 3][..]));
    assert_eq!(t.typed::<f32>().unwrap(), [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);

    // Double values travel as floats (f32) and widen exactly.
    run(
        &ws,
        fill(
            "GivenTensorDoubleFill",
            "d",
            vec![arg_ints("shape", &[2]), arg_floats("values", &[0.1, -2.0])],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "d");
    assert_eq!(t.dtype(), DataType::Double);
    assert_eq!(t.typed::<f64>().unwrap(), [f64::from(0.1f32), -2.0]);

    // The rebatching_queue_test multiple_components values.
    let bools: Vec<i64> = (0..10).map(|x| i64::from(x % 2 == 0)).collect();
    run(
        &ws,
        fill(
            "GivenTensorBoolFill",
            "b",
            vec![arg_ints("shape", &[10]), arg_ints("values", &bools)],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "b");
    assert_eq!(t.dtype(), DataType::Bool);
    assert_eq!(t.typed::<u8>().unwrap(), [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);

    let ints: Vec<i64> = (0..10).collect();
    run(
        &ws,
        fill(
            "GivenTensorIntFill",
            "i",
            vec![arg_ints("shape", &[10]), arg_ints("values", &ints)],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "i");
    assert_eq!(t.dtype(), DataType::Int32);
    assert_eq!(t.typed::<i32>().unwrap(), (0..10).collect::<Vec<i32>>());

    // checkpoint_test: ops.Const([100]) is a GivenTensorInt64Fill of shape [1].
    run(
        &ws,
        fill(
            "GivenTensorInt64Fill",
            "l",
            vec![arg_ints("shape", &[1]), arg_ints("values", &[i64::MAX])],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "l");
    assert_eq!((t.dtype(), t.dims()), (DataType::Int64, &[1i64][..]));
    assert_eq!(t.typed::<i64>().unwrap(), [i64::MAX]);

    run(
        &ws,
        fill(
            "GivenTensorStringFill",
            "s",
            vec![arg_ints("shape", &[2]), arg_strings("values", &["foo", ""])],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "s");
    assert_eq!(t.dtype(), DataType::String);
    assert_eq!(t.strings().unwrap(), [b"foo".to_vec(), Vec::new()]);
}

#[test]
fn given_tensor_fill_without_shape_is_a_scalar() {
    let ws = Workspace::new();
    run(
        &ws,
        fill("GivenTensorFill", "x", vec![arg_floats("values", &[7.0])]),
    )
    .unwrap();
    let t = fetch(&ws, "x");
    assert!(t.dims().is_empty());
    assert_eq!(t.typed::<f32>().unwrap(), [7.0]);
}

#[test]
fn given_tensor_fill_dtype_picks_the_element_type_by_number_or_name() {
    let ws = Workspace::new();
    let cases: [(Argument, Argument, DataType); 5] = [
        (
            arg_i("dtype", 10),
            arg_ints("values", &[1, -2]),
            DataType::Int64,
        ),
        (
            arg_s("dtype", "int32"),
            arg_ints("values", &[1, -2]),
            DataType::Int32,
        ),
        (
            arg_i("dtype", 13),
            arg_floats("values", &[1.5, -2.0]),
            DataType::Double,
        ),
        (
            arg_i("dtype", 9),
            arg_ints("values", &[1, -2]),
            DataType::Int16,
        ),
        (
            arg_s("dtype", "STRING"),
            arg_strings("values", &["a", "b"]),
            DataType::String,
        ),
    ];
    for (dtype, values, want) in cases {
        run(
            &ws,
            fill(
                "GivenTensorFill",
                "t",
                vec![dtype, values, arg_ints("shape", &[2])],
            ),
        )
        .unwrap();
        assert_eq!(fetch(&ws, "t").dtype(), want);
    }
    let i64t = {
        run(
            &ws,
            fill(
                "GivenTensorFill",
                "t",
                vec![
                    arg_i("dtype", 10),
                    arg_ints("values", &[1, -2]),
                    arg_ints("shape", &[2]),
                ],
            ),
        )
        .unwrap();
        fetch(&ws, "t")
    };
    assert_eq!(i64t.typed::<i64>().unwrap(), [1, -2]);

    let e = err_of(run(
        &ws,
        fill(
            "GivenTensorFill",
            "t",
            vec![arg_i("dtype", 0), arg_floats("values", &[1.0])],
        ),
    ));
    assert!(
        e.message()
            .contains("Cannot have undefined 'dtype' argument"),
        "{e}"
    );
    let e = err_of(run(
        &ws,
        fill(
            "GivenTensorFill",
            "t",
            vec![arg_i("dtype", 3), arg_ints("values", &[1])],
        ),
    ));
    assert!(
        e.message().contains("Unexpected 'dtype' argument value: 3"),
        "{e}"
    );
    let e = err_of(run(
        &ws,
        fill(
            "GivenTensorFill",
            "t",
            vec![arg_s("dtype", "quux"), arg_ints("values", &[1])],
        ),
    ));
    assert!(e.message().contains("Unknown 'to' argument: QUUX"), "{e}");
    // The typed variants ignore `dtype`, as Caffe2's.
    run(
        &ws,
        fill(
            "GivenTensorIntFill",
            "t",
            vec![arg_i("dtype", 1), arg_ints("values", &[4])],
        ),
    )
    .unwrap();
    assert_eq!(fetch(&ws, "t").dtype(), DataType::Int32);
}

#[test]
fn given_tensor_fill_takes_the_shape_from_the_input_plus_extra_shape() {
    let ws = Workspace::new();
    feed(
        &ws,
        "like",
        Tensor::zeros(DataType::Float, &[2, 2]).unwrap(),
    );
    run(
        &ws,
        op(
            "GivenTensorInt64Fill",
            &["like"],
            &["y"],
            vec![
                arg_ints("extra_shape", &[1]),
                arg_ints("values", &[1, 2, 3, 4]),
            ],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "y");
    assert_eq!(t.dims(), [2, 2, 1]);
    assert_eq!(t.typed::<i64>().unwrap(), [1, 2, 3, 4]);
}

#[test]
fn given_tensor_fill_input_as_shape_reads_the_input_values() {
    let ws = Workspace::new();
    feed(&ws, "shape", i64s(&[2], &[3, 1]));
    run(
        &ws,
        op(
            "GivenTensorFill",
            &["shape"],
            &["y"],
            vec![
                arg_i("input_as_shape", 1),
                arg_floats("values", &[1.0, 2.0, 3.0]),
            ],
        ),
    )
    .unwrap();
    let t = fetch(&ws, "y");
    assert_eq!(t.dims(), [3, 1]);
    assert_eq!(t.typed::<f32>().unwrap(), [1.0, 2.0, 3.0]);

    // In place is allowed (AllowInplace {0, 0}): the shape blob becomes the filled tensor.
    run(
        &ws,
        op(
            "GivenTensorIntFill",
            &["shape"],
            &["shape"],
            vec![arg_i("input_as_shape", 1), arg_ints("values", &[9, 8, 7])],
        ),
    )
    .unwrap();
    assert_eq!(fetch(&ws, "shape").typed::<i32>().unwrap(), [9, 8, 7]);

    feed(
        &ws,
        "bad_dtype",
        Tensor::from_slice(DataType::Int32, &[1], &[3i32]).unwrap(),
    );
    let e = err_of(run(
        &ws,
        op(
            "GivenTensorFill",
            &["bad_dtype"],
            &["z"],
            vec![
                arg_i("input_as_shape", 1),
                arg_floats("values", &[1.0, 2.0, 3.0]),
            ],
        ),
    ));
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
    assert!(
        e.message().contains("1D tensor of data type int64_t"),
        "{e}"
    );

    feed(&ws, "bad_rank", i64s(&[1, 1], &[3]));
    let e = err_of(run(
        &ws,
        op(
            "GivenTensorFill",
            &["bad_rank"],
            &["z"],
            vec![
                arg_i("input_as_shape", 1),
                arg_floats("values", &[1.0, 2.0, 3.0]),
            ],
        ),
    ));
    assert!(
        e.message()
            .contains("When input_as_shape is true, the input must be a 1D tensor"),
        "{e}"
    );
}

#[test]
fn given_tensor_fill_construction_errors_are_caffe2s() {
    let ws = Workspace::new();
    feed(&ws, "x", Tensor::zeros(DataType::Float, &[1]).unwrap());
    let values = || arg_floats("values", &[1.0]);
    let cases: Vec<(OperatorDef, &str)> = vec![
        (
            op(
                "GivenTensorFill",
                &["x"],
                &["y"],
                vec![arg_ints("shape", &[1]), values()],
            ),
            "Cannot set the shape argument and pass in an input at the same time",
        ),
        (
            fill(
                "GivenTensorFill",
                "y",
                vec![arg_ints("extra_shape", &[1]), values()],
            ),
            "Cannot set extra_shape when there is no input",
        ),
        (
            fill(
                "GivenTensorFill",
                "y",
                vec![arg_i("input_as_shape", 1), values()],
            ),
            "An input must be given if input_as_shape is true",
        ),
        (
            fill("GivenTensorFill", "y", vec![arg_i("shape", 1), values()]),
            "Fill 'shape' argument was a scalar, list expected",
        ),
    ];
    for (def, want) in cases {
        let e = err_of(run(&ws, def));
        assert!(e.message().contains(want), "{want}: {e}");
    }
    // `values` is a required argument of the schema.
    let e = err_of(run(
        &ws,
        fill("GivenTensorFill", "y", vec![arg_ints("shape", &[1])]),
    ));
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    assert!(
        e.message()
            .contains("Argument 'values' is required for Operator 'GivenTensorFill'"),
        "{e}"
    );
    // Ints narrow losslessly or fail.
    let e = err_of(run(
        &ws,
        fill(
            "GivenTensorIntFill",
            "y",
            vec![arg_ints("values", &[1 << 40])],
        ),
    ));
    assert!(e.message().contains("cannot be represented"), "{e}");
}

#[test]
fn given_tensor_fill_refuses_a_shape_its_values_cannot_fill_before_allocating() {
    let ws = Workspace::new();
    // 2^40 floats would be 4 TiB: refused by the count check, nothing is allocated.
    let e = err_of(run(
        &ws,
        fill(
            "GivenTensorFill",
            "y",
            vec![
                arg_ints("shape", &[1 << 20, 1 << 20]),
                arg_floats("values", &[1.0]),
            ],
        ),
    ));
    assert!(
        e.message()
            .contains("GivenTensorFill: output shape [1048576, 1048576] has 1099511627776 elements but `values` has 1"),
        "{e}"
    );
    let e = err_of(run(
        &ws,
        fill(
            "GivenTensorStringFill",
            "y",
            vec![arg_ints("shape", &[3]), arg_strings("values", &["a", "b"])],
        ),
    ));
    assert!(
        e.message().contains("has 3 elements but `values` has 2"),
        "{e}"
    );
    let e = err_of(run(
        &ws,
        fill(
            "GivenTensorFill",
            "y",
            vec![arg_ints("shape", &[-1]), arg_floats("values", &[1.0])],
        ),
    ));
    assert!(e.message().contains("negative"), "{e}");
}

// ------------------------------------------------------------------ Iter, AtomicIter, CreateMutex

fn iter_value(ws: &Workspace, name: &str) -> i64 {
    let t = fetch(ws, name);
    assert_eq!((t.dtype(), t.dims()), (DataType::Int64, &[1i64][..]));
    t.typed::<i64>().unwrap()[0]
}

#[test]
fn iter_without_input_starts_at_zero_and_counts_runs() {
    let ws = Workspace::new();
    let net = NetDef {
        name: Some("iter_net".into()),
        op: vec![op("Iter", &[], &["it"], vec![])],
        ..Default::default()
    };
    ws.create_net(&net, false).unwrap();
    for want in 1..=3 {
        ws.run_net("iter_net").unwrap();
        assert_eq!(iter_value(&ws, "it"), want);
    }
}

#[test]
fn iter_in_place_increments_an_existing_counter() {
    let ws = Workspace::new();
    feed(&ws, "it", i64s(&[1], &[41]));
    run(&ws, op("Iter", &["it"], &["it"], vec![])).unwrap();
    assert_eq!(iter_value(&ws, "it"), 42);
    // The schema enforces in place.
    let e = err_of(run(&ws, op("Iter", &["it"], &["other"], vec![])));
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
}

#[test]
fn iter_overflow_past_int64_max_fails_as_caffe2_reported_it() {
    let ws = Workspace::new();
    feed(&ws, "it", i64s(&[1], &[i64::MAX - 1]));
    run(&ws, op("Iter", &["it"], &["it"], vec![])).unwrap();
    assert_eq!(iter_value(&ws, "it"), i64::MAX);
    let e = err_of(run(&ws, op("Iter", &["it"], &["it"], vec![])));
    assert_eq!(e.kind(), ErrorKind::Enforce);
    assert_eq!(e.message(), "op (Iter): Overflow will happen!");
    // The counter is left at INT64 max, not wrapped.
    assert_eq!(iter_value(&ws, "it"), i64::MAX);
}

#[test]
fn iter_rejects_negative_wrong_type_and_wrong_size_counters() {
    let ws = Workspace::new();
    feed(&ws, "neg", i64s(&[1], &[-1]));
    let e = err_of(run(&ws, op("Iter", &["neg"], &["neg"], vec![])));
    assert!(
        e.message()
            .contains("Previous iteration number is negative."),
        "{e}"
    );
    feed(&ws, "two", i64s(&[2], &[0, 0]));
    let e = err_of(run(&ws, op("Iter", &["two"], &["two"], vec![])));
    assert!(
        e.message()
            .contains("The output of IterOp exists, but not of the right size."),
        "{e}"
    );
    feed(
        &ws,
        "flt",
        Tensor::from_slice(DataType::Float, &[1], &[0.0f32]).unwrap(),
    );
    let e = err_of(run(&ws, op("Iter", &["flt"], &["flt"], vec![])));
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
}

#[test]
fn atomic_iter_under_a_mutex_loses_no_increment_across_threads() {
    let ws = Workspace::new();
    run(&ws, op("CreateMutex", &[], &["mutex"], vec![])).unwrap();
    assert_eq!(
        ws.get_blob("mutex").unwrap().type_name(),
        "std::unique_ptr<std::mutex>"
    );
    feed(&ws, "it", i64s(&[1], &[0]));
    let net = NetDef {
        name: Some("atomic".into()),
        op: vec![op("AtomicIter", &["mutex", "it"], &["it"], vec![])],
        ..Default::default()
    };
    ws.create_net(&net, false).unwrap();
    let (threads, runs) = (8, 200);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..runs {
                    ws.run_net("atomic").unwrap();
                }
            });
        }
    });
    assert_eq!(iter_value(&ws, "it"), threads * runs);
    // Input 0 must be a mutex.
    feed(&ws, "not_a_mutex", i64s(&[1], &[0]));
    let e = err_of(run(
        &ws,
        op("AtomicIter", &["not_a_mutex", "it"], &["it"], vec![]),
    ));
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
    assert!(e.message().contains("std::unique_ptr<std::mutex>"), "{e}");
}

// ------------------------------------------------------------------ counters

fn bool_scalar(ws: &Workspace, name: &str) -> bool {
    let t = fetch(ws, name);
    assert_eq!((t.dtype(), t.dims().len()), (DataType::Bool, 0));
    t.typed::<u8>().unwrap()[0] != 0
}

fn i64_scalar(ws: &Workspace, name: &str) -> i64 {
    let t = fetch(ws, name);
    assert_eq!((t.dtype(), t.dims().len()), (DataType::Int64, 0));
    t.typed::<i64>().unwrap()[0]
}

#[test]
fn counter_ops_count_down_up_reset_and_retrieve_as_caffe2() {
    let ws = Workspace::new();
    run(
        &ws,
        op("CreateCounter", &[], &["c"], vec![arg_i("init_count", 2)]),
    )
    .unwrap();
    let down = || run(&ws, op("CountDown", &["c"], &["done"], vec![])).unwrap();
    down();
    assert!(!bool_scalar(&ws, "done"));
    down();
    assert!(!bool_scalar(&ws, "done"));
    down();
    assert!(bool_scalar(&ws, "done"));
    run(&ws, op("RetrieveCount", &["c"], &["n"], vec![])).unwrap();
    assert_eq!(i64_scalar(&ws, "n"), -1);
    run(&ws, op("CheckCounterDone", &["c"], &["d"], vec![])).unwrap();
    assert!(bool_scalar(&ws, "d"));
    run(
        &ws,
        op(
            "ResetCounter",
            &["c"],
            &["prev"],
            vec![arg_i("init_count", 5)],
        ),
    )
    .unwrap();
    assert_eq!(i64_scalar(&ws, "prev"), -1);
    run(&ws, op("CountUp", &["c"], &["before"], vec![])).unwrap();
    assert_eq!(i64_scalar(&ws, "before"), 5);
    run(&ws, op("RetrieveCount", &["c"], &["n"], vec![])).unwrap();
    assert_eq!(i64_scalar(&ws, "n"), 6);
    run(&ws, op("CheckCounterDone", &["c"], &["d"], vec![])).unwrap();
    assert!(!bool_scalar(&ws, "d"));
    // ResetCounter's output is optional.
    run(&ws, op("ResetCounter", &["c"], &[], vec![])).unwrap();
    run(&ws, op("RetrieveCount", &["c"], &["n"], vec![])).unwrap();
    assert_eq!(i64_scalar(&ws, "n"), 0);

    let e = err_of(run(
        &ws,
        op(
            "CreateCounter",
            &[],
            &["bad"],
            vec![arg_i("init_count", -1)],
        ),
    ));
    assert!(
        e.message()
            .contains("negative init_count is not permitted."),
        "{e}"
    );
    feed(&ws, "not_counter", i64s(&[1], &[0]));
    let e = err_of(run(&ws, op("CountDown", &["not_counter"], &["x"], vec![])));
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
}

#[test]
fn counter_and_mutex_blobs_survive_save_and_load() {
    let db = std::env::temp_dir().join(format!("c2rs-utility-ops-{}.minidb", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let db = db.to_str().unwrap();
    let ws = Workspace::new();
    run(
        &ws,
        op("CreateCounter", &[], &["c"], vec![arg_i("init_count", 7)]),
    )
    .unwrap();
    run(&ws, op("CountDown", &["c"], &["done"], vec![])).unwrap();
    run(&ws, op("CreateMutex", &[], &["m"], vec![])).unwrap();
    let db_args = || {
        vec![
            arg_s("db", db),
            arg_s("db_type", "minidb"),
            arg_i("absolute_path", 1),
        ]
    };
    run(&ws, op("Save", &["c", "m"], &[], db_args())).unwrap();

    let fresh = Workspace::new();
    run(&fresh, op("Load", &[], &["c", "m"], db_args())).unwrap();
    run(&fresh, op("RetrieveCount", &["c"], &["n"], vec![])).unwrap();
    assert_eq!(i64_scalar(&fresh, "n"), 6);
    assert_eq!(
        fresh.get_blob("m").unwrap().type_name(),
        "std::unique_ptr<std::mutex>"
    );
    // The loaded mutex works as AtomicIter's.
    feed(&fresh, "it", i64s(&[1], &[0]));
    run(&fresh, op("AtomicIter", &["m", "it"], &["it"], vec![])).unwrap();
    assert_eq!(iter_value(&fresh, "it"), 1);
    let _ = std::fs::remove_file(db);
}

// ------------------------------------------------------------------ timers

#[test]
fn timer_ops_measure_until_stopped_and_refuse_misuse() {
    let ws = Workspace::new();
    run(&ws, op("TimerBegin", &[], &["timer"], vec![])).unwrap();
    assert_eq!(
        ws.get_blob("timer").unwrap().type_name(),
        "caffe2::TimerInstance*"
    );
    run(&ws, op("TimerGet", &["timer"], &["t0"], vec![])).unwrap();
    let t0 = i64_scalar(&ws, "t0");
    assert!(t0 >= 0);
    run(&ws, op("TimerGetAndEnd", &["timer"], &["t1"], vec![])).unwrap();
    let t1 = fetch(&ws, "t1");
    assert_eq!((t1.dtype(), t1.dims()), (DataType::Int64, &[1i64][..]));
    assert!(t1.typed::<i64>().unwrap()[0] >= t0);
    let e = err_of(run(&ws, op("TimerEnd", &["timer"], &[], vec![])));
    assert!(
        e.message().contains("Called TimerEnd on a stopped timer."),
        "{e}"
    );
    let e = err_of(run(&ws, op("TimerGet", &["timer"], &["t2"], vec![])));
    assert!(
        e.message().contains("Called TimerGet on a stopped timer."),
        "{e}"
    );

    // One TimerBegin operator owns one timer: running it twice without an end fails.
    let net = NetDef {
        name: Some("begin".into()),
        op: vec![op(
            "TimerBegin",
            &[],
            &["tb"],
            vec![arg_s("counter_name", "ckpt")],
        )],
        ..Default::default()
    };
    ws.create_net(&net, false).unwrap();
    ws.run_net("begin").unwrap();
    let e = ws.run_net("begin").unwrap_err();
    assert!(
        e.message()
            .contains("Called TimerBegin on an already running timer."),
        "{e}"
    );
    run(&ws, op("TimerEnd", &["tb"], &[], vec![])).unwrap();
    ws.run_net("begin").unwrap();
}

// ------------------------------------------------------------------ Free, Alias

#[test]
fn free_empties_its_blobs_in_place_and_keeps_their_names() {
    let ws = Workspace::new();
    feed(&ws, "a", Tensor::zeros(DataType::Float, &[3]).unwrap());
    run(&ws, op("CreateCounter", &[], &["c"], vec![])).unwrap();
    run(&ws, op("Free", &["a", "c"], &["a", "c"], vec![])).unwrap();
    for name in ["a", "c"] {
        let b = ws.get_blob(name).expect("the name stays");
        assert!(b.is_empty(), "{name} is freed");
    }
    // A later reader fails until something writes the blob again.
    let e = err_of(run(&ws, op("Copy", &["a"], &["b"], vec![])));
    assert_eq!(e.kind(), ErrorKind::TypeMismatch, "{e}");
    // Not in place: schema failure.
    let e = err_of(run(&ws, op("Free", &["a"], &["b"], vec![])));
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
}

#[test]
fn alias_output_shares_the_input_storage() {
    let ws = Workspace::new();
    feed(
        &ws,
        "x",
        Tensor::from_slice(DataType::Float, &[2], &[1.0f32, 2.0]).unwrap(),
    );
    run(&ws, op("Alias", &["x"], &["y"], vec![])).unwrap();
    let (x, y) = (fetch(&ws, "x"), fetch(&ws, "y"));
    assert!(y.shares_storage_with(&x));
    assert_eq!(y.dims(), [2]);
    let e = err_of(run(&ws, op("Alias", &["x"], &["x"], vec![])));
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
}

#[test]
fn net_rewritten_by_release_blobs_when_used_runs_and_frees_what_it_says() {
    // a -> Relu -> b -> Copy -> c -> Relu -> d (external output). b and c are freed after
    // their last reads; a is fed (never written in the net) and d is an output: both stay.
    let net = NetDef {
        name: Some("released".into()),
        op: vec![
            op("Relu", &["a"], &["b"], vec![]),
            op("Copy", &["b"], &["c"], vec![]),
            op("Relu", &["c"], &["d"], vec![]),
        ],
        external_input: vec!["a".into()],
        external_output: vec!["d".into()],
        ..Default::default()
    };
    let rewritten = release_blobs_when_used(&net, &HashSet::new(), None).unwrap();
    let frees: Vec<&str> = rewritten
        .op
        .iter()
        .filter(|o| o.r#type() == "Free")
        .map(|o| o.input[0].as_str())
        .collect();
    assert_eq!(frees, ["b", "c"]);

    let ws = Workspace::new();
    feed(
        &ws,
        "a",
        Tensor::from_slice(DataType::Float, &[3], &[-1.0f32, 0.5, 2.0]).unwrap(),
    );
    ws.create_net(&rewritten, false).unwrap();
    for _ in 0..2 {
        ws.run_net("released").unwrap();
        assert_eq!(fetch(&ws, "d").typed::<f32>().unwrap(), [0.0, 0.5, 2.0]);
        for freed in &frees {
            assert!(ws.get_blob(freed).unwrap().is_empty(), "{freed} was freed");
        }
        assert!(!ws.get_blob("a").unwrap().is_empty());
    }
}
