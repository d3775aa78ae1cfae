//! Plans (`Workspace::run_plan`, Caffe2's `RunPlan`). Ported from Caffe2's
//! `python/workspace_test.py` (`testRunPlan`, `testConstructPlanFromSteps`, `TestCWorkspace.
//! test_plan_run`, the last with fixed names instead of Hypothesis text, NUL excluded: names
//! are C strings here), `core/workspace_test.cc` (`RunEmptyPlan`), the plan-executor rules of
//! `core/plan_executor.cc`, and `hypothesis_test.py` `test_safe_blobs_queue` (producer and
//! consumer steps over a BlobsQueue; here every record is checked to arrive exactly once).
//! Plus the project cases: a failing concurrent substep stops the plan with its step path,
//! a plan blocked on a queue is cancelled from another thread, the plan never closes a queue
//! it did not create.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use caffe2rs::proto::{Argument, ExecutionStep, NetDef, OperatorDef, PlanDef};
use caffe2rs::tensor::{DataType, Tensor};
use caffe2rs::workspace::Workspace;
use caffe2rs::{C2rsError, ErrorKind};

mod support;
use support::{arg_f, arg_i, arg_ints, feed, fetch, op};

// ------------------------------------------------------------------ builders

fn net(name: &str, ops: Vec<OperatorDef>) -> NetDef {
    NetDef {
        name: Some(name.into()),
        op: ops,
        ..Default::default()
    }
}

fn step(name: &str, nets: &[&str]) -> ExecutionStep {
    ExecutionStep {
        name: Some(name.into()),
        network: nets.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn group(name: &str, substeps: Vec<ExecutionStep>, concurrent: bool) -> ExecutionStep {
    ExecutionStep {
        name: Some(name.into()),
        substep: substeps,
        concurrent_substeps: concurrent.then_some(true),
        ..Default::default()
    }
}

fn plan(name: &str, nets: Vec<NetDef>, steps: Vec<ExecutionStep>) -> PlanDef {
    PlanDef {
        name: Some(name.into()),
        network: nets,
        execution_step: steps,
    }
}

/// `ConstantFill([], out, shape, value)`, FLOAT.
fn constant_fill(out: &str, shape: &[i64], value: f32) -> OperatorDef {
    op(
        "ConstantFill",
        &[],
        &[out],
        vec![arg_ints("shape", shape), arg_f("value", value)],
    )
}

fn int64_fill(out: &str, value: i64) -> OperatorDef {
    op(
        "ConstantFill",
        &[],
        &[out],
        vec![
            arg_ints("shape", &[1]),
            arg_i("value", value),
            arg_i("dtype", DataType::Int64.as_i32().into()),
        ],
    )
}

fn iter_value(ws: &Workspace, name: &str) -> i64 {
    fetch(ws, name).typed::<i64>().unwrap()[0]
}

fn create_queue(name: &str, capacity: i64, num_blobs: i64) -> OperatorDef {
    op(
        "CreateBlobsQueue",
        &[],
        &[name],
        vec![arg_i("capacity", capacity), arg_i("num_blobs", num_blobs)],
    )
}

/// Runs `plan` on a thread; the result, or a panic when it does not end within a minute
/// (a guard against a hung test, not a timing assertion).
fn run_plan_guarded(ws: &Arc<Workspace>, p: PlanDef) -> caffe2rs::Result<()> {
    let (tx, rx) = mpsc::channel();
    let ws2 = Arc::clone(ws);
    let handle = std::thread::spawn(move || {
        let _ = tx.send(ws2.run_plan(&p));
    });
    let r = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the plan must end");
    handle.join().unwrap();
    r
}

/// Waits until `cond` holds (polling); panics after a minute (hang guard).
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..60_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("timed out waiting for {what}");
}

fn message(e: &C2rsError) -> &str {
    e.message()
}

// ------------------------------------------------------------------ ports

/// workspace_test.py `testRunPlan`.
#[test]
fn run_plan_runs_its_step_and_leaves_the_blob() {
    let ws = Workspace::new();
    let test_net = net(
        "test-net",
        vec![constant_fill("testblob", &[1, 2, 3, 4], 1.0)],
    );
    ws.run_plan(&plan(
        "test-plan",
        vec![test_net],
        vec![step("test-step", &["test-net"])],
    ))
    .unwrap();
    let t = fetch(&ws, "testblob");
    assert_eq!(t.dims(), [1, 2, 3, 4]);
    assert!(t.typed::<f32>().unwrap().iter().all(|&v| v == 1.0));
}

/// workspace_test.py `testConstructPlanFromSteps`: `RunPlan(step)` makes a plan named after
/// the step holding the step and the nets it uses.
#[test]
fn plan_built_from_a_single_step_runs() {
    let ws = Workspace::new();
    let test_net = net(
        "test-net",
        vec![constant_fill("testblob", &[1, 2, 3, 4], 1.0)],
    );
    let s = step("test-step-as-plan", &["test-net"]);
    ws.run_plan(&plan("test-step-as-plan", vec![test_net], vec![s]))
        .unwrap();
    assert!(ws.has_blob("testblob"));
    assert_eq!(fetch(&ws, "testblob").numel(), 24);
}

/// workspace_test.py `TestCWorkspace.test_plan_run` with fixed names (empty, Unicode).
#[test]
fn plan_run_registers_its_net_and_fills_the_blob_for_any_names() {
    let names = [
        ("", "", ""),
        ("blob", "net", "plan"),
        ("блоб ✓", "网络/net:0", "plan 🚀"),
        ("a b\tc", " ", "\u{7f}"),
    ];
    for (k, (blob_name, net_name, plan_name)) in names.into_iter().enumerate() {
        let ws = Workspace::new();
        let value = -0.25 + k as f32 * 0.5;
        let n = net(net_name, vec![constant_fill(blob_name, &[1], value)]);
        let mut s = step("step", &[net_name]);
        s.num_iter = Some(1);
        ws.run_plan(&plan(plan_name, vec![n], vec![s])).unwrap();
        assert!(ws.blobs().contains(&blob_name.to_string()), "{blob_name:?}");
        assert!(ws.nets().contains(&net_name.to_string()), "{net_name:?}");
        assert_eq!(fetch(&ws, blob_name).typed::<f32>().unwrap(), [value]);
    }
}

/// workspace_test.cc `RunEmptyPlan`.
#[test]
fn empty_plan_succeeds() {
    let ws = Workspace::new();
    ws.run_plan(&PlanDef::default()).unwrap();
    // Even with nets but no steps: nothing is created.
    ws.run_plan(&plan("p", vec![net("n", vec![])], vec![]))
        .unwrap();
    assert!(ws.nets().is_empty());
}

// ------------------------------------------------------------------ ExecutionStep semantics

#[test]
fn num_iter_repeats_the_step_nets() {
    let ws = Workspace::new();
    let p = plan(
        "p",
        vec![net("count", vec![op("Iter", &[], &["it"], vec![])])],
        vec![ExecutionStep {
            num_iter: Some(5),
            ..step("s", &["count"])
        }],
    );
    ws.run_plan(&p).unwrap();
    assert_eq!(iter_value(&ws, "it"), 5);
    // num_iter 0: the nets are created but never run.
    let ws = Workspace::new();
    let mut p = p;
    p.execution_step[0].num_iter = Some(0);
    ws.run_plan(&p).unwrap();
    assert!(ws.has_net("count"));
    assert!(ws.get_blob("it").unwrap().is_empty());
}

/// "init" makes counter `c` (init_count `n`), "down" writes `done` = CountDown(c),
/// "count" counts its runs in `it`.
fn countdown_nets(n: i64) -> Vec<NetDef> {
    vec![
        net(
            "init",
            vec![op(
                "CreateCounter",
                &[],
                &["c"],
                vec![arg_i("init_count", n)],
            )],
        ),
        net("down", vec![op("CountDown", &["c"], &["done"], vec![])]),
        net("count", vec![op("Iter", &[], &["it"], vec![])]),
    ]
}

#[test]
fn should_stop_blob_is_checked_after_every_net() {
    // Counter 3: CountDown gives false three times, then true. The stop check after the
    // CountDown net ends the step before the Iter net of the fourth iteration.
    let ws = Workspace::new();
    let p = plan(
        "p",
        countdown_nets(3),
        vec![
            step("init", &["init"]),
            ExecutionStep {
                should_stop_blob: Some("done".into()),
                ..step("loop", &["down", "count"])
            },
        ],
    );
    ws.run_plan(&p).unwrap();
    assert_eq!(iter_value(&ws, "it"), 3);
    // With only_once the step runs one iteration whatever the blob says.
    let ws = Workspace::new();
    let mut p = p;
    p.execution_step[1].only_once = Some(true);
    ws.run_plan(&p).unwrap();
    assert_eq!(iter_value(&ws, "it"), 1);
}

#[test]
fn should_stop_blob_is_checked_after_every_sequential_substep() {
    let ws = Workspace::new();
    let p = plan(
        "p",
        countdown_nets(1),
        vec![
            step("init", &["init"]),
            ExecutionStep {
                should_stop_blob: Some("done".into()),
                ..group(
                    "outer",
                    vec![step("down", &["down"]), step("count", &["count"])],
                    false,
                )
            },
        ],
    );
    ws.run_plan(&p).unwrap();
    // Iteration 1: down (false), count → 1. Iteration 2: down (true) → stop.
    assert_eq!(iter_value(&ws, "it"), 1);
}

#[test]
fn step_field_errors_are_caffe2s_with_the_step_path() {
    let ws = Workspace::new();
    feed(&ws, "f", Tensor::zeros(DataType::Float, &[1]).unwrap());
    let nets = || vec![net("n", vec![])];
    let cases: Vec<(PlanDef, ErrorKind, &str)> = vec![
        (
            plan("p", nets(), vec![step("s", &["missing"])]),
            ErrorKind::Enforce,
            "plan p: step s: ExecutionStep s uses undefined net missing",
        ),
        (
            plan(
                "p",
                vec![net("n", vec![]), net("n", vec![])],
                vec![step("s", &["n"])],
            ),
            ErrorKind::Enforce,
            "plan p: Your plan contains networks of the same name \"n\"",
        ),
        (
            plan(
                "p",
                nets(),
                vec![ExecutionStep {
                    substep: vec![step("t", &["n"])],
                    ..step("s", &["n"])
                }],
            ),
            ErrorKind::Enforce,
            "plan p: step s: An ExecutionStep should either have substep or networks but not both.",
        ),
        (
            plan(
                "p",
                nets(),
                vec![ExecutionStep {
                    num_iter: Some(2),
                    should_stop_blob: Some("f".into()),
                    ..step("s", &["n"])
                }],
            ),
            ErrorKind::Enforce,
            "plan p: step s: Must not specify num_iter if should_stop_blob is set",
        ),
        (
            plan(
                "p",
                nets(),
                vec![ExecutionStep {
                    only_once: Some(true),
                    ..step("s", &["n"])
                }],
            ),
            ErrorKind::Enforce,
            "not supported",
        ),
        (
            plan(
                "p",
                nets(),
                vec![group(
                    "s",
                    vec![ExecutionStep {
                        should_stop_blob: Some("nowhere".into()),
                        ..step("t", &["n"])
                    }],
                    false,
                )],
            ),
            ErrorKind::Enforce,
            "plan p: step s / substep t: blob nowhere does not exist",
        ),
        (
            plan(
                "p",
                nets(),
                vec![ExecutionStep {
                    should_stop_blob: Some("f".into()),
                    ..step("s", &["n"])
                }],
            ),
            ErrorKind::Enforce,
            "plan p: step s: should_stop_blob f expects a scalar boolean",
        ),
        (
            plan(
                "p",
                nets(),
                vec![ExecutionStep {
                    report_net: Some("n".into()),
                    ..step("s", &["n"])
                }],
            ),
            ErrorKind::Enforce,
            "plan p: step s: A report_interval must be provided if report_net is set.",
        ),
        (
            plan(
                "p",
                nets(),
                vec![
                    #[allow(deprecated)]
                    ExecutionStep {
                        criteria_network: Some("n".into()),
                        ..step("s", &["n"])
                    },
                ],
            ),
            ErrorKind::Unsupported,
            "plan p: step s: ExecutionStep s: criteria_network is deprecated and not supported",
        ),
        (
            plan(
                "p",
                nets(),
                vec![ExecutionStep {
                    num_concurrent_instances: Some(0),
                    ..group("s", vec![step("t", &["n"])], true)
                }],
            ),
            ErrorKind::Enforce,
            "num_concurrent_instances must be >= 1, got 0",
        ),
    ];
    for (p, kind, want) in cases {
        let e = ws.run_plan(&p).unwrap_err();
        assert_eq!(e.kind(), kind, "{want}: {e}");
        assert!(message(&e).contains(want), "{want}: {e}");
    }
}

#[test]
fn plan_net_that_existed_before_is_overwritten_once() {
    let ws = Workspace::new();
    ws.create_net(&net("n", vec![constant_fill("x", &[1], 1.0)]), false)
        .unwrap();
    let p = plan(
        "p",
        vec![net("n", vec![constant_fill("x", &[1], 2.0)])],
        vec![step("a", &["n"]), step("b", &["n"])],
    );
    ws.run_plan(&p).unwrap();
    assert_eq!(fetch(&ws, "x").typed::<f32>().unwrap(), [2.0]);
    // The registered net is now the plan's.
    feed(&ws, "x", Tensor::zeros(DataType::Float, &[1]).unwrap());
    ws.run_net("n").unwrap();
    assert_eq!(fetch(&ws, "x").typed::<f32>().unwrap(), [2.0]);
}

#[test]
fn later_steps_see_blobs_made_by_earlier_steps() {
    // The consumer net reads "x" as an input: it can only be built after step 1 ran.
    let ws = Workspace::new();
    let p = plan(
        "p",
        vec![
            net("make", vec![constant_fill("x", &[2], 3.0)]),
            net("use", vec![op("Copy", &["x"], &["y"], vec![])]),
        ],
        vec![step("one", &["make"]), step("two", &["use"])],
    );
    ws.run_plan(&p).unwrap();
    assert_eq!(fetch(&ws, "y").typed::<f32>().unwrap(), [3.0, 3.0]);
}

#[test]
fn create_workspace_runs_each_execution_in_a_fresh_child() {
    // The child sees the parent's counter (CreateBlob returns the parent's blob), so Iter
    // counts in the parent; blobs it creates itself die with the child, as do its nets.
    let ws = Workspace::new();
    feed(
        &ws,
        "it",
        Tensor::from_slice(DataType::Int64, &[1], &[0i64]).unwrap(),
    );
    let p = plan(
        "p",
        vec![net(
            "child_net",
            vec![
                op("Iter", &["it"], &["it"], vec![]),
                constant_fill("child_only", &[1], 1.0),
            ],
        )],
        vec![ExecutionStep {
            num_iter: Some(3),
            ..group(
                "outer",
                vec![ExecutionStep {
                    create_workspace: Some(true),
                    ..step("inner", &["child_net"])
                }],
                false,
            )
        }],
    );
    ws.run_plan(&p).unwrap();
    assert_eq!(iter_value(&ws, "it"), 3);
    assert!(!ws.has_blob("child_only"));
    assert!(!ws.has_net("child_net"));
}

#[test]
fn report_net_and_run_every_ms_substeps_run_while_the_step_runs() {
    // Caffe2's reporter runs once more when the step ends, so each runs at least once.
    let ws = Workspace::new();
    let p = plan(
        "p",
        vec![
            net("work", vec![op("Iter", &[], &["work_it"], vec![])]),
            net("report", vec![op("Iter", &[], &["report_it"], vec![])]),
            net("tick", vec![op("Iter", &[], &["tick_it"], vec![])]),
        ],
        vec![
            ExecutionStep {
                report_net: Some("report".into()),
                report_interval: Some(1),
                num_iter: Some(10),
                ..step("reported", &["work"])
            },
            group(
                "periodic",
                vec![
                    ExecutionStep {
                        run_every_ms: Some(5),
                        ..step("tick", &["tick"])
                    },
                    ExecutionStep {
                        num_iter: Some(10),
                        ..step("work", &["work"])
                    },
                ],
                false,
            ),
        ],
    );
    ws.run_plan(&p).unwrap();
    assert_eq!(iter_value(&ws, "work_it"), 20);
    assert!(iter_value(&ws, "report_it") >= 1);
    assert!(iter_value(&ws, "tick_it") >= 1);
}

#[test]
fn concurrent_instances_run_one_substep_on_several_threads() {
    let ws = Workspace::new();
    let p = plan(
        "p",
        vec![
            net(
                "init",
                vec![op("CreateMutex", &[], &["m"], vec![]), int64_fill("it", 0)],
            ),
            net(
                "count",
                vec![op("AtomicIter", &["m", "it"], &["it"], vec![])],
            ),
        ],
        vec![
            step("init", &["init"]),
            ExecutionStep {
                num_concurrent_instances: Some(4),
                num_iter: Some(3),
                ..group(
                    "workers",
                    vec![ExecutionStep {
                        num_iter: Some(25),
                        ..step("w", &["count"])
                    }],
                    true,
                )
            },
        ],
    );
    ws.run_plan(&p).unwrap();
    // 3 rounds x 4 threads x 25 runs.
    assert_eq!(iter_value(&ws, "it"), 300);
}

#[test]
fn absurd_thread_counts_are_refused_before_starting_any() {
    let ws = Workspace::new();
    let p = plan(
        "p",
        vec![net("count", vec![op("Iter", &[], &["it"], vec![])])],
        vec![ExecutionStep {
            num_concurrent_instances: Some(i32::MAX),
            ..group(
                "wide",
                vec![step("a", &["count"]), step("b", &["count"])],
                true,
            )
        }],
    );
    let e = ws.run_plan(&p).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Enforce, "{e}");
    assert!(
        message(&e).starts_with("plan p: step wide: 2 substeps x 2147483647 instances would start"),
        "{e}"
    );
    assert!(ws.get_blob("it").unwrap().is_empty(), "nothing ran");
    let p = plan(
        "p",
        vec![net("count", vec![op("Iter", &[], &["it"], vec![])])],
        vec![ExecutionStep {
            report_net: Some("count".into()),
            report_interval: Some(-1),
            ..step("s", &["count"])
        }],
    );
    let e = ws.run_plan(&p).unwrap_err();
    assert!(
        message(&e).contains("report_interval must be positive, got -1"),
        "{e}"
    );
}

// ------------------------------------------------------------------ queues and failures

/// hypothesis_test.py `test_safe_blobs_queue`, checking every record instead of a count:
/// producers SafeEnqueue (producer id, sequence number) records; after they finish an exit
/// step closes the queue; consumers loop on SafeDequeueBlobs with its status as
/// should_stop_blob and forward each record into a results queue.
#[test]
fn producer_consumer_plan_delivers_every_record_exactly_once() {
    let (producers, consumers) = (3usize, 3usize);
    let counts: Vec<i64> = (0..producers as i64).map(|i| (i + 1) * 10).collect();
    let total: i64 = counts.iter().sum();
    let mut nets = vec![net(
        "init",
        vec![
            create_queue("queue", 4, 2),
            create_queue("results", total + 1, 2),
        ],
    )];
    let mut producer_steps = Vec::new();
    for (i, &count) in counts.iter().enumerate() {
        let (pid, seq, rec_pid, rec_seq, st) = (
            format!("pid_{i}"),
            format!("seq_{i}"),
            format!("rec_pid_{i}"),
            format!("rec_seq_{i}"),
            format!("pstatus_{i}"),
        );
        nets[0].op.push(int64_fill(&pid, i as i64));
        nets[0].op.push(int64_fill(&seq, 0));
        nets.push(net(
            &format!("producer_{i}"),
            vec![
                op("Iter", &[&seq], &[&seq], vec![]),
                op("Copy", &[&pid], &[&rec_pid], vec![]),
                op("Copy", &[&seq], &[&rec_seq], vec![]),
                op(
                    "SafeEnqueueBlobs",
                    &["queue", &rec_pid, &rec_seq],
                    &[&rec_pid, &rec_seq, &st],
                    vec![],
                ),
            ],
        ));
        producer_steps.push(ExecutionStep {
            num_iter: Some(count),
            ..step(&format!("producer_{i}"), &[&format!("producer_{i}")])
        });
    }
    nets.push(net(
        "producer_exit",
        vec![op("CloseBlobsQueue", &["queue"], &[], vec![])],
    ));
    let mut consumer_steps = Vec::new();
    for j in 0..consumers {
        let (a, b, st) = (
            format!("c_pid_{j}"),
            format!("c_seq_{j}"),
            format!("cstatus_{j}"),
        );
        nets.push(net(
            &format!("consumer_{j}"),
            vec![op("SafeDequeueBlobs", &["queue"], &[&a, &b, &st], vec![])],
        ));
        nets.push(net(
            &format!("forward_{j}"),
            vec![op("EnqueueBlobs", &["results", &a, &b], &[&a, &b], vec![])],
        ));
        consumer_steps.push(ExecutionStep {
            should_stop_blob: Some(st.clone()),
            ..step(
                &format!("consumer_{j}"),
                &[&format!("consumer_{j}"), &format!("forward_{j}")],
            )
        });
    }
    let producer = group(
        "producer",
        vec![
            group("producers", producer_steps, true),
            step("producer_exit", &["producer_exit"]),
        ],
        false,
    );
    let worker = group(
        "worker",
        vec![group("consumer", consumer_steps, true), producer],
        true,
    );
    let ws = Workspace::new();
    run_plan_guarded(
        &ws,
        plan("test", nets, vec![step("init", &["init"]), worker]),
    )
    .unwrap();

    let mut seen = vec![vec![false; 31]; producers];
    for _ in 0..total {
        ws.run_operator_once(&op(
            "SafeDequeueBlobs",
            &["results"],
            &["r_pid", "r_seq", "r_status"],
            vec![],
        ))
        .unwrap();
        assert_eq!(fetch(&ws, "r_status").typed::<u8>().unwrap(), [0]);
        let pid = iter_value(&ws, "r_pid") as usize;
        let seq = iter_value(&ws, "r_seq") as usize;
        assert!(!seen[pid][seq], "record ({pid}, {seq}) arrived twice");
        seen[pid][seq] = true;
    }
    for (i, &count) in counts.iter().enumerate() {
        let arrived = seen[i].iter().filter(|&&s| s).count();
        assert_eq!(arrived, count as usize, "producer {i}");
        assert!(
            seen[i][1..=count as usize].iter().all(|&s| s),
            "producer {i}: a record never arrived"
        );
    }
    // Nothing more: the results queue, closed now, is empty.
    ws.run_operator_once(&op("CloseBlobsQueue", &["results"], &[], vec![]))
        .unwrap();
    ws.run_operator_once(&op(
        "SafeDequeueBlobs",
        &["results"],
        &["r_pid", "r_seq", "r_status"],
        vec![],
    ))
    .unwrap();
    assert_eq!(fetch(&ws, "r_status").typed::<u8>().unwrap(), [1]);
}

fn failing_fill() -> OperatorDef {
    // Three elements, two values: fails when run.
    op(
        "GivenTensorIntFill",
        &[],
        &["bad"],
        vec![
            arg_ints("shape", &[3]),
            Argument {
                name: Some("values".into()),
                ints: vec![1, 2],
                ..Default::default()
            },
        ],
    )
}

#[test]
fn failing_concurrent_substep_stops_the_plan_with_its_step_path() {
    // "blocked" waits on an empty queue the plan created; "spinning" loops until stopped;
    // "failing" fails. The failure cancels the plan's queue operators (the blocked dequeue
    // wakes), stops the loop, and the plan returns the failure with its path.
    let ws = Workspace::new();
    let p = plan(
        "p",
        vec![
            net("init", vec![create_queue("q", 1, 1)]),
            net(
                "dequeue",
                vec![op("DequeueBlobs", &["q"], &["got"], vec![])],
            ),
            net("spin", vec![op("Iter", &[], &["spins"], vec![])]),
            net("fail", vec![failing_fill()]),
            net("never", vec![op("Iter", &[], &["never"], vec![])]),
        ],
        vec![
            step("init", &["init"]),
            group(
                "main",
                vec![
                    step("blocked", &["dequeue"]),
                    ExecutionStep {
                        should_stop_blob: Some("unset_flag".into()),
                        ..step("spinning", &["spin"])
                    },
                    group("inner", vec![step("failing", &["fail"])], false),
                ],
                true,
            ),
            step("after", &["never"]),
        ],
    );
    ws.create_blob("unset_flag");
    let e = run_plan_guarded(&ws, p).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Enforce, "{e}");
    assert!(
        message(&e).starts_with(
            "plan p: step main / substep inner / substep failing: op #0 (GivenTensorIntFill): "
        ),
        "{e}"
    );
    assert!(
        message(&e).contains("has 3 elements but `values` has 2"),
        "{e}"
    );
    // No step after the failure ran; the plan's own queue was closed by the cancel.
    assert!(!ws.has_blob("never") || ws.get_blob("never").unwrap().is_empty());
    ws.run_operator_once(&op("SafeDequeueBlobs", &["q"], &["x", "closed"], vec![]))
        .unwrap();
    assert_eq!(fetch(&ws, "closed").typed::<u8>().unwrap(), [1]);
}

#[test]
fn failure_leaves_queues_the_host_created_open() {
    // The host's queue is full; the plan's "blocked" substep sets a marker, then waits to
    // enqueue into it. Once the marker is seen, the host lets "failing" fail (it waits on a
    // second host queue first). The plan must not close the host's queue: the enqueue stays
    // blocked until the host makes room, then completes, and the plan returns the failure.
    let ws = Workspace::new();
    ws.run_operator_once(&create_queue("host_q", 1, 1)).unwrap();
    ws.run_operator_once(&create_queue("go_q", 1, 1)).unwrap();
    feed(
        &ws,
        "first",
        Tensor::from_slice(DataType::Int64, &[1], &[1i64]).unwrap(),
    );
    ws.run_operator_once(&op(
        "EnqueueBlobs",
        &["host_q", "first"],
        &["first"],
        vec![],
    ))
    .unwrap();
    let p = plan(
        "p",
        vec![
            net("make", vec![int64_fill("second", 2)]),
            net(
                "enqueue",
                vec![
                    constant_fill("marker", &[1], 1.0),
                    op("EnqueueBlobs", &["host_q", "second"], &["second"], vec![]),
                ],
            ),
            net("wait", vec![op("DequeueBlobs", &["go_q"], &["go"], vec![])]),
            net("fail", vec![failing_fill()]),
        ],
        vec![
            step("make", &["make"]),
            group(
                "main",
                vec![
                    step("blocked", &["enqueue"]),
                    step("failing", &["wait", "fail"]),
                ],
                true,
            ),
        ],
    );
    let (tx, rx) = mpsc::channel();
    let ws2 = Arc::clone(&ws);
    let runner = std::thread::spawn(move || {
        let _ = tx.send(ws2.run_plan(&p));
    });
    wait_for("the marker", || {
        ws.get_blob("marker").is_some_and(|b| b.is_tensor())
    });
    feed(
        &ws,
        "go_in",
        Tensor::from_slice(DataType::Int64, &[1], &[0i64]).unwrap(),
    );
    ws.run_operator_once(&op("EnqueueBlobs", &["go_q", "go_in"], &["go_in"], vec![]))
        .unwrap();
    // A failing op records its position when it fails (the failing fill; or, were the
    // queue wrongly closed, the enqueue).
    wait_for("the failure", || ws.last_failed_op_net_position().is_some());
    // Give the plan every chance to (wrongly) close the queue before the host reads.
    std::thread::sleep(Duration::from_millis(50));
    ws.run_operator_once(&op("DequeueBlobs", &["host_q"], &["out"], vec![]))
        .unwrap();
    assert_eq!(iter_value(&ws, "out"), 1);
    let r = rx.recv_timeout(Duration::from_secs(60)).expect("plan ends");
    runner.join().unwrap();
    let e = r.unwrap_err();
    assert!(
        message(&e).starts_with("plan p: step main / substep failing: op #0 (GivenTensorIntFill)"),
        "{e}"
    );
    // The plan's record made it in: the queue was never closed (a closed, empty queue would
    // fail this dequeue at once).
    ws.run_operator_once(&op("DequeueBlobs", &["host_q"], &["out"], vec![]))
        .unwrap();
    assert_eq!(iter_value(&ws, "out"), 2);
}

#[test]
fn plan_blocked_on_a_host_queue_is_cancelled_from_another_thread() {
    let ws = Workspace::new();
    ws.run_operator_once(&create_queue("host_q", 2, 1)).unwrap();
    let p = plan(
        "stuck",
        vec![net(
            "dequeue",
            vec![op("DequeueBlobs", &["host_q"], &["got"], vec![])],
        )],
        vec![group(
            "main",
            vec![step("a", &["dequeue"]), step("b", &["dequeue"])],
            true,
        )],
    );
    let (tx, rx) = mpsc::channel();
    let ws2 = Arc::clone(&ws);
    let runner = std::thread::spawn(move || {
        let _ = tx.send(ws2.run_plan(&p));
    });
    wait_for("the plan to start", || ws.running_plan_count() == 1);
    assert_eq!(ws.cancel_plans(), 1);
    let r = rx.recv_timeout(Duration::from_secs(60)).expect("plan ends");
    runner.join().unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RunFailed, "{e}");
    assert!(message(&e).starts_with("plan stuck: cancelled"), "{e}");
    assert_eq!(ws.running_plan_count(), 0);
    // Cancelling with nothing running reaches nothing; a new plan runs normally.
    assert_eq!(ws.cancel_plans(), 0);
    ws.run_plan(&plan(
        "after",
        vec![net("n", vec![constant_fill("ok", &[1], 1.0)])],
        vec![step("s", &["n"])],
    ))
    .unwrap();
    assert!(ws.has_blob("ok"));
}
