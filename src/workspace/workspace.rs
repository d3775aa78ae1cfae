//! `Workspace`: named blobs and nets with Caffe2's lookup order (local → forwarded →
//! parent), thread-safe maps, and operators/nets that hold their blobs by `Arc`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::blob::{Blob, BlobContent};
use super::blob_map::{BlobMap, Local, Presence};
use crate::error::{C2rsError, ErrorKind, Result};
use crate::net::plan::PlanControl;
use crate::net::{Net, create_net_object};
use crate::operator::{create_operator, run_operator};
use crate::proto::{NetDef, OperatorDef, PlanDef};

/// A Caffe2 workspace.
///
/// Lock order: `blobs` (its shard locks) and `nets` are never held together, and neither is
/// held while another workspace (parent, forwarding source) is consulted or while an operator
/// runs or is built.
pub struct Workspace {
    root_folder: String,
    /// General parent: every parent name is visible unless shadowed. Kept alive by the child.
    parent: Option<Arc<Workspace>>,
    /// Local blob names and forwarded names (resolved lazily), in sharded hash tables: a
    /// lookup locks one shard for a moment. Listings sort (bytewise, Caffe2's `std::map`).
    blobs: BlobMap,
    /// Nets by name. Running a net clones its `Arc` and releases the lock first.
    nets: RwLock<BTreeMap<String, Arc<dyn Net>>>,
    /// Position of the last operator that failed to build or run (-1 = none / not in a net).
    /// Relaxed: a diagnostic value with no ordering relation to other data.
    last_failed_op_net_position: AtomicI64,
    /// Set when a panic interrupted a mutation; every later mutation is refused.
    poisoned: AtomicBool,
    /// Plans running on this workspace (`run_plan`), so `cancel_plans` can reach them.
    /// Held only to add, remove or copy out entries; never while a plan runs or is cancelled.
    running_plans: Mutex<Vec<Arc<PlanControl>>>,
}

/// Removes a plan from `Workspace::running_plans` when its run ends, panic or not.
struct RunningPlan<'a> {
    ws: &'a Workspace,
    control: Arc<PlanControl>,
}
impl Drop for RunningPlan<'_> {
    fn drop(&mut self) {
        self.ws
            .running_plans
            .lock()
            .retain(|c| !Arc::ptr_eq(c, &self.control));
    }
}

/// Sets the poison flag if dropped while the thread panics (a mutation was interrupted).
struct PoisonOnPanic<'a>(&'a AtomicBool);
impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

impl Workspace {
    fn build(root_folder: &str, parent: Option<Arc<Workspace>>) -> Arc<Self> {
        Arc::new(Self {
            root_folder: root_folder.to_string(),
            parent,
            blobs: BlobMap::default(),
            nets: RwLock::new(BTreeMap::new()),
            last_failed_op_net_position: AtomicI64::new(-1),
            poisoned: AtomicBool::new(false),
            running_plans: Mutex::new(Vec::new()),
        })
    }

    /// A root workspace with root folder ".".
    pub fn new() -> Arc<Self> {
        Self::build(".", None)
    }

    /// A root workspace with the given root folder.
    pub fn with_root(root_folder: &str) -> Arc<Self> {
        Self::build(root_folder, None)
    }

    /// A child of `parent` (root folder ".").
    pub fn new_child(parent: &Arc<Workspace>) -> Arc<Self> {
        Self::build(".", Some(Arc::clone(parent)))
    }

    /// A child of `parent` with its own root folder.
    pub fn new_child_with_root(root_folder: &str, parent: &Arc<Workspace>) -> Arc<Self> {
        Self::build(root_folder, Some(Arc::clone(parent)))
    }

    /// A workspace that sees only the mapped parent names (`local name → parent name`).
    pub fn new_with_mapping(
        parent: Option<&Arc<Workspace>>,
        mapping: &[(String, String)],
    ) -> Result<Arc<Self>> {
        let parent =
            parent.ok_or_else(|| C2rsError::enforce("Parent workspace must be specified"))?;
        let ws = Self::build(".", None);
        ws.add_blob_mapping(parent, mapping, false)?;
        Ok(ws)
    }

    pub fn root_folder(&self) -> &str {
        &self.root_folder
    }

    pub fn parent(&self) -> Option<&Arc<Workspace>> {
        self.parent.as_ref()
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(C2rsError::enforce("workspace poisoned by an earlier panic"));
        }
        Ok(())
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Runs a mutation so that a panic inside it poisons the workspace.
    fn mutate<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check_poison()?;
        let _poison = PoisonOnPanic(&self.poisoned);
        f()
    }

    /// Position of the last operator that failed to build or run; `None` when none failed or
    /// the failure was outside a net.
    pub fn last_failed_op_net_position(&self) -> Option<usize> {
        usize::try_from(self.last_failed_op_net_position.load(Ordering::Relaxed)).ok()
    }

    pub(crate) fn set_last_failed_op_net_position(&self, position: Option<usize>) {
        let v = position.and_then(|p| i64::try_from(p).ok()).unwrap_or(-1);
        self.last_failed_op_net_position.store(v, Ordering::Relaxed);
    }

    /// The blob `name` resolves to (local → forwarded → parent), or `None`. A forwarded name
    /// whose source blob is gone is `None`.
    pub fn get_blob(&self, name: &str) -> Option<Arc<Blob>> {
        self.get_blob_by_bytes(name.as_bytes())
    }

    /// `get_blob` for a name given as bytes: bytes that are not UTF-8 name no blob, so a
    /// caller may validate them only when nothing was found.
    pub fn get_blob_by_bytes(&self, name: &[u8]) -> Option<Arc<Blob>> {
        match self.blobs.lookup(name) {
            Local::Blob(b) => Some(b),
            Local::Forwarded(ws, n) => ws.get_blob(&n),
            Local::Missing => self.parent.as_ref().and_then(|p| p.get_blob_by_bytes(name)),
        }
    }

    /// Whether `name` is visible (same lookup order as `get_blob`).
    pub fn has_blob(&self, name: &str) -> bool {
        self.has_blob_by_bytes(name.as_bytes())
    }

    /// `has_blob` for a name given as bytes (see `get_blob_by_bytes`). Clones nothing when
    /// the name is a local blob.
    pub fn has_blob_by_bytes(&self, name: &[u8]) -> bool {
        match self.blobs.presence(name) {
            Presence::Blob => true,
            Presence::Forwarded(ws, n) => ws.has_blob(&n),
            Presence::Missing => self
                .parent
                .as_ref()
                .is_some_and(|p| p.has_blob_by_bytes(name)),
        }
    }

    /// Caffe2's `CreateBlob`: the visible blob if there is one (possibly a parent's, content
    /// untouched), else a new empty local blob. `None` only for a forwarded name whose source
    /// blob is gone.
    pub fn create_blob(&self, name: &str) -> Option<Arc<Blob>> {
        match self.blobs.lookup(name.as_bytes()) {
            Local::Blob(b) => return Some(b),
            Local::Forwarded(ws, n) => return ws.get_blob(&n),
            Local::Missing => {}
        }
        if let Some(b) = self.parent.as_ref().and_then(|p| p.get_blob(name)) {
            return Some(b);
        }
        Some(self.insert_local(name))
    }

    fn insert_local(&self, name: &str) -> Arc<Blob> {
        self.blobs.get_or_insert_blob(name)
    }

    /// Caffe2's `CreateLocalBlob`: the local blob, created if missing (may shadow a parent's).
    pub fn create_local_blob(&self, name: &str) -> Arc<Blob> {
        self.insert_local(name)
    }

    /// Removes a local name; `false` when there is none. Operators using the blob keep it.
    pub fn remove_blob(&self, name: &str) -> bool {
        let removed = self.blobs.remove_blob(name.as_bytes());
        match removed {
            Some(blob) => {
                // Operators built on it stop using it (they hold their own Arc).
                blob.mark_removed();
                true
            }
            None => false,
        }
    }

    /// Renames a local blob, keeping its identity.
    pub fn rename_blob(&self, old: &str, new: &str) -> Result<()> {
        self.mutate(|| {
            if self.has_blob(new) {
                return Err(C2rsError::already_exists(format!(
                    "Blob {new} is already in the workspace."
                )));
            }
            // Re-checked under the shard locks: `new` may have appeared locally meanwhile.
            self.blobs.rename_blob(old, new).map_err(|taken| {
                if taken {
                    C2rsError::already_exists(format!("Blob {new} is already in the workspace."))
                } else {
                    C2rsError::not_found(format!("Blob {old} is not in the local blob list"))
                }
            })
        })
    }

    /// Local names, sorted.
    pub fn local_blobs(&self) -> Vec<String> {
        self.blobs.blob_names()
    }

    /// Caffe2's `Blobs()`: sorted locals, then forwarded names whose source blob exists
    /// (sorted), then the parent's `blobs()`. Duplicates (shadowing) are kept.
    pub fn blobs(&self) -> Vec<String> {
        let (mut names, forwarded) = self.blobs.names_and_forwards();
        for (local, (ws, n)) in forwarded {
            if ws.has_blob(&n) {
                names.push(local);
            }
        }
        if let Some(p) = &self.parent {
            names.extend(p.blobs());
        }
        names
    }

    /// Caffe2's `AddBlobMapping`: makes `parent`'s blobs visible here under new names.
    pub fn add_blob_mapping(
        &self,
        parent: &Arc<Workspace>,
        mapping: &[(String, String)],
        skip_defined: bool,
    ) -> Result<()> {
        self.mutate(|| {
            for (_, parent_name) in mapping {
                if !parent.has_blob(parent_name) {
                    return Err(C2rsError::not_found(format!(
                        "Invalid parent workspace blob {parent_name}"
                    )));
                }
            }
            for (name, parent_name) in mapping {
                let existing = self.blobs.forward(name);
                if let Some((ws, n)) = existing {
                    if Arc::ptr_eq(&ws, parent) && &n == parent_name {
                        continue;
                    }
                    return Err(C2rsError::enforce(format!("Redefinition of blob {name}")));
                }
                if self.has_blob(name) {
                    if skip_defined {
                        continue;
                    }
                    return Err(C2rsError::already_exists(format!(
                        "Redefinition of blob {name}"
                    )));
                }
                self.blobs
                    .set_forward(name, (Arc::clone(parent), parent_name.clone()));
            }
            Ok(())
        })
    }

    /// Caffe2's `CopyForwardedTensors`: each forwarded tensor named in `names` becomes a local
    /// copy; other names are ignored.
    pub fn copy_forwarded_tensors(&self, names: &[String]) -> Result<()> {
        self.mutate(|| {
            for name in names {
                let Some((ws, n)) = self.blobs.forward(name) else {
                    continue;
                };
                let source = ws.get_blob(&n).ok_or_else(|| {
                    C2rsError::not_found(format!("forwarded blob {name} no longer exists"))
                })?;
                let tensor = source.tensor().map_err(|e| {
                    C2rsError::new(
                        e.kind(),
                        format!("Expected Tensor for blob {name}: {}", e.message()),
                    )
                })?;
                let copy = Blob::with_content(BlobContent::Tensor(tensor.deep_copy()?));
                self.blobs.replace_forward_with_blob(name, Arc::new(copy));
            }
            Ok(())
        })
    }

    /// Creates (or, with `overwrite`, replaces) a net. The old net is dropped before the new
    /// one is built, so a failed rebuild loses it; a failed build leaves no entry.
    pub fn create_net(self: &Arc<Self>, def: &NetDef, overwrite: bool) -> Result<Arc<dyn Net>> {
        self.mutate(|| {
            let name = def
                .name
                .clone()
                .ok_or_else(|| C2rsError::invalid_argument("Net definition should have a name."))?;
            {
                let mut nets = self.nets.write();
                if nets.contains_key(&name) {
                    if !overwrite {
                        return Err(refuse_overwrite(&name));
                    }
                    nets.remove(&name);
                }
            }
            let net = create_net_object(def, self)?;
            let mut nets = self.nets.write();
            if nets.contains_key(&name) && !overwrite {
                return Err(refuse_overwrite(&name));
            }
            nets.insert(name, Arc::clone(&net));
            Ok(net)
        })
    }

    pub fn get_net(&self, name: &str) -> Option<Arc<dyn Net>> {
        self.nets.read().get(name).cloned()
    }

    pub fn has_net(&self, name: &str) -> bool {
        self.nets.read().contains_key(name)
    }

    /// Removes a net; `false` when there was none.
    pub fn delete_net(&self, name: &str) -> bool {
        self.nets.write().remove(name).is_some()
    }

    /// Net names, sorted.
    pub fn nets(&self) -> Vec<String> {
        self.nets.read().keys().cloned().collect()
    }

    /// Runs a registered net once. Missing → `NotFound` ("Network <n> does not exist yet.");
    /// an operator returning false → `RunFailed`; errors carry `op #i (Type): `.
    pub fn run_net(&self, name: &str) -> Result<()> {
        self.check_poison()?;
        let net = self
            .get_net(name)
            .ok_or_else(|| C2rsError::not_found(format!("Network {name} does not exist yet.")))?;
        net.run()
    }

    /// Builds and runs one operator. Outputs stay, even when the run fails.
    pub fn run_operator_once(self: &Arc<Self>, def: &OperatorDef) -> Result<()> {
        self.check_poison()?;
        let op = create_operator(def, self, None)?;
        run_operator(op.as_ref())
    }

    /// Builds and runs a net without registering it.
    pub fn run_net_once(self: &Arc<Self>, def: &NetDef) -> Result<()> {
        self.check_poison()?;
        let net = create_net_object(def, self).map_err(|e| {
            if e.kind() == ErrorKind::NotFound && e.message().starts_with("Unknown net type") {
                C2rsError::not_found(format!(
                    "Could not create net: {} of type {}",
                    def.name(),
                    def.r#type()
                ))
            } else {
                e
            }
        })?;
        net.run()
    }

    /// Caffe2's `RunPlan` (see `net::plan`): runs the plan's execution steps in order,
    /// creating its nets here. Errors read `plan <p>: step <s> / substep <t>: …`; a plan
    /// cancelled by `cancel_plans` returns `RunFailed` ("cancelled …") unless it failed first.
    pub fn run_plan(self: &Arc<Self>, plan: &PlanDef) -> Result<()> {
        self.check_poison()?;
        let control = PlanControl::new(plan.name(), self);
        self.running_plans.lock().push(Arc::clone(&control));
        let _running = RunningPlan {
            ws: self,
            control: Arc::clone(&control),
        };
        crate::net::plan::run_plan(self, plan, &control)
    }

    /// Cancels every plan running on this workspace now: no net, iteration or substep of
    /// them starts afterwards, and every operator of their nets gets its cancel hook (a queue
    /// operator closes its queue, even one the host created). Plans started later run
    /// normally. Returns how many plans it reached.
    pub fn cancel_plans(&self) -> usize {
        let plans: Vec<Arc<PlanControl>> = self.running_plans.lock().clone();
        for plan in &plans {
            plan.cancel();
        }
        plans.len()
    }

    /// Number of plans running on this workspace now.
    pub fn running_plan_count(&self) -> usize {
        self.running_plans.lock().len()
    }
}

fn refuse_overwrite(name: &str) -> C2rsError {
    C2rsError::already_exists(format!(
        "I respectfully refuse to overwrite an existing net of the same name \"{name}\", unless you explicitly specify overwrite=true."
    ))
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("root_folder", &self.root_folder)
            .field("has_parent", &self.parent.is_some())
            .field("local_blobs", &self.blobs.blob_count())
            .field("nets", &self.nets.read().len())
            .finish()
    }
}
