//! Device contexts (Caffe2's `CPUContext` / `CUDAContext`), their allocators, copies, random
//! generators, and the events that order work between them.
//!
//! `cpu` is always available. `cuda` goes through cudarc with dynamic loading: every build has
//! it, and without the `cuda` feature, a driver or a device each entry point reports
//! `Unsupported` with the reason the probe recorded (`cuda::unavailable_reason`).

pub mod cpu;
pub mod cuda;
pub mod events;
pub mod mt19937;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{C2rsError, Result};
use crate::proto::DeviceOption;

pub use cpu::CpuContext;
pub use cuda::CudaContext;
pub use events::{Event, EventStatus};

/// Caffe2 `DeviceType` values this layer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceType {
    Cpu,
    Cuda,
    /// MKLDNN tensors live in host memory: CPU contexts and CPU events serve it.
    Mkldnn,
}

impl DeviceType {
    /// Caffe2's number for the type.
    pub fn as_i32(self) -> i32 {
        match self {
            DeviceType::Cpu => 0,
            DeviceType::Cuda => 1,
            DeviceType::Mkldnn => 2,
        }
    }

    /// The type whose context and event entries serve this one (MKLDNN → CPU).
    pub fn canonical(self) -> DeviceType {
        match self {
            DeviceType::Mkldnn => DeviceType::Cpu,
            t => t,
        }
    }
}

impl TryFrom<i32> for DeviceType {
    type Error = C2rsError;
    fn try_from(value: i32) -> Result<Self> {
        match value {
            0 => Ok(DeviceType::Cpu),
            1 => Ok(DeviceType::Cuda),
            2 => Ok(DeviceType::Mkldnn),
            n => Err(C2rsError::enforce(format!(
                "Device type {n} not registered."
            ))),
        }
    }
}

/// The fields of a `DeviceOption` this layer reads, with presence kept ("unset" and 0 differ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    pub device_type: DeviceType,
    /// CUDA ordinal; `None` (unset or −1) means the thread's current device.
    pub device_id: Option<i32>,
    /// `None` means "draw one with `random_number_seed()`".
    pub random_seed: Option<u32>,
    pub node_name: String,
    pub numa_node_id: i32,
}

impl Default for DeviceSpec {
    fn default() -> Self {
        Self {
            device_type: DeviceType::Cpu,
            device_id: None,
            random_seed: None,
            node_name: String::new(),
            numa_node_id: -1,
        }
    }
}

impl DeviceSpec {
    /// A CPU spec with a fixed seed.
    pub fn cpu_seeded(seed: u32) -> Self {
        Self {
            random_seed: Some(seed),
            ..Self::default()
        }
    }

    /// A CUDA spec on `gpu` (or the current device for `None`).
    pub fn cuda(gpu: Option<i32>) -> Self {
        Self {
            device_type: DeviceType::Cuda,
            device_id: gpu,
            ..Self::default()
        }
    }

    /// Reads a decoded `DeviceOption`; an unknown device type is an enforce.
    pub fn from_proto(option: &DeviceOption) -> Result<Self> {
        let device_type = DeviceType::try_from(option.device_type.unwrap_or(0))?;
        Ok(Self {
            device_type,
            device_id: option.device_id.filter(|&id| id >= 0),
            random_seed: option.random_seed,
            node_name: option.node_name.clone().unwrap_or_default(),
            numa_node_id: option.numa_node_id.unwrap_or(-1),
        })
    }

    /// Caffe2's `IsSameDevice`: type, gpu id, node name and NUMA node (not the seed).
    pub fn is_same_device(&self, other: &DeviceSpec) -> bool {
        self.device_type == other.device_type
            && self.device_id == other.device_id
            && self.node_name == other.node_name
            && self.numa_node_id == other.numa_node_id
    }
}

/// Post-incremented on every `random_number_seed()` call so consecutive seeds differ.
/// Relaxed: only uniqueness of the fetched values matters, not ordering with other memory.
static SEED_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Caffe2's `RandomNumberSeed()`: (51551·counter + 61631·pid + 64997·sec + 111857·usec) mod 2³².
/// Consecutive calls differ; values are not reproducible across runs.
pub fn random_number_seed() -> u32 {
    let counter = SEED_COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let sec = now.as_secs() as u32;
    let usec = now.subsec_micros();
    let pid = std::process::id();
    51551u32
        .wrapping_mul(counter)
        .wrapping_add(61631u32.wrapping_mul(pid))
        .wrapping_add(64997u32.wrapping_mul(sec))
        .wrapping_add(111857u32.wrapping_mul(usec))
}

/// A context of either device type, as an operator would hold it.
pub enum Context {
    Cpu(CpuContext),
    Cuda(CudaContext),
}

impl Context {
    /// Builds the context a `DeviceSpec` asks for (MKLDNN gets a CPU context).
    pub fn new(spec: &DeviceSpec) -> Result<Self> {
        match spec.device_type.canonical() {
            DeviceType::Cuda => Ok(Context::Cuda(CudaContext::new(spec)?)),
            _ => Ok(Context::Cpu(CpuContext::new(spec)?)),
        }
    }

    pub fn device_type(&self) -> DeviceType {
        match self {
            Context::Cpu(_) => DeviceType::Cpu,
            Context::Cuda(_) => DeviceType::Cuda,
        }
    }

    pub fn random_seed(&self) -> u32 {
        match self {
            Context::Cpu(c) => c.random_seed(),
            Context::Cuda(c) => c.random_seed(),
        }
    }

    pub fn switch_to_device(&mut self, stream_id: i32) -> Result<()> {
        match self {
            Context::Cpu(c) => {
                c.switch_to_device(stream_id);
                Ok(())
            }
            Context::Cuda(c) => c.switch_to_device(stream_id),
        }
    }

    pub fn finish_device_computation(&mut self) -> Result<()> {
        match self {
            Context::Cpu(c) => {
                c.finish_device_computation();
                Ok(())
            }
            Context::Cuda(c) => c.finish_device_computation(),
        }
    }

    /// Records `event` for the work issued so far (or fails it with `err`).
    pub fn record(&self, event: &Event, err: Option<&str>) -> Result<()> {
        event.record(self.device_type(), Some(self), err)
    }

    /// Makes this context wait for `event` (the host blocks where the pair requires it).
    pub fn wait_event(&self, event: &Event) -> Result<()> {
        event.wait(self.device_type(), Some(self))
    }

    /// Caffe2's `HasAsyncPartDefault` for a device type.
    pub fn has_async_part_default(device_type: DeviceType) -> bool {
        device_type.canonical() == DeviceType::Cuda
    }

    /// Caffe2's `SupportsAsyncScheduling` for a device type.
    pub fn supports_async_scheduling(device_type: DeviceType) -> bool {
        device_type.canonical() == DeviceType::Cuda
    }

    /// Caffe2's `IsStreamFree`: always for CPU; for CUDA, whether the calling thread's stream
    /// `stream_id` on the option's device has no pending work (creating it if missing).
    pub fn is_stream_free(spec: &DeviceSpec, stream_id: i32) -> Result<bool> {
        match spec.device_type.canonical() {
            DeviceType::Cuda => cuda::is_stream_free(spec.device_id, stream_id),
            _ => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_types_are_an_enforce_naming_the_number() {
        let e = DeviceType::try_from(3).unwrap_err();
        assert_eq!(e.message(), "Device type 3 not registered.");
        assert!(DeviceType::try_from(7).is_err());
        assert_eq!(
            DeviceType::try_from(2).unwrap().canonical(),
            DeviceType::Cpu
        );
    }

    #[test]
    fn device_option_presence_survives() {
        let opt = DeviceOption {
            device_type: Some(1),
            device_id: Some(-1),
            random_seed: Some(0),
            ..Default::default()
        };
        let spec = DeviceSpec::from_proto(&opt).unwrap();
        assert_eq!(spec.device_id, None);
        assert_eq!(spec.random_seed, Some(0));
        let unset = DeviceSpec::from_proto(&DeviceOption::default()).unwrap();
        assert_eq!(unset.random_seed, None);
        assert_eq!(unset.numa_node_id, -1);
    }

    #[test]
    fn same_device_ignores_the_seed() {
        let a = DeviceSpec::cpu_seeded(1);
        let b = DeviceSpec::cpu_seeded(2);
        assert!(a.is_same_device(&b));
        let c = DeviceSpec {
            numa_node_id: 1,
            ..DeviceSpec::default()
        };
        assert!(!a.is_same_device(&c));
        assert!(!DeviceSpec::cuda(Some(0)).is_same_device(&DeviceSpec::cuda(Some(1))));
    }

    #[test]
    fn consecutive_random_number_seeds_differ() {
        let a = random_number_seed();
        let b = random_number_seed();
        assert_ne!(a, b);
    }
}
