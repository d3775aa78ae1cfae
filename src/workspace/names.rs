//! Blob and net names are UTF-8 strings of any content and length (NUL and any Unicode
//! included), as `OperatorDef` and `NetDef` declare them (`string` in `proto/caffe2.proto`).
//! A def whose name fields hold bytes that are not UTF-8 cannot be represented; decoding it
//! here fails with C2RS_INVALID_ARGUMENT naming the operator (position and type) and the
//! field, instead of prost's bare "invalid string value" or, worse, a repaired name.
//!
//! The check decodes the same bytes a second time with mirror messages that read only the name
//! fields, as `bytes` (the wire format of `string` and `bytes` is the same, and every other
//! field is skipped as unknown). It runs only after the real decode has failed.

use prost::Message;

use crate::error::{C2rsError, Result};
use crate::proto::{NetDef, OperatorDef, PlanDef};

/// The name fields of an `OperatorDef`.
#[derive(Clone, PartialEq, Message)]
struct RawOp {
    #[prost(bytes = "vec", repeated, tag = "1")]
    input: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    output: Vec<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    name: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    r#type: Option<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    control_input: Vec<Vec<u8>>,
}

/// The name fields of a `NetDef`.
#[derive(Clone, PartialEq, Message)]
struct RawNet {
    #[prost(bytes = "vec", optional, tag = "1")]
    name: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "2")]
    op: Vec<RawOp>,
    #[prost(bytes = "vec", repeated, tag = "7")]
    external_input: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    external_output: Vec<Vec<u8>>,
}

/// The name fields of an `ExecutionStep`.
#[derive(Clone, PartialEq, Message)]
struct RawStep {
    #[prost(bytes = "vec", optional, tag = "1")]
    name: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "2")]
    substep: Vec<RawStep>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    network: Vec<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "7")]
    report_net: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "9")]
    should_stop_blob: Option<Vec<u8>>,
}

/// The name fields of a `PlanDef`.
#[derive(Clone, PartialEq, Message)]
struct RawPlan {
    #[prost(bytes = "vec", optional, tag = "1")]
    name: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "2")]
    network: Vec<RawNet>,
    #[prost(message, repeated, tag = "3")]
    execution_step: Vec<RawStep>,
}

/// What the C ABI cannot carry: the reason appended to every refusal.
const WHY: &str = "blob, net and operator names are UTF-8 strings (OperatorDef and NetDef declare \
                   them `string`); rename it in the def";

/// `bytes` shown for a message: valid UTF-8 as is, anything else escaped.
fn shown(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.escape_ascii().to_string(),
    }
}

fn bad(field: &str, bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes)
        .is_err()
        .then(|| format!("{field} \"{}\" is not valid UTF-8", bytes.escape_ascii()))
}

fn first_bad_in_list(field: &str, list: &[Vec<u8>]) -> Option<String> {
    list.iter()
        .enumerate()
        .find_map(|(i, b)| bad(&format!("{field} {i}"), b))
}

/// The first non-UTF-8 name field of `op`, as "<field> <index> "<escaped>" is not valid UTF-8".
fn op_problem(op: &RawOp) -> Option<String> {
    op.r#type
        .as_deref()
        .and_then(|t| bad("type", t))
        .or_else(|| op.name.as_deref().and_then(|n| bad("name", n)))
        .or_else(|| first_bad_in_list("input", &op.input))
        .or_else(|| first_bad_in_list("output", &op.output))
        .or_else(|| first_bad_in_list("control_input", &op.control_input))
}

/// "op #i (Type)" (or "op (Type)" outside a net), the type escaped when it is not UTF-8.
fn op_label(op: &RawOp, position: Option<usize>) -> String {
    let ty = shown(op.r#type.as_deref().unwrap_or_default());
    match position {
        Some(i) => format!("op #{i} ({ty})"),
        None => format!("op ({ty})"),
    }
}

fn net_problem(net: &RawNet) -> Option<String> {
    let label = format!("net \"{}\"", shown(net.name.as_deref().unwrap_or_default()));
    let own = net
        .name
        .as_deref()
        .and_then(|n| bad("name", n))
        .or_else(|| first_bad_in_list("external_input", &net.external_input))
        .or_else(|| first_bad_in_list("external_output", &net.external_output));
    if let Some(p) = own {
        return Some(format!("{label}: {p}"));
    }
    net.op.iter().enumerate().find_map(|(i, op)| {
        op_problem(op).map(|p| format!("{label}: {}: {p}", op_label(op, Some(i))))
    })
}

fn step_problem(step: &RawStep, path: &str) -> Option<String> {
    let path = format!(
        "{path}step \"{}\"",
        shown(step.name.as_deref().unwrap_or_default())
    );
    let own = step
        .name
        .as_deref()
        .and_then(|n| bad("name", n))
        .or_else(|| first_bad_in_list("network", &step.network))
        .or_else(|| {
            step.report_net
                .as_deref()
                .and_then(|n| bad("report_net", n))
        })
        .or_else(|| {
            step.should_stop_blob
                .as_deref()
                .and_then(|n| bad("should_stop_blob", n))
        });
    if let Some(p) = own {
        return Some(format!("{path}: {p}"));
    }
    step.substep
        .iter()
        .find_map(|s| step_problem(s, &format!("{path} / sub")))
}

/// Decodes `bytes` as `M`; when that fails, `locate` may find the name field at fault in the
/// same bytes (C2RS_INVALID_ARGUMENT), else the decode error stands (C2RS_PARSE_ERROR).
fn decode_with<M: Message + Default>(
    bytes: &[u8],
    what: &str,
    locate: impl FnOnce(&[u8]) -> Option<String>,
) -> Result<M> {
    M::decode(bytes).map_err(|e| match locate(bytes) {
        Some(problem) => C2rsError::invalid_argument(format!("{what}: {problem}; {WHY}")),
        None => C2rsError::parse(format!("bytes are not a valid {what}: {e}")),
    })
}

/// Decodes a serialized `OperatorDef`. Errors: C2RS_INVALID_ARGUMENT naming the operator and
/// field when a name is not UTF-8 ("OperatorDef: op (Copy): output 0 "a\xffb" is not valid
/// UTF-8; …"); C2RS_PARSE_ERROR for other malformed bytes.
pub fn decode_operator_def(bytes: &[u8]) -> Result<OperatorDef> {
    decode_with(bytes, "OperatorDef", |b| {
        let op = RawOp::decode(b).ok()?;
        op_problem(&op).map(|p| format!("{}: {p}", op_label(&op, None)))
    })
}

/// Decodes a serialized `NetDef`; errors as `decode_operator_def`, naming the net and the
/// operator's position ("NetDef: net "n": op #2 (Copy): input 1 … is not valid UTF-8; …").
pub fn decode_net_def(bytes: &[u8]) -> Result<NetDef> {
    decode_with(bytes, "NetDef", |b| net_problem(&RawNet::decode(b).ok()?))
}

/// Decodes a serialized `PlanDef`; errors as `decode_net_def`, naming the plan's net or step.
pub fn decode_plan_def(bytes: &[u8]) -> Result<PlanDef> {
    decode_with(bytes, "PlanDef", |b| {
        let plan = RawPlan::decode(b).ok()?;
        let label = format!(
            "plan \"{}\"",
            shown(plan.name.as_deref().unwrap_or_default())
        );
        if let Some(p) = plan.name.as_deref().and_then(|n| bad("name", n)) {
            return Some(format!("{label}: {p}"));
        }
        plan.network
            .iter()
            .find_map(net_problem)
            .or_else(|| plan.execution_step.iter().find_map(|s| step_problem(s, "")))
            .map(|p| format!("{label}: {p}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::proto::ExecutionStep;

    /// Replaces the first occurrence of `from` in `bytes` by `to` (same length, so the wire
    /// lengths stay right).
    fn patched(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present");
        bytes[at..at + from.len()].copy_from_slice(to);
        bytes
    }

    fn op(ty: &str, inputs: &[&str], outputs: &[&str]) -> OperatorDef {
        OperatorDef {
            r#type: Some(ty.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_with_nul_and_any_unicode_decode_unchanged() {
        let def = op("Copy", &["in\0put"], &["é\u{1F600}\0"]);
        let back = decode_operator_def(&def.encode_to_vec()).unwrap();
        assert_eq!(back, def);
    }

    #[test]
    fn a_non_utf8_output_names_the_operator_and_output() {
        let bytes = patched(
            op("Copy", &["x"], &["ok", "aZZb"]).encode_to_vec(),
            b"aZZb",
            b"a\xff\xfeb",
        );
        let e = decode_operator_def(&bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.message().starts_with(
                r#"OperatorDef: op (Copy): output 1 "a\xff\xfeb" is not valid UTF-8; "#
            ),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_non_utf8_input_in_a_net_names_net_position_and_type() {
        let net = NetDef {
            name: Some("the net".into()),
            op: vec![
                op("ConstantFill", &[], &["x"]),
                op("Copy", &["x", "QQ"], &["y"]),
            ],
            ..Default::default()
        };
        let bytes = patched(net.encode_to_vec(), b"QQ", b"\x80Q");
        let e = decode_net_def(&bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.message().starts_with(
                r#"NetDef: net "the net": op #1 (Copy): input 1 "\x80Q" is not valid UTF-8; "#
            ),
            "{}",
            e.message()
        );
        // A non-UTF-8 net name itself.
        let bytes = patched(net.encode_to_vec(), b"the net", b"the\xc0net");
        let e = decode_net_def(&bytes).unwrap_err();
        assert!(
            e.message()
                .starts_with(r#"NetDef: net "the\xc0net": name "the\xc0net" is not valid UTF-8"#),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_non_utf8_should_stop_blob_names_the_step_path() {
        let plan = PlanDef {
            name: Some("p".into()),
            execution_step: vec![ExecutionStep {
                name: Some("outer".into()),
                substep: vec![ExecutionStep {
                    name: Some("inner".into()),
                    should_stop_blob: Some("SS".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = patched(plan.encode_to_vec(), b"SS", b"S\xff");
        let e = decode_plan_def(&bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.message().starts_with(
                r#"PlanDef: plan "p": step "outer" / substep "inner": should_stop_blob "S\xff" is not valid UTF-8"#
            ),
            "{}",
            e.message()
        );
    }

    #[test]
    fn garbage_stays_a_parse_error() {
        let e = decode_net_def(&[0x0a, 0x05, b'a']).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(e.message().starts_with("bytes are not a valid NetDef: "));
        // A non-UTF-8 string outside the name fields keeps prost's message (with its path).
        let mut def = op("Copy", &["x"], &["y"]);
        def.engine = Some("EE".into());
        let bytes = patched(def.encode_to_vec(), b"EE", b"E\xff");
        let e = decode_operator_def(&bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
    }
}
