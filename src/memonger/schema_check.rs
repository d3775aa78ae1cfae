//! The schema check every memonger entry point runs first (spec §1): an op whose type has a
//! schema in the caffe2rs operator registry must pass that schema's verification; types
//! without a schema are skipped.

use crate::error::{C2rsError, Result};
use crate::operator::{global_registry, op_debug_string};
use crate::proto::NetDef;

/// Checks every top-level op of `net` against its registered schema. The error is an
/// enforce `"Operator def did not pass schema checking: <op>"` followed by the reason.
pub fn check_schemas(net: &NetDef) -> Result<()> {
    let registry = global_registry().read();
    for (i, op) in net.op.iter().enumerate() {
        let Some(schema) = registry.schema(op.r#type.as_deref().unwrap_or("")) else {
            continue;
        };
        if let Err(reason) = schema.verify(op) {
            return Err(C2rsError::enforce(format!(
                "Operator def did not pass schema checking: {} (op #{i}: {reason})",
                op_debug_string(op)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memonger::test_op as op;

    #[test]
    fn registered_types_are_verified_and_unknown_types_skipped() {
        let ok = NetDef {
            op: vec![
                op("Relu", &["x"], &["x"]),
                op("NoSuchOp", &["x"], &["y", "z"]),
            ],
            ..Default::default()
        };
        assert!(check_schemas(&ok).is_ok());
        let bad = NetDef {
            op: vec![op("Relu", &["x", "w"], &["y"])],
            ..Default::default()
        };
        let e = check_schemas(&bad).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Enforce);
        assert!(
            e.message()
                .starts_with("Operator def did not pass schema checking: "),
            "{}",
            e.message()
        );
        assert!(e.message().contains("Input size 2"), "{}", e.message());
    }
}
