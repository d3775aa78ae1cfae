//! The Python-side callers of the DAG pass (spec §6): `share_grad_blobs` for training nets
//! and `optimize_inference_for_dag` for forward nets, each checked by the graph-equality and
//! in-place verifiers.

use std::collections::{HashMap, HashSet};

use super::dag::{DagOptions, DagResult, compute_blob_recycling_for_dag};
use super::verify::{verify_graph_equality, verify_inplace_blobs};
use crate::error::{C2rsError, Result};
use crate::proto::NetDef;

fn check(before: &NetDef, after: &NetDef) -> Result<()> {
    let v = verify_graph_equality(before, after);
    if !v.is_empty() {
        return Err(C2rsError::enforce(format!(
            "Memonger graph is not equal to original. ({})",
            v[0].0
        )));
    }
    let v = verify_inplace_blobs(before, after);
    if !v.is_empty() {
        return Err(C2rsError::enforce(format!(
            "Inplace assignments differ in memonger net. ({})",
            v[0].0
        )));
    }
    Ok(())
}

/// Options of [`share_grad_blobs`] besides the net.
#[derive(Clone, Debug, Default)]
pub struct ShareGradOptions {
    pub losses: Vec<String>,
    pub param_grads: HashSet<String>,
    pub namescope: String,
    pub dont_share: HashSet<String>,
    pub share_activations: bool,
    pub blob_shapes: HashMap<String, Vec<i64>>,
}

/// `share_grad_blobs`: recycles gradient blobs (names ending in `_grad` under the namescope,
/// or `_` + namescope for auto-split gradients, except parameter gradients) and, optionally,
/// forward activations (outputs `b` of ops reading `b_w`, minus the last two found and
/// external outputs) among the ops touching gradients, starting at the losses.
pub fn share_grad_blobs(net: &NetDef, o: &ShareGradOptions) -> Result<DagResult> {
    super::schema_check::check_schemas(net)?;
    let mut ns = o.namescope.clone();
    if !ns.is_empty() && !ns.ends_with('/') {
        ns.push('/');
    }
    let under_scope = |b: &str| b.starts_with(&ns) || b.starts_with(&format!("_{ns}"));
    let is_grad = |b: &str| b.ends_with("_grad") && under_scope(b) && !o.param_grads.contains(b);
    let ext_out: HashSet<&str> = net.external_output.iter().map(|s| s.as_str()).collect();
    let mut acts: Vec<&str> = Vec::new();
    for op in &net.op {
        for b in &op.output {
            let w = format!("{b}_w");
            if op.input.contains(&w) && !ext_out.contains(b.as_str()) {
                acts.push(b);
            }
        }
    }
    acts.truncate(acts.len().saturating_sub(2));
    let acts: HashSet<&str> = acts.into_iter().collect();
    let mut op_indices = Vec::new();
    let mut shareable = HashSet::new();
    for (i, op) in net.op.iter().enumerate() {
        let mut grad_op = false;
        for b in op.input.iter().chain(&op.output) {
            if is_grad(b) {
                grad_op = true;
                shareable.insert(b.clone());
            } else if o.share_activations && acts.contains(b.as_str()) {
                shareable.insert(b.clone());
            }
        }
        if grad_op {
            op_indices.push(i);
        }
    }
    let r = compute_blob_recycling_for_dag(
        net,
        &DagOptions {
            heads: o.losses.clone(),
            op_indices,
            shareable,
            namescope: ns,
            dont_share: o.dont_share.clone(),
            blob_shapes: o.blob_shapes.clone(),
            best_fit: false,
        },
    )?;
    check(net, &r.net)?;
    Ok(r)
}

/// `optimize_inference_for_dag`: recycles every name in neither external list over all
/// ops, starting at `input_blobs`; `namescope` prefixes the shared names as given.
pub fn optimize_inference_for_dag(
    net: &NetDef,
    input_blobs: &[String],
    namescope: &str,
) -> Result<DagResult> {
    super::schema_check::check_schemas(net)?;
    let external: HashSet<&str> = net
        .external_input
        .iter()
        .chain(&net.external_output)
        .map(|s| s.as_str())
        .collect();
    let mut shareable = HashSet::new();
    let mut written: HashSet<&str> = HashSet::new();
    for (i, op) in net.op.iter().enumerate() {
        if op.is_gradient_op == Some(true) {
            return Err(C2rsError::enforce(format!(
                "op #{i} ({}) is a gradient op: optimize_inference_for_dag is for forward nets",
                op.r#type.as_deref().unwrap_or("")
            )));
        }
        for b in &op.input {
            if !external.contains(b.as_str()) && !input_blobs.contains(b) {
                if !written.contains(b.as_str()) {
                    return Err(C2rsError::enforce(format!(
                        "Input {b} was not output by an op before"
                    )));
                }
                shareable.insert(b.clone());
            }
        }
        for b in &op.output {
            written.insert(b);
            if !external.contains(b.as_str()) {
                shareable.insert(b.clone());
            }
        }
    }
    let r = compute_blob_recycling_for_dag(
        net,
        &DagOptions {
            heads: input_blobs.to_vec(),
            op_indices: (0..net.op.len()).collect(),
            shareable,
            namescope: namescope.to_string(),
            ..Default::default()
        },
    )?;
    check(net, &r.net)?;
    Ok(r)
}
