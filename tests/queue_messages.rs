//! What a failing DequeueBlobs says (issue 12): in a net, a closed and empty queue or a timeout
//! is still an op failure (RunFailed, as a Caffe2 op returning false), and the message names the
//! queue and the reason instead of "operator returned false".

use std::sync::Arc;

use caffe2rs::ErrorKind;
use caffe2rs::proto::{Argument, NetDef, OperatorDef};
use caffe2rs::workspace::Workspace;

fn op(ty: &str, inputs: &[&str], outputs: &[&str], args: Vec<Argument>) -> OperatorDef {
    OperatorDef {
        r#type: Some(ty.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        arg: args,
        ..Default::default()
    }
}

fn arg_f(name: &str, v: f32) -> Argument {
    Argument {
        name: Some(name.into()),
        f: Some(v),
        ..Default::default()
    }
}

fn net_with(name: &str, ops: Vec<OperatorDef>) -> NetDef {
    NetDef {
        name: Some(name.into()),
        op: ops,
        ..Default::default()
    }
}

fn queue_ws() -> Arc<Workspace> {
    let ws = Workspace::new();
    ws.run_operator_once(&op("CreateBlobsQueue", &[], &["queue"], vec![]))
        .unwrap();
    ws
}

#[test]
fn dequeue_in_a_net_on_a_closed_empty_queue_says_the_queue_is_closed() {
    let ws = queue_ws();
    ws.run_operator_once(&op("CloseBlobsQueue", &["queue"], &[], vec![]))
        .unwrap();
    ws.create_net(
        &net_with(
            "consume",
            vec![op("DequeueBlobs", &["queue"], &["x"], vec![])],
        ),
        false,
    )
    .unwrap();
    let e = ws.get_net("consume").unwrap().run().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RunFailed);
    assert!(
        e.message()
            .contains("op #0 (DequeueBlobs): DequeueBlobs: queue queue is closed and empty"),
        "{}",
        e.message()
    );
    assert!(
        !e.message().contains("operator returned false"),
        "{}",
        e.message()
    );
}

#[test]
fn dequeue_timing_out_says_how_long_it_waited() {
    let ws = queue_ws();
    let e = ws
        .run_operator_once(&op(
            "DequeueBlobs",
            &["queue"],
            &["x"],
            vec![arg_f("timeout_secs", 0.05)],
        ))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RunFailed);
    assert!(
        e.message()
            .contains("DequeueBlobs timed out in 0.05 secs waiting for a record of queue queue"),
        "{}",
        e.message()
    );
}
