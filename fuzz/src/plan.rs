//! The `plan` target: PlanDef bytes through `c2rs_workspace_run_plan`, in the operator
//! target's fixture workspace (tensors of nine dtypes, a BlobsQueue and a RebatchingQueue
//! holding one record each, DB readers on the fixture files; see
//! [`crate::operator::FIXTURE_BLOBS`]), then every tensor blob read back.
//!
//! Long is not hanging: a plan may loop for `num_iter` = 2^62 iterations, wait on a
//! `should_stop_blob` nobody sets, or block on a queue. A watchdog closes the fixture's
//! queues and calls `c2rs_workspace_cancel` every [`WATCHDOG_MS`] while the plan runs, so
//! every such plan returns (C2RS_RUN_FAILED "cancelled", C2RS_CLOSED, ...) within a period or
//! two; only a plan that does not return after that is a hang.
//!
//! Limits the harness keeps (not findings, the input is skipped): a plan whose steps could
//! run more than [`MAX_THREADS`] threads at once (the library refuses more than 4096 per step
//! and 8192 per plan; that many threads under the sanitizer is a denial of service by
//! design, not a bug); and, as in the operator target, a plan whose operators' strings hold a
//! `/` other than `@/NAME` (rewritten to `<root>/NAME`) or whose writers name a fixture or
//! set `absolute_path`.
//!
//! Input format: a serialized PlanDef (as `tests/data/hostile/plan/`).

use std::time::Duration;

use caffe2rs::ffi::workspace::c2rs_workspace_run_plan;
use caffe2rs::proto::{ExecutionStep, PlanDef};
use prost::Message;

use crate::check::{Oom, check, trace};
use crate::operator::{
    Fixture, Watchdog, confined, read_back, remove_written_files, rewrite_root_paths, root,
};

/// How often the watchdog closes the queues and cancels the plan.
pub const WATCHDOG_MS: u64 = 100;
/// The most threads a plan run by the harness may start at once (see the module doc).
pub const MAX_THREADS: u64 = 64;

/// An upper bound of the threads `step` may run at once: each substep may get a thread
/// (concurrent or `run_every_ms`) and each of those its own, times the concurrent
/// instances, plus a reporter thread.
fn threads(step: &ExecutionStep) -> u64 {
    let subs = step.substep.iter().fold(0u64, |acc, s| {
        acc.saturating_add(1u64.saturating_add(threads(s)))
    });
    let instances = u64::try_from(step.num_concurrent_instances.unwrap_or(1).max(1)).unwrap_or(1);
    subs.saturating_add(1).saturating_mul(instances)
}

/// One input: skip it if it would leave the scratch directory or start too many threads,
/// else run it in a fresh fixture workspace under the watchdog, then read back every tensor
/// it left.
pub fn run(data: &[u8]) {
    let root = root();
    let bytes = match PlanDef::decode(data) {
        Ok(mut plan) => {
            let ops = || plan.network.iter().flat_map(|n| n.op.iter());
            if !ops().all(confined) {
                trace("skipped: an operator could touch files outside the scratch root");
                return;
            }
            let most = plan.execution_step.iter().map(threads).max().unwrap_or(0);
            if most > MAX_THREADS {
                trace(&format!("skipped: a step could run {most} threads at once"));
                return;
            }
            let mut changed = false;
            for op in plan.network.iter_mut().flat_map(|n| n.op.iter_mut()) {
                changed |= rewrite_root_paths(&mut op.arg, root);
            }
            if changed {
                plan.encode_to_vec()
            } else {
                data.to_vec()
            }
        }
        // Not a PlanDef: the library must say so.
        Err(_) => data.to_vec(),
    };
    {
        let fixture = Fixture::new(root);
        let armed = Watchdog::arm(&fixture, Duration::from_millis(WATCHDOG_MS));
        let status = c2rs_workspace_run_plan(fixture.ws.ptr(), bytes.as_ptr(), bytes.len());
        drop(armed);
        check(status, "c2rs_workspace_run_plan", Oom::Allowed);
        read_back(&fixture.ws);
    }
    remove_written_files(root);
}
