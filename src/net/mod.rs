//! Nets: a `NetDef` built into operators with Caffe2's construction checks, run by the
//! sequential executor (`simple`) or the DAG executor (`dag` and the async aliases); plans
//! (`plan`) run `ExecutionStep`s of nets.

mod dag;
pub mod plan;
mod simple;

use std::collections::BTreeSet;
use std::sync::Arc;

pub use dag::DagNet;
pub use simple::SimpleNet;

use crate::error::{C2rsError, Result};
use crate::operator::{Operator, create_operator, op_debug_string};
use crate::proto::NetDef;
use crate::workspace::Workspace;

/// A built net. `run` takes no workspace lock; it may be called from several threads.
pub trait Net: Send + Sync {
    fn def(&self) -> &NetDef;
    fn name(&self) -> &str {
        self.def().name()
    }
    fn operators(&self) -> &[Box<dyn Operator>];
    /// Runs every operator once. An operator returning false is a `RunFailed` error; every
    /// error carries `op #i (Type): `.
    fn run(&self) -> Result<()>;
}

/// The executor a net type names; `None` for unknown types.
fn executor_of(net_type: &str) -> Option<Executor> {
    match net_type {
        "" | "simple" => Some(Executor::Simple),
        "dag" | "async_dag" | "async_scheduling" | "async_simple" | "async_polling" => {
            Some(Executor::Dag {
                single_thread: false,
            })
        }
        "singlethread_async" => Some(Executor::Dag {
            single_thread: true,
        }),
        _ => None,
    }
}

enum Executor {
    Simple,
    Dag { single_thread: bool },
}

/// Whether `net_type` names a known executor.
pub fn is_known_net_type(net_type: &str) -> bool {
    executor_of(net_type).is_some()
}

/// Most worker threads a DAG net's `num_workers` may ask for; more is an enforce error (the
/// count comes from NetDef bytes and each worker is an OS thread).
pub const MAX_NET_WORKERS: usize = 1024;

/// Builds a net of `def.type` (default `simple`) in `ws`. An unknown type is `NotFound`
/// ("Unknown net type: <t>"); `num_workers` above `MAX_NET_WORKERS` is an enforce error.
pub fn create_net_object(def: &NetDef, ws: &Arc<Workspace>) -> Result<Arc<dyn Net>> {
    let executor = executor_of(def.r#type())
        .ok_or_else(|| C2rsError::not_found(format!("Unknown net type: {}", def.r#type())))?;
    check_net_def(def)?;
    let ops = build_operators(def, ws)?;
    Ok(match executor {
        Executor::Simple => Arc::new(SimpleNet::new(def.clone(), ops)),
        Executor::Dag { single_thread } => {
            #[allow(deprecated)] // `num_workers` is deprecated in caffe2.proto but still read.
            let workers = if single_thread {
                1
            } else {
                def.num_workers
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .unwrap_or(1)
            };
            if workers > MAX_NET_WORKERS {
                return Err(C2rsError::enforce(format!(
                    "net {}: num_workers {workers} exceeds the maximum {MAX_NET_WORKERS}",
                    def.name()
                )));
            }
            Arc::new(DagNet::new(def.clone(), ops, workers))
        }
    })
}

/// Caffe2's NetBase construction checks: no `node_name`; with declared external inputs every
/// op input must be external or produced earlier; every external output must be produced.
fn check_net_def(def: &NetDef) -> Result<()> {
    let name = def.name();
    let mut known: BTreeSet<&str> = def.external_input.iter().map(String::as_str).collect();
    let mut remaining: BTreeSet<&str> = def
        .external_output
        .iter()
        .map(String::as_str)
        .filter(|o| !known.contains(o))
        .collect();
    for op in &def.op {
        if let Some(d) = &op.device_option {
            if d.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
                return Err(C2rsError::enforce(format!(
                    "op {}: node_name in the device option is not supported: {}",
                    op.r#type(),
                    op_debug_string(op)
                )));
            }
        }
        for input in &op.input {
            if !known.contains(input.as_str()) && !def.external_input.is_empty() {
                return Err(C2rsError::enforce(format!(
                    "op {}: Source for input {input} is unknown for net {name}, operator {}",
                    op.r#type(),
                    op_debug_string(op)
                )));
            }
        }
        for output in &op.output {
            known.insert(output);
            remaining.remove(output.as_str());
        }
    }
    if let Some(first) = remaining.first() {
        return Err(C2rsError::enforce(format!(
            "Some of the blobs are declared as output but never produced by the net {name}, the first one is {first}"
        )));
    }
    Ok(())
}

/// Builds the operators in order (`net_position` = index); an op without a device option
/// inherits the net's.
fn build_operators(def: &NetDef, ws: &Arc<Workspace>) -> Result<Vec<Box<dyn Operator>>> {
    let mut ops = Vec::with_capacity(def.op.len());
    for (i, op_def) in def.op.iter().enumerate() {
        let built = if op_def.device_option.is_none() && def.device_option.is_some() {
            let mut d = op_def.clone();
            d.device_option = def.device_option.clone();
            create_operator(&d, ws, Some(i))
        } else {
            create_operator(op_def, ws, Some(i))
        };
        ops.push(built.map_err(|e| e.context(format!("op #{i} ({})", op_def.r#type())))?);
    }
    Ok(ops)
}
