//! The `GivenTensor*Fill` family: an output filled with the literal `values` of the def, in a
//! shape from `shape`, from the input's dims (+ `extra_shape`) or, with `input_as_shape`, from
//! the input's INT64 values. Caffe2's `FillerOp` shape rules are checked at construction.
//!
//! Differences from Caffe2 (which only `DCHECK`ed it, reading past `values` in release
//! builds): an output whose element count differs from the number of values is an enforce
//! naming both counts, raised before anything is allocated.

use crate::error::{C2rsError, Result};
use crate::operator::{OpBase, OpSchema, Operator, Registry};
use crate::tensor::{DataType, Pod, Tensor, checked_numel};

/// Caffe2's `FillerOp` shape arguments, checked when the operator is built.
pub(crate) struct FillShape {
    shape: Vec<i64>,
    extra_shape: Vec<i64>,
    input_as_shape: bool,
}

impl FillShape {
    /// Reads `shape`, `extra_shape` and `input_as_shape` with Caffe2's construction checks.
    pub(crate) fn from_base(base: &OpBase) -> Result<Self> {
        let shape = base.repeated_arg::<i64>("shape")?;
        let extra_shape = base
            .repeated_arg::<i32>("extra_shape")?
            .into_iter()
            .map(i64::from)
            .collect::<Vec<_>>();
        let input_as_shape = base.single_arg::<bool>("input_as_shape", false)?;
        if base.num_inputs() > 0 {
            if !shape.is_empty() {
                return Err(C2rsError::enforce(
                    "Cannot set the shape argument and pass in an input at the same time",
                ));
            }
        } else {
            if !extra_shape.is_empty() {
                return Err(C2rsError::enforce(
                    "Cannot set extra_shape when there is no input",
                ));
            }
            if input_as_shape {
                return Err(C2rsError::enforce(
                    "An input must be given if input_as_shape is true",
                ));
            }
            if shape.is_empty() && base.args().has_single_argument_of_type::<i64>("shape") {
                return Err(C2rsError::enforce(
                    "Fill 'shape' argument was a scalar, list expected",
                ));
            }
        }
        Ok(Self {
            shape,
            extra_shape,
            input_as_shape,
        })
    }

    /// The output dims for this run.
    pub(crate) fn dims(&self, base: &OpBase) -> Result<Vec<i64>> {
        if base.num_inputs() == 0 {
            return Ok(self.shape.clone());
        }
        let input = base.input_tensor(0)?;
        let mut dims = if self.input_as_shape {
            if input.dims().len() != 1 {
                return Err(C2rsError::enforce(format!(
                    "When input_as_shape is true, the input must be a 1D tensor of data type \
                     int64_t (input {} has dims {:?})",
                    base.input_name(0),
                    input.dims()
                )));
            }
            if input.numel() == 0 {
                return Err(C2rsError::enforce(format!(
                    "When input_as_shape is true, the input must not be empty (input {})",
                    base.input_name(0)
                )));
            }
            if input.dtype() != DataType::Int64 {
                return Err(C2rsError::type_mismatch(format!(
                    "When input_as_shape is true, the input must be a 1D tensor of data type \
                     int64_t; input {} is {}",
                    base.input_name(0),
                    input.dtype()
                )));
            }
            input.typed::<i64>()?.to_vec()
        } else {
            input.dims().to_vec()
        };
        dims.extend_from_slice(&self.extra_shape);
        Ok(dims)
    }
}

/// The literal values of a fill, typed at construction.
enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// BOOL, stored as 0/1 bytes.
    Bool(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Str(Vec<Vec<u8>>),
}

impl Values {
    /// Reads `values` as `dtype` (Caffe2's `GetRepeatedArgument<T>("values")`: floats for
    /// FLOAT/DOUBLE, ints for the integer types and BOOL, strings for STRING; integers narrow
    /// losslessly or fail).
    fn read(base: &OpBase, dtype: DataType) -> Result<Self> {
        Ok(match dtype {
            DataType::Float => Values::F32(base.repeated_arg("values")?),
            DataType::Double => Values::F64(base.repeated_arg("values")?),
            DataType::Bool => Values::Bool(
                base.repeated_arg::<bool>("values")?
                    .into_iter()
                    .map(u8::from)
                    .collect(),
            ),
            DataType::Uint16 => Values::U16(base.repeated_arg("values")?),
            DataType::Int16 => Values::I16(base.repeated_arg("values")?),
            DataType::Int32 => Values::I32(base.repeated_arg("values")?),
            DataType::Int64 => Values::I64(base.repeated_arg("values")?),
            DataType::String => Values::Str(base.repeated_arg("values")?),
            other => {
                return Err(C2rsError::enforce(format!(
                    "Unexpected 'dtype' argument value: {}",
                    other.as_i32()
                )));
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::U16(v) => v.len(),
            Values::I16(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::Str(v) => v.len(),
        }
    }

    fn tensor(&self, dims: &[i64]) -> Result<Tensor> {
        fn typed<T: Pod>(dtype: DataType, dims: &[i64], v: &[T]) -> Result<Tensor> {
            Tensor::from_slice(dtype, dims, v)
        }
        match self {
            Values::F32(v) => typed(DataType::Float, dims, v),
            Values::F64(v) => typed(DataType::Double, dims, v),
            Values::Bool(v) => typed(DataType::Bool, dims, v),
            Values::U16(v) => typed(DataType::Uint16, dims, v),
            Values::I16(v) => typed(DataType::Int16, dims, v),
            Values::I32(v) => typed(DataType::Int32, dims, v),
            Values::I64(v) => typed(DataType::Int64, dims, v),
            Values::Str(v) => Tensor::from_strings(dims, v.clone()),
        }
    }
}

/// Caffe2's `cast::GetCastDataType`: the `dtype` argument as an integer, or as a name
/// (`"float"`, `"INT64"`, any case).
pub(crate) fn dtype_argument(base: &OpBase, name: &str) -> Result<i32> {
    if base.args().has_single_argument_of_type::<Vec<u8>>(name) {
        let s = base
            .single_arg::<String>(name, String::new())?
            .to_uppercase();
        if s == "UNDEFINED" {
            return Ok(0);
        }
        return DataType::ALL
            .iter()
            .find(|d| d.name() == s)
            .map(|d| d.as_i32())
            .ok_or_else(|| C2rsError::enforce(format!("Unknown 'to' argument: {s}")));
    }
    base.single_arg::<i32>(name, DataType::Float.as_i32())
}

/// One `GivenTensor*Fill` operator: the values are read and typed when it is built.
struct GivenTensorFill {
    base: OpBase,
    shape: FillShape,
    values: Values,
}

impl GivenTensorFill {
    fn build(base: OpBase, fixed: Option<DataType>) -> Result<Box<dyn Operator>> {
        let shape = FillShape::from_base(&base)?;
        let dtype = match fixed {
            Some(d) => d,
            // Only the float variant reads `dtype`; the typed variants ignore it (as Caffe2).
            None if base.has_argument("dtype") => match dtype_argument(&base, "dtype")? {
                0 => {
                    return Err(C2rsError::enforce("Cannot have undefined 'dtype' argument"));
                }
                n => DataType::try_from(n).map_err(|_| {
                    C2rsError::enforce(format!("Unexpected 'dtype' argument value: {n}"))
                })?,
            },
            None => DataType::Float,
        };
        let values = Values::read(&base, dtype)?;
        Ok(Box::new(Self {
            base,
            shape,
            values,
        }))
    }
}

impl Operator for GivenTensorFill {
    fn base(&self) -> &OpBase {
        &self.base
    }

    fn run(&self) -> Result<bool> {
        let dims = self.shape.dims(&self.base)?;
        // Count first, so a shape the values cannot fill allocates nothing.
        let numel = checked_numel(&dims)?;
        if numel != self.values.len() {
            return Err(C2rsError::enforce(format!(
                "{}: output shape {dims:?} has {numel} elements but `values` has {}",
                self.base.op_type(),
                self.values.len()
            )));
        }
        self.base.set_output_tensor(0, self.values.tensor(&dims)?)?;
        Ok(true)
    }
}

const VALUES_DOC: &str = "The value for the elements of the output tensor, in row-major order; \
     their number must equal the number of elements of the output shape.";
const SHAPE_DOC: &str = "The shape of the output tensor. Cannot set the shape argument and pass \
     in an input at the same time. Absent: a scalar.";
const EXTRA_SHAPE_DOC: &str = "The additional dimensions appended at the end of the shape \
     indicated by the input blob. Cannot set the extra_shape argument when there is no input \
     blob.";
const INPUT_AS_SHAPE_DOC: &str = "Take the output shape from the values of the input, a \
     non-empty 1-D INT64 CPU tensor, instead of from its dims.";

fn schema(name: &str, element: &str, values_type: &str, with_dtype: bool) -> OpSchema {
    let mut s = OpSchema::new(name)
        .num_inputs_range(0, 1)
        .num_outputs(1)
        .allow_inplace(&[(0, 0)])
        .set_doc(format!(
            "Fills the output with the {element} `values` given in the def, in the shape given \
             by `shape`, by the input's dims (+ `extra_shape`) or, with `input_as_shape`, by the \
             input's values. No gradient."
        ))
        .typed_required_arg("values", values_type, VALUES_DOC);
    if with_dtype {
        s = s.typed_arg(
            "dtype",
            "int (TensorProto.DataType) or string",
            "FLOAT",
            "The data type of the output: FLOAT, DOUBLE, BOOL, UINT16, INT16, INT32, INT64 or \
             STRING. `values` is read from `floats` for FLOAT/DOUBLE, `ints` for the integer \
             types and BOOL, `strings` for STRING.",
        );
    }
    s.typed_arg("shape", "int[]", "[]", SHAPE_DOC)
        .typed_arg("extra_shape", "int[]", "[]", EXTRA_SHAPE_DOC)
        .typed_arg("input_as_shape", "bool", "false", INPUT_AS_SHAPE_DOC)
        .input(
            0,
            "input",
            "(optional) Its dims give the output shape, or with input_as_shape its values do.",
        )
        .output(0, "output", "The filled tensor.")
        .caffe2_differences(
            "A `values` count that does not match the output shape is an error (Caffe2 read \
             past the end or left elements unset).",
        )
}

pub fn register(registry: &mut Registry) -> Result<()> {
    registry.register(
        schema(
            "GivenTensorFill",
            "FLOAT (or `dtype`)",
            "float[] (int[], string[] by dtype)",
            true,
        ),
        |base| GivenTensorFill::build(base, None),
    )?;
    let typed = [
        (
            "GivenTensorDoubleFill",
            "DOUBLE",
            "float[]",
            DataType::Double,
        ),
        (
            "GivenTensorBoolFill",
            "BOOL",
            "int[] (0 or 1)",
            DataType::Bool,
        ),
        ("GivenTensorIntFill", "INT32", "int[]", DataType::Int32),
        ("GivenTensorInt64Fill", "INT64", "int[]", DataType::Int64),
        (
            "GivenTensorStringFill",
            "STRING",
            "string[]",
            DataType::String,
        ),
    ];
    for (name, element, values_type, dtype) in typed {
        registry.register(schema(name, element, values_type, false), move |base| {
            GivenTensorFill::build(base, Some(dtype))
        })?;
    }
    Ok(())
}
