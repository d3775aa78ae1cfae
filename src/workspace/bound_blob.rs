//! `BoundBlob`: a blob looked up by name once, for hosts that feed and fetch it many times
//! (`c2rs_workspace_blob_handle`). It holds the blob itself, as an operator holds its inputs,
//! so a call on it costs no name lookup; and it follows the operators' rule for a blob whose
//! name was removed from the workspace (`OpBase::replaced_blob`): while the name stands for
//! nothing else it keeps working on its own blob; once the name holds another blob, every
//! call is refused, so a host never goes on feeding a blob the workspace no longer shows under
//! that name while a new blob of the same name is read.

use std::sync::Arc;

use super::{Blob, Workspace};
use crate::error::{C2rsError, Result};

pub struct BoundBlob {
    /// Kept alive by the handle (the name is resolved in it again on the removed-blob path).
    workspace: Arc<Workspace>,
    /// The name the blob was looked up by (for the re-check and for messages).
    name: String,
    blob: Arc<Blob>,
}

impl BoundBlob {
    /// Binds the blob `name` resolves to in `workspace` (local, forwarded or a parent's).
    /// With `create`, a name that is not visible gets a new empty local blob (Caffe2's
    /// `CreateBlob`); without, it is `NotFound`. A forwarded name whose source blob is gone
    /// is `NotFound` either way.
    pub fn new(workspace: &Arc<Workspace>, name: &str, create: bool) -> Result<Self> {
        let blob = if create {
            workspace.create_blob(name).ok_or_else(|| {
                C2rsError::not_found(format!(
                    "blob {name} is forwarded to a parent blob that no longer exists"
                ))
            })?
        } else {
            workspace
                .get_blob(name)
                .ok_or_else(|| C2rsError::not_found(format!("Can't find blob: {name}")))?
        };
        Ok(Self::with_blob(workspace, name, blob))
    }

    /// Binds a blob already looked up by `name` in `workspace`.
    pub fn with_blob(workspace: &Arc<Workspace>, name: &str, blob: Arc<Blob>) -> Self {
        Self {
            workspace: Arc::clone(workspace),
            name: name.to_string(),
            blob,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the blob is still in its workspace (not removed since it was bound). A rename
    /// keeps it there: the binding follows the blob, not the name.
    pub fn is_present(&self) -> bool {
        !self.blob.is_removed()
    }

    /// The bound blob, unless it was removed and its name now holds another blob
    /// (`Enforce`, naming the blob). One relaxed load when the blob was never removed.
    pub fn blob(&self) -> Result<&Arc<Blob>> {
        if !self.blob.is_removed() {
            return Ok(&self.blob);
        }
        // The rare path: look the name up again, as `OpBase::replaced_blob` does.
        match self.workspace.get_blob(&self.name) {
            Some(now) if !Arc::ptr_eq(&now, &self.blob) => Err(C2rsError::enforce(format!(
                "blob {} was removed from the workspace after this handle was made and the \
                 name now holds another blob; get a new handle to use it",
                self.name
            ))),
            _ => Ok(&self.blob),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::tensor::{DataType, Tensor};

    fn floats(v: &[f32]) -> Tensor {
        Tensor::from_slice(DataType::Float, &[v.len() as i64], v).unwrap()
    }

    #[test]
    fn binding_without_create_needs_a_visible_name_and_create_makes_it() {
        let ws = Workspace::new();
        let e = BoundBlob::new(&ws, "x", false).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.message(), "Can't find blob: x");
        let bound = BoundBlob::new(&ws, "x", true).unwrap();
        assert!(ws.has_blob("x"));
        assert!(Arc::ptr_eq(
            bound.blob().unwrap(),
            &ws.get_blob("x").unwrap()
        ));
    }

    #[test]
    fn a_parent_blob_is_bound_through_the_child() {
        let parent = Workspace::new();
        parent.create_blob("p").unwrap().set_tensor(floats(&[1.0]));
        let child = Workspace::new_child(&parent);
        let bound = BoundBlob::new(&child, "p", false).unwrap();
        bound.blob().unwrap().set_tensor(floats(&[2.0]));
        assert_eq!(
            parent
                .get_blob("p")
                .unwrap()
                .tensor()
                .unwrap()
                .typed::<f32>()
                .unwrap(),
            &[2.0]
        );
        assert!(
            child.local_blobs().is_empty(),
            "nothing created in the child"
        );
    }

    #[test]
    fn a_removed_blob_keeps_working_until_its_name_holds_another_blob() {
        let ws = Workspace::new();
        let bound = BoundBlob::new(&ws, "x", true).unwrap();
        assert!(bound.is_present());
        assert!(ws.remove_blob("x"));
        assert!(!bound.is_present());
        // Name unused: the handle works on its own blob (as an operator would).
        bound.blob().unwrap().set_tensor(floats(&[3.0]));
        assert!(!ws.has_blob("x"), "not put back");
        // The name now holds another blob: refused, naming the blob.
        ws.create_blob("x").unwrap();
        let e = bound.blob().err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Enforce);
        assert!(
            e.message().starts_with("blob x was removed"),
            "{}",
            e.message()
        );
        // A new handle binds the new blob.
        let again = BoundBlob::new(&ws, "x", false).unwrap();
        assert!(Arc::ptr_eq(
            again.blob().unwrap(),
            &ws.get_blob("x").unwrap()
        ));
    }

    #[test]
    fn a_rename_keeps_the_handle_on_its_blob() {
        let ws = Workspace::new();
        let bound = BoundBlob::new(&ws, "old", true).unwrap();
        ws.rename_blob("old", "new").unwrap();
        assert!(bound.is_present());
        bound.blob().unwrap().set_tensor(floats(&[4.0]));
        assert_eq!(
            ws.get_blob("new")
                .unwrap()
                .tensor()
                .unwrap()
                .typed::<f32>()
                .unwrap(),
            &[4.0]
        );
        assert_eq!(bound.name(), "old");
    }
}
