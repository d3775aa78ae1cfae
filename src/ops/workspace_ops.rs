//! Workspace operators: `GetAllBlobNames`.

use crate::error::Result;
use crate::operator::{OpBase, OpSchema, Registry};
use crate::tensor::Tensor;

use super::FnOperator;

/// `GetAllBlobNames`: no inputs; one output, a 1-D STRING tensor with the names of the
/// workspace the operator was created in: `blobs()` when `include_shared` (default true),
/// else `local_blobs()`. The output exists from construction, so its name is listed.
fn get_all_blob_names(base: &OpBase) -> Result<bool> {
    let include_shared = base.single_arg::<bool>("include_shared", true)?;
    let ws = base.workspace()?;
    let names = if include_shared {
        ws.blobs()
    } else {
        ws.local_blobs()
    };
    let n = i64::try_from(names.len()).unwrap_or(i64::MAX);
    let values = names.into_iter().map(String::into_bytes).collect();
    base.set_output_tensor(0, Tensor::from_strings(&[n], values)?)?;
    Ok(true)
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("GetAllBlobNames")
            .num_inputs(0)
            .num_outputs(1)
            .set_doc("Return a 1-D tensor of strings containing the names of each blob in the active workspace.")
            .typed_arg(
                "include_shared",
                "bool",
                "true",
                "Include the blobs visible from parent workspaces and forwarded names (local \
                 ones first, sorted); false lists only the workspace's own blobs.",
            )
            .output(
                0,
                "blob_names",
                "1-D STRING tensor of the names, the output's own name included.",
            )
            .caffe2_differences(
                "Forwarded names are listed sorted (Caffe2 used hash order); shadowed names \
                 appear twice, as in Caffe2.",
            ),
        |base| {
            // Read the argument once at construction so a wrong field fails early.
            base.single_arg::<bool>("include_shared", true)?;
            Ok(FnOperator::boxed(base, get_all_blob_names))
        },
    )
}
