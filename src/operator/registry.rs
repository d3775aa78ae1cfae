//! The process-global operator registry: creators keyed by (device type, `type` or
//! `type_ENGINE_engine`), schemas keyed by type, engine preferences. Filled explicitly by
//! `register_builtin_ops` (no static constructors), read-locked per lookup.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::RwLock;

use super::{OpBase, OpSchema, Operator};
use crate::error::{C2rsError, Result};

/// CPU device type (Caffe2 `DeviceType`).
pub const DEVICE_CPU: i32 = 0;
/// CUDA device type (Caffe2 `DeviceType`).
pub const DEVICE_CUDA: i32 = 1;

/// Builds an operator from its resolved base. An `Unsupported` error means "this engine
/// cannot run this def" (Caffe2's `UnsupportedOperatorFeature`): the next engine is tried.
pub type Creator = Arc<dyn Fn(OpBase) -> Result<Box<dyn Operator>> + Send + Sync>;

/// Registry key of an operator type for an engine (`""`/`DEFAULT` = the plain type).
pub fn registry_key(op_type: &str, engine: &str) -> String {
    if engine.is_empty() || engine == "DEFAULT" {
        op_type.to_string()
    } else {
        format!("{op_type}_ENGINE_{engine}")
    }
}

/// Device name as Caffe2 prints it.
pub fn device_name(device: i32) -> String {
    match device {
        DEVICE_CPU => "CPU".to_string(),
        DEVICE_CUDA => "CUDA".to_string(),
        other => format!("device type {other}"),
    }
}

/// Creators, schemas and engine preferences.
pub struct Registry {
    devices: BTreeSet<i32>,
    creators: HashMap<(i32, String), Creator>,
    schemas: HashMap<String, Arc<OpSchema>>,
    per_op_engine_pref: HashMap<(i32, String), Vec<String>>,
    global_engine_pref: HashMap<i32, Vec<String>>,
    /// Set when `register_builtin_ops` failed while building the global registry.
    init_error: Option<C2rsError>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry knowing the CPU and CUDA device types; CUDA prefers `CUDNN`.
    pub fn new() -> Self {
        Self {
            devices: [DEVICE_CPU, DEVICE_CUDA].into_iter().collect(),
            creators: HashMap::new(),
            schemas: HashMap::new(),
            per_op_engine_pref: HashMap::new(),
            global_engine_pref: [(DEVICE_CUDA, vec!["CUDNN".to_string()])]
                .into_iter()
                .collect(),
            init_error: None,
        }
    }

    /// Registers a CPU operator with its schema (the usual case).
    pub fn register(
        &mut self,
        schema: OpSchema,
        creator: impl Fn(OpBase) -> Result<Box<dyn Operator>> + Send + Sync + 'static,
    ) -> Result<()> {
        let name = schema.name().to_string();
        if self.creators.contains_key(&(DEVICE_CPU, name.clone())) {
            return Err(duplicate(&name, DEVICE_CPU));
        }
        self.register_schema(schema)?;
        self.register_creator(DEVICE_CPU, &name, Arc::new(creator))
    }

    /// Registers a creator under `key` (`type` or `type_ENGINE_engine`) for `device`.
    pub fn register_creator(&mut self, device: i32, key: &str, creator: Creator) -> Result<()> {
        if !self.devices.contains(&device) {
            return Err(C2rsError::enforce(format!(
                "Device type {device} not registered."
            )));
        }
        let k = (device, key.to_string());
        if self.creators.contains_key(&k) {
            return Err(duplicate(key, device));
        }
        self.creators.insert(k, creator);
        Ok(())
    }

    /// Registers the schema of a type; a second schema for the same type is an error. Catalog
    /// documentation kept apart from an operator family (`ops::queue_docs`) is joined here.
    pub fn register_schema(&mut self, schema: OpSchema) -> Result<()> {
        let schema = crate::ops::queue_docs::supplement(schema);
        let name = schema.name().to_string();
        if self.schemas.contains_key(&name) {
            return Err(C2rsError::already_exists(format!(
                "Schema for operator type {name} is already registered"
            )));
        }
        self.schemas.insert(name, Arc::new(schema));
        Ok(())
    }

    pub fn schema(&self, op_type: &str) -> Option<Arc<OpSchema>> {
        self.schemas.get(op_type).cloned()
    }

    pub fn creator(&self, device: i32, key: &str) -> Option<Creator> {
        self.creators.get(&(device, key.to_string())).cloned()
    }

    pub fn has_device(&self, device: i32) -> bool {
        self.devices.contains(&device)
    }

    /// Every registered key (types and engine variants, all devices), sorted, unique.
    pub fn keys(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.creators.keys().map(|(_, k)| k).collect();
        set.into_iter().cloned().collect()
    }

    /// Every registered schema, sorted by operator type.
    pub fn schemas(&self) -> Vec<Arc<OpSchema>> {
        let mut v: Vec<Arc<OpSchema>> = self.schemas.values().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// The device types `key` (a type or `type_ENGINE_engine`) is registered for, sorted.
    pub fn devices_of(&self, key: &str) -> Vec<i32> {
        let set: BTreeSet<i32> = self
            .creators
            .keys()
            .filter(|(_, k)| k == key)
            .map(|(d, _)| *d)
            .collect();
        set.into_iter().collect()
    }

    /// Engines preferred for `op_type` on `device`, tried after the def's own engines.
    pub fn set_per_op_engine_pref(&mut self, device: i32, op_type: &str, engines: Vec<String>) {
        self.per_op_engine_pref
            .insert((device, op_type.to_string()), engines);
    }

    /// Engines preferred for every type on `device`, tried after the per-op preference.
    pub fn set_global_engine_pref(&mut self, device: i32, engines: Vec<String>) {
        self.global_engine_pref.insert(device, engines);
    }

    /// Engine candidates in Caffe2's order: the def's engines (split on `,`), the per-op
    /// preference, the global preference (both dropped when `implicit_prefs` is false).
    pub fn engine_candidates(
        &self,
        device: i32,
        op_type: &str,
        engine: &str,
        implicit_prefs: bool,
    ) -> Vec<String> {
        let mut out: Vec<String> = engine
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        if implicit_prefs {
            if let Some(p) = self.per_op_engine_pref.get(&(device, op_type.to_string())) {
                out.extend(p.iter().cloned());
            }
            if let Some(p) = self.global_engine_pref.get(&device) {
                out.extend(p.iter().cloned());
            }
        }
        out
    }

    pub(crate) fn init_error(&self) -> Option<&C2rsError> {
        self.init_error.as_ref()
    }
}

fn duplicate(key: &str, device: i32) -> C2rsError {
    C2rsError::already_exists(format!(
        "Operator {key} is already registered for {}",
        device_name(device)
    ))
}

/// Registers every operator family built into caffe2rs. Each family has a
/// `register(&mut Registry)`; add one line per family.
pub fn register_builtin_ops(registry: &mut Registry) -> Result<()> {
    crate::ops::workspace_ops::register(registry)?;
    crate::ops::basic_ops::register(registry)?;
    crate::ops::copy_ops::register(registry)?;
    crate::ops::db_ops::register(registry)?;
    crate::ops::load_save_ops::register(registry)?;
    crate::ops::queue_ops::register(registry)?;
    crate::ops::given_fill_ops::register(registry)?;
    crate::ops::iter_ops::register(registry)?;
    crate::ops::counter_ops::register(registry)?;
    crate::ops::timer_ops::register(registry)?;
    crate::ops::utility_ops::register(registry)?;
    Ok(())
}

static REGISTRY: Lazy<RwLock<Registry>> = Lazy::new(|| {
    let mut r = Registry::new();
    if let Err(e) = register_builtin_ops(&mut r) {
        r.init_error = Some(C2rsError::internal(format!(
            "registering the built-in operators failed: {}",
            e.message()
        )));
    }
    RwLock::new(r)
});

/// The process-global registry (built-in operators registered on first use).
pub fn global_registry() -> &'static RwLock<Registry> {
    &REGISTRY
}

/// Every registered operator key, sorted.
pub fn registered_operators() -> Vec<String> {
    global_registry().read().keys()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registration_succeeds_once_and_rejects_duplicates() {
        let mut r = Registry::new();
        register_builtin_ops(&mut r).unwrap();
        assert!(r.keys().contains(&"GetAllBlobNames".to_string()));
        let e = register_builtin_ops(&mut r).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::AlreadyExists);
        assert!(global_registry().read().init_error().is_none());
    }

    #[test]
    fn engine_candidates_follow_def_then_preferences() {
        let mut r = Registry::new();
        r.set_per_op_engine_pref(DEVICE_CPU, "Foo", vec!["P".into()]);
        r.set_global_engine_pref(DEVICE_CPU, vec!["G".into()]);
        assert_eq!(
            r.engine_candidates(DEVICE_CPU, "Foo", "A,B", true),
            ["A", "B", "P", "G"]
        );
        assert_eq!(
            r.engine_candidates(DEVICE_CPU, "Foo", "A,B", false),
            ["A", "B"]
        );
        assert_eq!(r.engine_candidates(DEVICE_CUDA, "Bar", "", true), ["CUDNN"]);
        assert_eq!(registry_key("Foo", "DEFAULT"), "Foo");
        assert_eq!(registry_key("Foo", "X"), "Foo_ENGINE_X");
    }

    #[test]
    fn unknown_device_cannot_register() {
        let mut r = Registry::new();
        let c: Creator = Arc::new(|_| Err(C2rsError::internal("unused")));
        assert!(
            r.register_creator(7, "Foo", c)
                .unwrap_err()
                .message()
                .contains("Device type 7 not registered.")
        );
    }
}
