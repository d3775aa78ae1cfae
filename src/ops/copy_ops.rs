//! Cross-device copy operators with Caffe2's names: `CopyCPUToGPU`, `CopyGPUToCPU`, `Copy` on
//! a CUDA device (GPU → GPU), `EnsureCPUOutput` and `CopyFromCPUInput` (CPU and CUDA).
//!
//! The GPU is the op's DeviceOption (device_type 1, device_id; unset → the thread's current
//! device), resolved once when the operator is created: without a usable GPU, creating a CUDA
//! operator fails with `Unsupported` and a message saying there is no CUDA device. Copies
//! wait for their stream before the op returns (outputs are complete when `run` returns).
//! CUDA tensors live in blobs as `CudaTensor` native objects (`"CudaTensor"`).

use std::sync::Arc;

use crate::context::cuda::{CUDA_TENSOR_TYPE_NAME, CudaContext, CudaTensor};
use crate::context::{DeviceSpec, DeviceType};
use crate::error::{C2rsError, Result};
use crate::operator::{DEVICE_CUDA, OpBase, OpSchema, Operator, Registry};
use crate::tensor::Tensor;
use crate::workspace::{BlobContent, TENSOR_TYPE_NAME};

use super::FnOperator;

/// An input tensor on either device.
enum AnyTensor {
    Cpu(Tensor),
    Cuda(Arc<CudaTensor>),
}

fn input_any(base: &OpBase, i: usize) -> Result<AnyTensor> {
    let blob = base.input(i)?;
    let guard = blob.read();
    match &*guard {
        BlobContent::Tensor(t) => Ok(AnyTensor::Cpu(t.clone())),
        BlobContent::Native(n) => n
            .downcast::<CudaTensor>()
            .map(AnyTensor::Cuda)
            .ok_or_else(|| wrong_input(base, i, n.type_name(), "a tensor (CPU or CUDA)")),
        other => Err(wrong_input(
            base,
            i,
            other.type_name(),
            "a tensor (CPU or CUDA)",
        )),
    }
}

fn wrong_input(base: &OpBase, i: usize, holds: &str, expects: &str) -> C2rsError {
    C2rsError::type_mismatch(format!(
        "{} expects {expects} as input {i}, blob {} holds {holds}",
        base.op_type(),
        base.input_name(i)
    ))
}

fn cpu_input(base: &OpBase, i: usize) -> Result<Tensor> {
    match input_any(base, i)? {
        AnyTensor::Cpu(t) => Ok(t),
        AnyTensor::Cuda(_) => Err(wrong_input(
            base,
            i,
            CUDA_TENSOR_TYPE_NAME,
            &format!("a CPU tensor ({TENSOR_TYPE_NAME})"),
        )),
    }
}

fn cuda_input(base: &OpBase, i: usize) -> Result<Arc<CudaTensor>> {
    match input_any(base, i)? {
        AnyTensor::Cuda(t) => Ok(t),
        AnyTensor::Cpu(_) => Err(wrong_input(
            base,
            i,
            TENSOR_TYPE_NAME,
            &format!("a CUDA tensor ({CUDA_TENSOR_TYPE_NAME})"),
        )),
    }
}

fn set_cuda_output(base: &OpBase, i: usize, t: CudaTensor) -> Result<()> {
    base.output(i)?.set_native(Arc::new(t));
    Ok(())
}

/// The op's GPU: its DeviceOption must be CUDA and a GPU must be usable.
fn resolve_gpu(base: &OpBase) -> Result<i32> {
    let spec = DeviceSpec::from_proto(base.device_option())?;
    if spec.device_type != DeviceType::Cuda {
        return Err(C2rsError::enforce(format!(
            "{} on CUDA needs a CUDA device option, got device type {}",
            base.op_type(),
            spec.device_type.as_i32()
        )));
    }
    let spec = DeviceSpec {
        random_seed: Some(0),
        ..spec
    };
    let ctx = CudaContext::new(&spec).map_err(|e| {
        let which = spec
            .device_id
            .map_or_else(|| "the current device".to_string(), |g| format!("GPU {g}"));
        let what = if e.kind() == crate::error::ErrorKind::Unsupported {
            "but there is no usable CUDA device"
        } else {
            "which cannot be used"
        };
        C2rsError::new(
            e.kind(),
            format!(
                "{} needs CUDA {which}, {what}: {}",
                base.op_type(),
                e.message()
            ),
        )
    })?;
    Ok(ctx.gpu_id())
}

#[derive(Clone, Copy)]
enum Kind {
    CpuToGpu,
    GpuToCpu,
    GpuToGpu,
    EnsureCpu,
    FromCpuInput,
}

/// A copy operator on a CUDA device option.
struct CudaCopyOp {
    base: OpBase,
    gpu: i32,
    kind: Kind,
}

impl Operator for CudaCopyOp {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        let base = &self.base;
        match self.kind {
            Kind::CpuToGpu | Kind::FromCpuInput => {
                let t = cpu_input(base, 0)?;
                set_cuda_output(base, 0, CudaTensor::from_host(&t, self.gpu)?)?;
            }
            Kind::GpuToCpu => {
                let t = cuda_input(base, 0)?;
                base.set_output_tensor(0, t.to_host()?)?;
            }
            Kind::GpuToGpu => {
                let t = cuda_input(base, 0)?;
                set_cuda_output(base, 0, t.copy_to_gpu(self.gpu)?)?;
            }
            Kind::EnsureCpu => ensure_cpu_output(base)?,
        }
        Ok(true)
    }
}

fn cuda_creator(kind: Kind) -> crate::operator::Creator {
    Arc::new(move |base: OpBase| -> Result<Box<dyn Operator>> {
        let gpu = resolve_gpu(&base)?;
        Ok(Box::new(CudaCopyOp { base, gpu, kind }))
    })
}

/// `EnsureCPUOutput`: a CPU input is shared into the output (copy-on-write, so later writes
/// to either side do not show in the other, as with Caffe2's copy); a CUDA input is copied to
/// the host.
fn ensure_cpu_output(base: &OpBase) -> Result<()> {
    let host = match input_any(base, 0)? {
        AnyTensor::Cpu(t) => t,
        AnyTensor::Cuda(t) => t.to_host()?,
    };
    base.set_output_tensor(0, host)
}

fn ensure_cpu_output_cpu(base: &OpBase) -> Result<bool> {
    ensure_cpu_output(base)?;
    Ok(true)
}

/// `CopyFromCPUInput` on a CPU device: a copy of the CPU input.
fn copy_from_cpu_input_cpu(base: &OpBase) -> Result<bool> {
    let t = cpu_input(base, 0)?;
    base.set_output_tensor(0, t.deep_copy()?)?;
    Ok(true)
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register_schema(
        OpSchema::new("CopyCPUToGPU")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Copies a CPU tensor to the op's GPU (CUDA device option only).")
            .input(0, "input", "The CPU tensor.")
            .output(0, "output", "The CUDA tensor on the op's GPU."),
    )?;
    registry.register_creator(DEVICE_CUDA, "CopyCPUToGPU", cuda_creator(Kind::CpuToGpu))?;
    registry.register_schema(
        OpSchema::new("CopyGPUToCPU")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Copies a CUDA tensor to a CPU tensor (CUDA device option only).")
            .input(0, "input", "The CUDA tensor.")
            .output(0, "output", "The CPU copy."),
    )?;
    registry.register_creator(DEVICE_CUDA, "CopyGPUToCPU", cuda_creator(Kind::GpuToCpu))?;
    // `Copy`'s schema and CPU creator live in basic_ops; on CUDA it copies GPU → GPU.
    registry.register_creator(DEVICE_CUDA, "Copy", cuda_creator(Kind::GpuToGpu))?;
    registry.register(
        OpSchema::new("EnsureCPUOutput")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Output 0 is input 0 on the CPU: shared if it is there, copied from the GPU otherwise.")
            .input(0, "input", "A CPU or CUDA tensor.")
            .output(0, "output", "The tensor on the CPU."),
        |base| Ok(FnOperator::boxed(base, ensure_cpu_output_cpu)),
    )?;
    registry.register_creator(
        DEVICE_CUDA,
        "EnsureCPUOutput",
        cuda_creator(Kind::EnsureCpu),
    )?;
    registry.register(
        OpSchema::new("CopyFromCPUInput")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Copies a CPU input to the op's device (CPU or its GPU).")
            .input(0, "input", "A CPU tensor.")
            .output(0, "output", "The copy on the op's device."),
        |base| Ok(FnOperator::boxed(base, copy_from_cpu_input_cpu)),
    )?;
    registry.register_creator(
        DEVICE_CUDA,
        "CopyFromCPUInput",
        cuda_creator(Kind::FromCpuInput),
    )?;
    Ok(())
}
