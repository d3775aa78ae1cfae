//! The memory optimizer ("memonger"): rewrites a NetDef so that blobs with disjoint
//! lifetimes share names, and plans one arena per device (spec/memonger.md).
//!
//! - `graph`: interned net, subnet names, effective devices
//! - `liveness`: activation intervals and lower bounds
//! - `shapes`: byte sizes from TensorShapes
//! - `fast`: compatible mode A (Caffe2's `optimize_inference_net`)
//! - `dag`: compatible mode B (`compute_blob_recycling_for_dag`) and its Python callers
//! - `python`: `share_grad_blobs`, `optimize_inference_for_dag`
//! - `naming`: size-aware name assignment for the planner
//! - `arena`: offset planning
//! - `planner`: the planner pipeline and its plan
//! - `verify`: the verifier every rewrite passes
//! - `report`: hand-written JSON

pub mod arena;
pub mod dag;
pub mod fast;
pub mod graph;
pub mod liveness;
pub mod naming;
pub mod planner;
pub mod python;
pub mod report;
pub mod shapes;
pub mod verify;
