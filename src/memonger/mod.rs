//! The memory optimizer ("memonger"): rewrites a NetDef so that blobs with disjoint
//! lifetimes share names, and plans one arena per device (spec/memonger.md).
//!
//! - `graph`: interned net, subnet names, effective devices
//! - `liveness`: activation intervals and lower bounds
//! - `shapes`: byte sizes from TensorShapes
//! - `fast`: compatible mode A (Caffe2's `optimize_inference_net`)
//! - `dag`: compatible mode B (`compute_blob_recycling_for_dag`) and its Python callers
//! - `python`: `share_grad_blobs`, `optimize_inference_for_dag`
//! - `interference`: `optimize_interference`, topological orders, ranges, chain assignment
//! - `release`: `release_blobs_when_used`, `estimate_memory_usage`
//! - `naming`: size-aware name assignment for the planner
//! - `naming_search`: capacity search for cheaper name plans within a budget
//! - `arena`: offset planning (greedy heuristics, checker)
//! - `arena_search`: exact arena search (branch and bound over canonical placements)
//! - `arena_repair`: window repair of large arenas with the exact search
//! - `planner`: the planner pipeline and its plan
//! - `verify`: the verifier every rewrite passes
//! - `report`: hand-written JSON
//! - `schema_check`: registered schemas every entry point checks first

pub mod arena;
pub mod arena_repair;
pub mod arena_search;
pub mod dag;
pub mod fast;
pub mod graph;
pub mod interference;
pub mod liveness;
pub mod naming;
pub mod naming_search;
pub mod planner;
pub mod python;
pub mod release;
pub mod report;
pub mod schema_check;
pub mod shapes;
pub mod verify;

/// An OperatorDef of type `ty` reading `i` and writing `o`, for unit tests.
#[cfg(test)]
pub(crate) fn test_op(ty: &str, i: &[&str], o: &[&str]) -> crate::proto::OperatorDef {
    crate::proto::OperatorDef {
        r#type: Some(ty.into()),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: o.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A xorshift64 generator from `seed` (nonzero) for unit tests' random instances:
/// `next(m)` is uniform enough in `0..m` for small `m`, and the same on every machine.
#[cfg(test)]
pub(crate) fn test_rng(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    }
}
