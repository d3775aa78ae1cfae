//! A few basic CPU operators with Caffe2's names and semantics, used by tests and simple
//! hosts: `ConstantFill`, `Copy`, `Relu`.

use crate::error::{C2rsError, Result};
use crate::operator::{OpBase, OpSchema, Registry};
use crate::tensor::{DataType, Tensor};

use super::FnOperator;

/// `ConstantFill`: output shape from `shape` (+ `extra_shape`), or from the input's dims, or
/// (with `input_as_shape`) from the input's INT64 values; every element is `value` of
/// `dtype` (default FLOAT 0.0).
fn constant_fill(base: &OpBase) -> Result<bool> {
    let dtype_num = base.single_arg::<i32>("dtype", DataType::Float.as_i32())?;
    let dtype = DataType::try_from(dtype_num)?;
    let mut dims: Vec<i64> = if base.num_inputs() == 1 {
        let input = base.input_tensor(0)?;
        if base.single_arg::<bool>("input_as_shape", false)? {
            if input.dims().len() != 1 {
                return Err(C2rsError::enforce(
                    "When input_as_shape is true, the input must be a 1D tensor of data type int64_t",
                ));
            }
            input.typed::<i64>()?.to_vec()
        } else {
            input.dims().to_vec()
        }
    } else {
        if base.single_arg::<bool>("input_as_shape", false)? {
            return Err(C2rsError::enforce(
                "An input must be given if input_as_shape is true",
            ));
        }
        base.repeated_arg::<i64>("shape")?
    };
    dims.extend(base.repeated_arg::<i64>("extra_shape")?);
    let mut t = Tensor::zeros(dtype, &dims)?;
    match dtype {
        DataType::Float => fill(&mut t, base.single_arg::<f32>("value", 0.0)?)?,
        DataType::Double => fill(&mut t, base.single_arg::<f64>("value", 0.0)?)?,
        DataType::Int32 => fill(&mut t, base.single_arg::<i32>("value", 0)?)?,
        DataType::Int64 => fill(&mut t, base.single_arg::<i64>("value", 0)?)?,
        DataType::Int16 => fill(&mut t, base.single_arg::<i16>("value", 0)?)?,
        DataType::Int8 => fill(&mut t, base.single_arg::<i8>("value", 0)?)?,
        DataType::Uint16 => fill(&mut t, base.single_arg::<u16>("value", 0)?)?,
        DataType::Uint8 | DataType::Byte => fill(&mut t, base.single_arg::<u8>("value", 0)?)?,
        DataType::Bool => fill(&mut t, u8::from(base.single_arg::<bool>("value", false)?))?,
        DataType::String => {
            let v = base.single_arg::<Vec<u8>>("value", Vec::new())?;
            let numel = t.numel();
            for s in t.strings_mut()? {
                // Fallible: numel copies of `value` may be more than memory holds.
                s.try_reserve_exact(v.len()).map_err(|_| {
                    C2rsError::internal(format!(
                        "out of memory allocating {} bytes for {numel} copies of a {}-byte \
                         string value",
                        numel.saturating_mul(v.len()),
                        v.len()
                    ))
                })?;
                s.extend_from_slice(&v);
            }
        }
        DataType::Float16 => {
            return Err(C2rsError::unsupported("ConstantFill does not fill FLOAT16"));
        }
    }
    base.set_output_tensor(0, t)?;
    Ok(true)
}

fn fill<T: crate::tensor::Pod + Copy>(t: &mut Tensor, v: T) -> Result<()> {
    t.typed_mut::<T>()?.fill(v);
    Ok(())
}

/// `Copy`: output = a copy of the input tensor.
fn copy(base: &OpBase) -> Result<bool> {
    let t = base.input_tensor(0)?;
    base.set_output_tensor(0, t.deep_copy()?)?;
    Ok(true)
}

/// `Relu`: max(x, 0) on a FLOAT tensor.
fn relu(base: &OpBase) -> Result<bool> {
    let x = base.input_tensor(0)?;
    if x.dtype() != DataType::Float {
        return Err(C2rsError::type_mismatch(format!(
            "Relu expects a FLOAT tensor, input {} is {}",
            base.input_name(0),
            x.dtype()
        )));
    }
    let mut y = Tensor::zeros(DataType::Float, x.dims())?;
    for (out, &v) in y.typed_mut::<f32>()?.iter_mut().zip(x.typed::<f32>()?) {
        *out = v.max(0.0);
    }
    base.set_output_tensor(0, y)?;
    Ok(true)
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        OpSchema::new("ConstantFill")
            .num_inputs_range(0, 1)
            .num_outputs(1)
            .allow_inplace(&[(0, 0)])
            .set_doc(
                "Fills the output with one constant value. The shape comes from `shape` (no \
                 input), from the input's dims, or with `input_as_shape` from the input's \
                 INT64 values; `extra_shape` is appended in every case.",
            )
            .typed_arg(
                "value",
                "float|int|bool|string",
                "0",
                "The value every element gets, read in the field of `dtype` (f for FLOAT/DOUBLE, \
                 i for integer types and BOOL, s for STRING).",
            )
            .typed_arg(
                "dtype",
                "int (TensorProto.DataType)",
                "1 (FLOAT)",
                "Element type of the output.",
            )
            .typed_arg(
                "shape",
                "int[]",
                "[]",
                "Output dims when there is no input ([] gives a scalar).",
            )
            .typed_arg(
                "extra_shape",
                "int[]",
                "[]",
                "Dims appended to the shape taken from `shape` or the input.",
            )
            .typed_arg(
                "input_as_shape",
                "bool",
                "false",
                "Read the output dims from the values of the input (a 1-D INT64 tensor) \
                 instead of its dims.",
            )
            .input(
                0,
                "input",
                "Optional: a tensor whose dims (or, with input_as_shape, values) give the shape.",
            )
            .output(0, "output", "The filled tensor.")
            .caffe2_differences(
                "FLOAT16 is refused (C2RS_UNSUPPORTED) instead of filled; a STRING fill whose \
                 copies do not fit in memory is an error, not an abort.",
            ),
        |base| Ok(FnOperator::boxed(base, constant_fill)),
    )?;
    registry.register(
        OpSchema::new("Copy")
            .num_inputs(1)
            .num_outputs(1)
            .set_doc("Copies the input tensor to the output (on CUDA: GPU to GPU).")
            .input(0, "input", "The tensor to copy.")
            .output(0, "output", "A copy that shares nothing with the input."),
        |base| Ok(FnOperator::boxed(base, copy)),
    )?;
    registry.register(
        OpSchema::new("Relu")
            .num_inputs(1)
            .num_outputs(1)
            .allow_inplace(&[(0, 0)])
            .set_doc("Elementwise max(x, 0) of a FLOAT tensor; may run in place.")
            .input(0, "X", "FLOAT input tensor.")
            .output(0, "Y", "FLOAT output of the input's shape.")
            .caffe2_differences(
                "CPU and FLOAT only (a small operator kept for tests and simple hosts); \
                 another dtype is C2RS_TYPE_MISMATCH.",
            ),
        |base| Ok(FnOperator::boxed(base, relu)),
    )?;
    Ok(())
}
