//! Helpers shared by the memonger integration tests: golden paths, a tiny reader for the
//! flat golden manifests (no JSON crate needed), and net builders.
#![allow(dead_code)]

use caffe2rs::proto::{NetDef, OperatorDef};
use prost::Message;
use std::path::PathBuf;

pub fn golden(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(rel)
}

pub fn read_net(rel: &str) -> NetDef {
    NetDef::decode(&std::fs::read(golden(rel)).expect("golden file")[..]).expect("golden NetDef")
}

/// Each top-level object of the manifest's net list as (file, text of the object).
pub fn manifest_entries(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("\"file\":") {
        let after = &rest[pos + 7..];
        let q1 = after.find('"').unwrap();
        let q2 = after[q1 + 1..].find('"').unwrap();
        let file = after[q1 + 1..q1 + 1 + q2].to_string();
        let end = after.find("\"file\":").unwrap_or(after.len());
        out.push((file, after[..end].to_string()));
        rest = &after[end..];
    }
    out
}

/// The integer after `"key":` in `obj`.
pub fn int_field(obj: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let pos = obj.find(&pat)?;
    let tail = obj[pos + pat.len()..].trim_start();
    let digits: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

pub fn op(ty: &str, inputs: &[&str], outputs: &[&str]) -> OperatorDef {
    OperatorDef {
        r#type: Some(ty.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn net(ops: Vec<OperatorDef>, ext_in: &[&str], ext_out: &[&str]) -> NetDef {
    NetDef {
        name: Some("test".into()),
        op: ops,
        external_input: ext_in.iter().map(|s| s.to_string()).collect(),
        external_output: ext_out.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Distinct names across op inputs and outputs (Caffe2's `count_blobs`).
pub fn count_blobs(net: &NetDef) -> usize {
    let mut s = std::collections::HashSet::new();
    for op in &net.op {
        s.extend(op.input.iter().cloned());
        s.extend(op.output.iter().cloned());
    }
    s.len()
}

/// Names containing "_shared" (Caffe2's `count_shared_blobs`).
pub fn count_shared_blobs(net: &NetDef) -> usize {
    let mut s = std::collections::HashSet::new();
    for op in &net.op {
        s.extend(
            op.input
                .iter()
                .chain(op.output.iter())
                .filter(|n| n.contains("_shared"))
                .cloned(),
        );
    }
    s.len()
}

/// Runs `net` symbolically in a fresh workspace (spec: value id = hash(op type, output slot,
/// input ids); unwritten inputs hash their name); returns name -> value id.
pub fn symbolic_run(net: &NetDef) -> std::collections::HashMap<String, u64> {
    use std::hash::{Hash, Hasher};
    let mut ws: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for op in &net.op {
        if op.r#type.as_deref() == Some("Free") {
            for o in &op.output {
                ws.remove(o);
            }
            continue;
        }
        let ins: Vec<u64> = op
            .input
            .iter()
            .map(|x| {
                *ws.entry(x.clone()).or_insert_with(|| {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    ("external", x).hash(&mut h);
                    h.finish()
                })
            })
            .collect();
        for (slot, o) in op.output.iter().enumerate() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (op.r#type.as_deref(), slot, &ins).hash(&mut h);
            ws.insert(o.clone(), h.finish());
        }
    }
    ws
}
