//! `TensorProto` ⇄ `Tensor`, storing each dtype exactly where Caffe2 stores it
//! (shared/spec/data-input.md §3) and reading every storage form Caffe2 writers produce.

use std::ops::Range;

use super::{DataType, Tensor, checked_numel, dims_text, element_bytes};
use crate::error::{C2rsError, ErrorKind, Result};
use crate::proto::TensorProto;

const STORAGE_RAW: i32 = 2;
const STORAGE_EXTERNAL: i32 = 3;
const STORAGE_NO_CONTENT: i32 = 4;
const FORMAT_BFLOAT16: u32 = 1;

/// Bytes of zeros one decode may add beyond what its input carries: the elements outside the
/// `segment` of each TensorProto decoded (shared by all the protos of one `TensorProtos`, one
/// batch, one blob). Caffe2 accepts any segment (the other elements stay zero); protos that
/// claim more than this of data they do not contain are refused instead of allocated (a
/// 26-byte proto must not cost 6 GB). Load assembles chunked tensors from their chunks and
/// needs no zero fill.
pub const MAX_IMPLICIT_ZERO_BYTES: usize = 16 << 20;

/// What is left of `MAX_IMPLICIT_ZERO_BYTES` for one decode.
#[derive(Debug)]
pub struct ZeroFillBudget {
    left: usize,
}

impl Default for ZeroFillBudget {
    fn default() -> Self {
        Self {
            left: MAX_IMPLICIT_ZERO_BYTES,
        }
    }
}

impl ZeroFillBudget {
    /// Takes `zeros` bytes from the budget; `what` describes them for the error.
    pub fn charge(&mut self, zeros: usize, what: impl FnOnce() -> String) -> Result<()> {
        if zeros <= self.left {
            self.left -= zeros;
            return Ok(());
        }
        let left = if self.left < MAX_IMPLICIT_ZERO_BYTES {
            format!(", {} left", self.left)
        } else {
            String::new()
        };
        Err(C2rsError::parse(format!(
            "{}: the {zeros} bytes outside it are not in the input (at most \
             {MAX_IMPLICIT_ZERO_BYTES} bytes of zeros are filled in per decode{left})",
            what()
        )))
    }
}

/// Decodes a TensorProto into a CPU tensor.
///
/// Elements outside the proto's `segment` stay zero (chunks of one tensor fill disjoint
/// segments), up to `MAX_IMPLICIT_ZERO_BYTES` of them. `device_detail` is ignored: the result
/// always lives on the CPU. Nothing is allocated before the payload has been checked against
/// dims and segment. Errors: `Parse` for content that contradicts itself (negative dims, a
/// segment outside the tensor, a payload whose length is not the segment's, an unknown dtype
/// number, more zeros outside the segment than the limit); `Unsupported` for dtypes without
/// tensor storage and for external data; `Internal` when memory runs out.
pub fn tensor_from_proto(proto: &TensorProto) -> Result<Tensor> {
    tensor_from_proto_budgeted(proto, &mut ZeroFillBudget::default())
}

/// `tensor_from_proto` taking the zeros outside the segment from `budget` (shared by the
/// protos of one decode).
pub fn tensor_from_proto_budgeted(
    proto: &TensorProto,
    budget: &mut ZeroFillBudget,
) -> Result<Tensor> {
    let layout = ProtoLayout::check(proto)?;
    layout.charge_zero_fill(budget)?;
    // `ProtoLayout::check` has refused every dims `Tensor::zeros` would (negative,
    // overflowing, too large): what is left to fail is memory.
    let mut tensor = Tensor::zeros(layout.dtype, &proto.dims)?;
    layout.payload.write_into(&mut tensor, layout.segment)?;
    Ok(tensor)
}

/// Decodes every proto of a `TensorProtos`, in order, with one zero-fill budget; errors name
/// the index of the proto at fault.
pub fn tensors_from_protos(protos: &[TensorProto]) -> Result<Vec<Tensor>> {
    let mut budget = ZeroFillBudget::default();
    let mut out = Vec::new();
    out.try_reserve_exact(protos.len()).map_err(|_| {
        C2rsError::internal(format!(
            "out of memory allocating the list of {} tensors",
            protos.len()
        ))
    })?;
    for (i, p) in protos.iter().enumerate() {
        out.push(
            tensor_from_proto_budgeted(p, &mut budget)
                .map_err(|e| e.context(format!("protos[{i}]")))?,
        );
    }
    Ok(out)
}

/// Checks `proto` as `tensor_from_proto` does, without allocating the tensor, and takes the
/// zeros its decoding would add outside its segment from `budget`.
pub fn check_tensor_proto(proto: &TensorProto, budget: &mut ZeroFillBudget) -> Result<()> {
    ProtoLayout::check(proto)?.charge_zero_fill(budget)
}

/// A TensorProto's dtype, element count, segment and payload, checked against each other.
struct ProtoLayout<'a> {
    dtype: DataType,
    numel: usize,
    segment: Range<usize>,
    payload: Payload<'a>,
}

impl<'a> ProtoLayout<'a> {
    fn check(proto: &'a TensorProto) -> Result<Self> {
        let raw_dtype = proto.data_type.unwrap_or(DataType::Float.as_i32());
        let dtype = DataType::try_from(raw_dtype).map_err(|e| match e.kind() {
            ErrorKind::InvalidArgument => C2rsError::parse(e.message()),
            _ => e,
        })?;
        if let Some(st @ (STORAGE_EXTERNAL | STORAGE_NO_CONTENT)) = proto.storage_type {
            return Err(C2rsError::unsupported(format!(
                "external tensor data is not supported (storage_type {st})"
            )));
        }
        let numel = checked_numel(&proto.dims).map_err(|e| C2rsError::parse(e.message()))?;
        if element_bytes(dtype, numel).is_none_or(|n| n > isize::MAX as usize) {
            return Err(C2rsError::parse(format!(
                "a {dtype} tensor of dims {} is too large to allocate",
                dims_text(&proto.dims)
            )));
        }
        let segment = segment_of(proto, numel)?;
        // The payload must hold exactly the segment's elements, so everything inside the
        // segment is backed by input bytes before anything is allocated.
        let payload = Payload::locate(proto, dtype, segment.len())?;
        Ok(Self {
            dtype,
            numel,
            segment,
            payload,
        })
    }

    /// Takes the bytes of the elements outside the segment (zeros the input does not
    /// contain) from `budget`.
    fn charge_zero_fill(&self, budget: &mut ZeroFillBudget) -> Result<()> {
        // Cannot overflow: the whole tensor's bytes were checked in `check`.
        let zeros =
            element_bytes(self.dtype, self.numel - self.segment.len()).unwrap_or(usize::MAX);
        let Range { start, end } = self.segment;
        budget.charge(zeros, || {
            format!(
                "a {} TensorProto of {} elements carries only segment [{start}, {end})",
                self.dtype, self.numel
            )
        })
    }
}

/// The proto's segment (the whole tensor when absent), checked to lie inside the tensor.
pub fn segment_of(proto: &TensorProto, numel: usize) -> Result<Range<usize>> {
    let Some(seg) = &proto.segment else {
        return Ok(0..numel);
    };
    let (begin, end) = (seg.begin, seg.end);
    let ok = 0 <= begin && begin <= end && usize::try_from(end).is_ok_and(|e| e <= numel);
    if !ok {
        return Err(C2rsError::parse(format!(
            "segment [{begin}, {end}) lies outside a tensor of {numel} elements"
        )));
    }
    Ok(begin as usize..end as usize)
}

/// Where a proto keeps the elements of its segment.
enum Payload<'a> {
    Floats(&'a [f32]),
    Int32s(&'a [i32]),
    Int64s(&'a [i64]),
    Doubles(&'a [f64]),
    Strings(&'a [Vec<u8>]),
    /// Little-endian element bytes (`byte_data` for small types, or `raw_data`).
    LeBytes(&'a [u8]),
    /// bfloat16 halves of FLOAT elements (`raw_data` with `data_format` = FMT_BFLOAT16).
    Bfloat16(&'a [u8]),
}

impl<'a> Payload<'a> {
    /// Picks the field Caffe2 writers use for `dtype` and checks it holds exactly `count` items.
    fn locate(proto: &'a TensorProto, dtype: DataType, count: usize) -> Result<Self> {
        let item = dtype.item_size().unwrap_or(0);
        let byte_data = proto.byte_data.as_deref();
        let raw_data = proto.raw_data.as_deref();
        let payload = if proto.data_format.unwrap_or(0) == FORMAT_BFLOAT16 {
            if dtype != DataType::Float {
                return Err(C2rsError::parse(format!(
                    "data_format FMT_BFLOAT16 is only defined for FLOAT tensors, not {dtype}"
                )));
            }
            Payload::Bfloat16(raw_data.unwrap_or(&[]))
        } else if proto.storage_type == Some(STORAGE_RAW)
            || (raw_data.is_some_and(|r| !r.is_empty()) && Self::typed_field_is_empty(proto, dtype))
        {
            if dtype == DataType::String {
                return Err(C2rsError::parse("raw_data cannot hold STRING elements"));
            }
            Payload::LeBytes(raw_data.unwrap_or(&[]))
        } else {
            match dtype {
                DataType::Float => Payload::Floats(&proto.float_data),
                DataType::Int32 => Payload::Int32s(&proto.int32_data),
                DataType::Int64 => Payload::Int64s(&proto.int64_data),
                DataType::Double => Payload::Doubles(&proto.double_data),
                DataType::String => Payload::Strings(&proto.string_data),
                DataType::Byte => Payload::LeBytes(byte_data.unwrap_or(&[])),
                DataType::Bool
                | DataType::Uint8
                | DataType::Int8
                | DataType::Uint16
                | DataType::Int16
                | DataType::Float16 => match byte_data {
                    // Newer writers put small ints and fp16 in byte_data; older ones in int32_data.
                    Some(b) => Payload::LeBytes(b),
                    None => Payload::Int32s(&proto.int32_data),
                },
            }
        };
        let found = match payload {
            Payload::Floats(v) => (v.len(), count),
            Payload::Int32s(v) => (v.len(), count),
            Payload::Int64s(v) => (v.len(), count),
            Payload::Doubles(v) => (v.len(), count),
            Payload::Strings(v) => (v.len(), count),
            Payload::LeBytes(b) => (b.len(), count.saturating_mul(item)),
            Payload::Bfloat16(b) => (b.len(), count.saturating_mul(2)),
        };
        if found.0 != found.1 {
            return Err(C2rsError::parse(format!(
                "Incorrect proto field size: a {dtype} segment of {count} elements needs {} items in {}, found {}",
                found.1,
                payload.field_name(dtype),
                found.0
            )));
        }
        Ok(payload)
    }

    fn typed_field_is_empty(proto: &TensorProto, dtype: DataType) -> bool {
        match dtype {
            DataType::Float => proto.float_data.is_empty(),
            DataType::Int32 => proto.int32_data.is_empty(),
            DataType::Int64 => proto.int64_data.is_empty(),
            DataType::Double => proto.double_data.is_empty(),
            DataType::String => proto.string_data.is_empty(),
            _ => {
                proto.int32_data.is_empty() && proto.byte_data.as_ref().is_none_or(|b| b.is_empty())
            }
        }
    }

    fn field_name(&self, dtype: DataType) -> &'static str {
        match self {
            Payload::Floats(_) => "float_data",
            Payload::Int32s(_) => "int32_data",
            Payload::Int64s(_) => "int64_data",
            Payload::Doubles(_) => "double_data",
            Payload::Strings(_) => "string_data",
            Payload::LeBytes(_) if matches!(dtype, DataType::Byte) => "byte_data",
            Payload::LeBytes(_) => "byte_data/raw_data (bytes)",
            Payload::Bfloat16(_) => "raw_data (bfloat16 bytes)",
        }
    }

    /// Copies the payload into `tensor[segment]`, converting to the dtype's storage.
    fn write_into(self, tensor: &mut Tensor, segment: Range<usize>) -> Result<()> {
        let dtype = tensor.dtype();
        if let Payload::Strings(values) = self {
            tensor.strings_mut()?[segment].clone_from_slice(values);
            return Ok(());
        }
        let item = dtype.item_size().unwrap_or(0);
        let out = &mut tensor.bytes_mut()?[segment.start * item..segment.end * item];
        match self {
            Payload::Floats(v) => write_le(out, v, |x| x.to_le_bytes()),
            Payload::Int64s(v) => write_le(out, v, |x| x.to_le_bytes()),
            Payload::Doubles(v) => write_le(out, v, |x| x.to_le_bytes()),
            // int32_data holds INT32 values, and the other small types cast to i32; C++
            // narrowed them with static_cast, and so do we (bool: any nonzero is true).
            Payload::Int32s(v) => match dtype {
                DataType::Int32 => write_le(out, v, |x| x.to_le_bytes()),
                DataType::Bool => write_le(out, v, |x| [u8::from(*x != 0)]),
                DataType::Uint8 | DataType::Int8 | DataType::Byte => {
                    write_le(out, v, |x| [*x as u8])
                }
                DataType::Uint16 | DataType::Int16 | DataType::Float16 => {
                    write_le(out, v, |x| (*x as u16).to_le_bytes())
                }
                _ => {
                    return Err(C2rsError::internal(format!(
                        "int32_data chosen for {dtype}"
                    )));
                }
            },
            Payload::LeBytes(b) if dtype == DataType::Bool => {
                write_le(out, b, |x| [u8::from(*x != 0)])
            }
            Payload::LeBytes(b) => out.copy_from_slice(b),
            Payload::Bfloat16(b) => {
                for (dst, src) in out.chunks_exact_mut(4).zip(b.chunks_exact(2)) {
                    dst.copy_from_slice(&[0, 0, src[0], src[1]]);
                }
            }
            // Copied element-wise above.
            Payload::Strings(_) => {}
        }
        Ok(())
    }
}

/// Writes each value's little-endian bytes into consecutive slots of `out`.
fn write_le<T, const N: usize>(out: &mut [u8], values: &[T], to_bytes: impl Fn(&T) -> [u8; N]) {
    for (dst, v) in out.chunks_exact_mut(N).zip(values) {
        dst.copy_from_slice(&to_bytes(v));
    }
}

/// Encodes a whole tensor as Caffe2 does (no segment, no name, no device_detail).
pub fn tensor_to_proto(tensor: &Tensor) -> Result<TensorProto> {
    tensor_range_to_proto(tensor, 0..tensor.numel(), false)
}

/// Encodes elements `range` of `tensor` with the full dims; `with_segment` records the range
/// (Caffe2's chunked BlobProto form).
pub fn tensor_range_to_proto(
    tensor: &Tensor,
    range: Range<usize>,
    with_segment: bool,
) -> Result<TensorProto> {
    if range.start > range.end || range.end > tensor.numel() {
        return Err(C2rsError::invalid_argument(format!(
            "range {range:?} lies outside a tensor of {} elements",
            tensor.numel()
        )));
    }
    let dtype = tensor.dtype();
    let mut proto = TensorProto {
        dims: tensor.dims().to_vec(),
        data_type: Some(dtype.as_i32()),
        ..Default::default()
    };
    if with_segment {
        proto.segment = Some(crate::proto::tensor_proto::Segment {
            begin: range.start as i64,
            end: range.end as i64,
        });
    }
    if dtype == DataType::String {
        proto.string_data = tensor.strings()?[range].to_vec();
        return Ok(proto);
    }
    let item = dtype.item_size().unwrap_or(0);
    let bytes = &tensor.bytes()?[range.start * item..range.end * item];
    match dtype {
        DataType::Float => {
            proto.float_data = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        DataType::Int32 => {
            proto.int32_data = bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        DataType::Int64 => {
            proto.int64_data = bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        }
        DataType::Double => {
            proto.double_data = bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        }
        DataType::Byte => proto.byte_data = Some(bytes.to_vec()),
        DataType::Bool | DataType::Uint8 => {
            proto.int32_data = bytes.iter().map(|&b| i32::from(b)).collect()
        }
        DataType::Int8 => proto.int32_data = bytes.iter().map(|&b| i32::from(b as i8)).collect(),
        DataType::Uint16 | DataType::Float16 => {
            proto.int32_data = bytes
                .chunks_exact(2)
                .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect()
        }
        DataType::Int16 => {
            proto.int32_data = bytes
                .chunks_exact(2)
                .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
                .collect()
        }
        DataType::String => {}
    }
    Ok(proto)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tensor_proto::Segment;

    /// The zero-fill error says what is left of the budget once part of it is used, and
    /// only then.
    #[test]
    fn zero_fill_errors_say_what_is_left_once_the_budget_is_used() {
        let mut fresh = ZeroFillBudget::default();
        let e = fresh
            .charge(MAX_IMPLICIT_ZERO_BYTES + 1, || "t".into())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert_eq!(
            e.message(),
            format!(
                "t: the {} bytes outside it are not in the input (at most \
                 {MAX_IMPLICIT_ZERO_BYTES} bytes of zeros are filled in per decode)",
                MAX_IMPLICIT_ZERO_BYTES + 1
            )
        );
        let mut used = ZeroFillBudget::default();
        used.charge(10, || "a".into()).unwrap();
        let e = used
            .charge(MAX_IMPLICIT_ZERO_BYTES, || "b".into())
            .unwrap_err();
        assert!(
            e.message().ends_with(&format!(
                "per decode, {} left)",
                MAX_IMPLICIT_ZERO_BYTES - 10
            )),
            "{}",
            e.message()
        );
        // What is left can still be taken to the last byte.
        used.charge(MAX_IMPLICIT_ZERO_BYTES - 10, || "c".into())
            .unwrap();
        assert!(used.charge(1, || "d".into()).is_err());
    }

    /// Exactly isize::MAX bytes is not "too large" by itself: such a proto fails on its
    /// missing payload instead; one byte more is too large.
    #[test]
    fn the_size_limit_is_isize_max_bytes_inclusive() {
        let at_limit = proto(DataType::Uint8, &[isize::MAX as i64]);
        let e = tensor_from_proto(&at_limit).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(!e.message().contains("too large"), "{}", e.message());
        let over = proto(DataType::Int16, &[isize::MAX as i64 / 2 + 1]);
        let e = tensor_from_proto(&over).unwrap_err();
        assert!(
            e.message().contains("too large to allocate"),
            "{}",
            e.message()
        );
    }

    fn proto(dtype: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(dtype.as_i32()),
            ..Default::default()
        }
    }

    // Ported from caffe2/core/blob_test.cc TensorSerialization_<T>: a 2x3 tensor of 0..5 is
    // stored in the dtype's field with 6 values and round-trips.
    #[test]
    fn each_dtype_is_stored_in_caffe2s_field_and_round_trips() {
        type Field = fn(&TensorProto) -> Vec<f64>;
        let cases: [(DataType, Field); 10] = [
            (DataType::Bool, |p| {
                p.int32_data.iter().map(|&v| f64::from(v)).collect()
            }),
            (DataType::Double, |p| p.double_data.clone()),
            (DataType::Float, |p| {
                p.float_data.iter().map(|&v| f64::from(v)).collect()
            }),
            (DataType::Int32, |p| {
                p.int32_data.iter().map(|&v| f64::from(v)).collect()
            }),
            (DataType::Int8, |p| {
                p.int32_data.iter().map(|&v| f64::from(v)).collect()
            }),
            (DataType::Int16, |p| {
                p.int32_data.iter().map(|&v| f64::from(v)).collect()
            }),
            (DataType::Uint8, |p| {
                p.int32_data.iter().map(|&v| f64::from(v)).collect()
            }),
            (DataType::Uint16, |p| {
                p.int32_data.iter().map(|&v| f64::from(v)).collect()
            }),
            (DataType::Int64, |p| {
                p.int64_data.iter().map(|&v| v as f64).collect()
            }),
            (DataType::Byte, |p| {
                p.byte_data
                    .clone()
                    .unwrap_or_default()
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect()
            }),
        ];
        for (dtype, field) in cases {
            let mut t = Tensor::zeros(dtype, &[2, 3]).unwrap();
            let item = dtype.item_size().unwrap();
            let modulus = if dtype == DataType::Bool { 2 } else { 6 };
            for (i, chunk) in t.bytes_mut().unwrap().chunks_exact_mut(item).enumerate() {
                let v = (i % modulus) as u64;
                match dtype {
                    DataType::Float => chunk.copy_from_slice(&(v as f32).to_le_bytes()),
                    DataType::Double => chunk.copy_from_slice(&(v as f64).to_le_bytes()),
                    _ => chunk.copy_from_slice(&v.to_le_bytes()[..item]),
                }
            }
            let p = tensor_to_proto(&t).unwrap();
            assert_eq!(p.data_type, Some(dtype.as_i32()));
            let expected: Vec<f64> = (0..6).map(|i| (i % modulus) as f64).collect();
            assert_eq!(field(&p), expected, "{dtype}");
            let back = tensor_from_proto(&p).unwrap();
            assert_eq!(back, t, "{dtype}");
        }
    }

    // Ported from blob_test.cc EmptyTensorTest_<T>: shape (0, 3) has an empty payload field.
    #[test]
    fn empty_tensor_round_trips_with_empty_payload() {
        for dtype in DataType::ALL {
            let t = Tensor::zeros(dtype, &[0, 3]).unwrap();
            let p = tensor_to_proto(&t).unwrap();
            assert!(
                p.float_data.is_empty()
                    && p.int32_data.is_empty()
                    && p.string_data.is_empty()
                    && p.int64_data.is_empty()
            );
            let back = tensor_from_proto(&p).unwrap();
            assert_eq!(back.dims(), &[0, 3]);
            assert_eq!(back.dtype(), dtype);
        }
    }

    #[test]
    fn float16_reads_int32_bits_and_byte_data() {
        let mut p = proto(DataType::Float16, &[2]);
        p.int32_data = vec![0x3c00, 0xc000];
        let t = tensor_from_proto(&p).unwrap();
        assert_eq!(t.typed::<u16>().unwrap(), &[0x3c00, 0xc000]);
        let mut q = proto(DataType::Float16, &[2]);
        q.byte_data = Some(vec![0x00, 0x3c, 0x00, 0xc0]);
        assert_eq!(tensor_from_proto(&q).unwrap(), t);
        // Written as Caffe2 does by default: one u16 bit pattern per int32_data entry.
        assert_eq!(
            tensor_to_proto(&t).unwrap().int32_data,
            vec![0x3c00, 0xc000]
        );
    }

    #[test]
    fn raw_data_and_bfloat16_are_read() {
        let mut p = proto(DataType::Int32, &[2]);
        p.storage_type = Some(STORAGE_RAW);
        p.raw_data = Some([5i32.to_le_bytes(), (-1i32).to_le_bytes()].concat());
        assert_eq!(
            tensor_from_proto(&p).unwrap().typed::<i32>().unwrap(),
            &[5, -1]
        );
        let mut b = proto(DataType::Float, &[2]);
        b.data_format = Some(FORMAT_BFLOAT16);
        b.raw_data = Some(vec![0x80, 0x3f, 0x00, 0xc0]); // 1.0, -2.0 in bfloat16
        assert_eq!(
            tensor_from_proto(&b).unwrap().typed::<f32>().unwrap(),
            &[1.0, -2.0]
        );
    }

    #[test]
    fn segment_fills_only_its_range() {
        let mut p = proto(DataType::Float, &[5]);
        p.segment = Some(Segment { begin: 1, end: 3 });
        p.float_data = vec![7.0, 8.0];
        assert_eq!(
            tensor_from_proto(&p).unwrap().typed::<f32>().unwrap(),
            &[0.0, 7.0, 8.0, 0.0, 0.0]
        );
        p.segment = Some(Segment { begin: 4, end: 6 });
        assert_eq!(tensor_from_proto(&p).unwrap_err().kind(), ErrorKind::Parse);
        let chunk = tensor_range_to_proto(
            &Tensor::from_slice(DataType::Float, &[3], &[1f32, 2., 3.]).unwrap(),
            1..3,
            true,
        )
        .unwrap();
        assert_eq!(chunk.segment, Some(Segment { begin: 1, end: 3 }));
        assert_eq!(chunk.float_data, vec![2.0, 3.0]);
        assert_eq!(chunk.dims, vec![3]);
    }

    #[test]
    fn payload_that_disagrees_with_dims_is_a_parse_error() {
        let mut p = proto(DataType::Float, &[2, 3]);
        p.float_data = vec![1.0; 5];
        let e = tensor_from_proto(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(
            e.message().starts_with("Incorrect proto field size"),
            "{}",
            e.message()
        );
        p.float_data = vec![1.0; 7];
        assert_eq!(tensor_from_proto(&p).unwrap_err().kind(), ErrorKind::Parse);
        // The message names the field that was read, so a writer's mistake can be found.
        assert_eq!(
            tensor_from_proto(&p).unwrap_err().message(),
            "Incorrect proto field size: a FLOAT segment of 6 elements needs 6 items in \
             float_data, found 7"
        );
        let mut bytes = proto(DataType::Byte, &[2]);
        bytes.byte_data = Some(vec![1]);
        assert!(
            tensor_from_proto(&bytes)
                .unwrap_err()
                .message()
                .ends_with("needs 2 items in byte_data, found 1")
        );
        let mut small = proto(DataType::Int16, &[2]);
        small.byte_data = Some(vec![1]);
        assert!(
            tensor_from_proto(&small)
                .unwrap_err()
                .message()
                .ends_with("needs 4 items in byte_data/raw_data (bytes), found 1")
        );
        let mut huge = proto(DataType::Double, &[1 << 40, 1 << 20]);
        huge.double_data = vec![];
        assert_eq!(
            tensor_from_proto(&huge).unwrap_err().kind(),
            ErrorKind::Parse
        );
    }

    #[test]
    fn missing_dtype_means_float_and_unknown_dtype_is_kept_then_rejected() {
        let p = TensorProto {
            dims: vec![1],
            float_data: vec![3.5],
            ..Default::default()
        };
        assert_eq!(tensor_from_proto(&p).unwrap().dtype(), DataType::Float);
        let mut bad = proto(DataType::Float, &[1]);
        bad.data_type = Some(42);
        let e = tensor_from_proto(&bad).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Parse, "Unknown data type: 42")
        );
        bad.data_type = Some(0);
        assert_eq!(
            tensor_from_proto(&bad).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        let mut ext = proto(DataType::Float, &[1]);
        ext.storage_type = Some(STORAGE_EXTERNAL);
        assert!(
            tensor_from_proto(&ext)
                .unwrap_err()
                .message()
                .contains("external tensor data is not supported")
        );
    }

    // Caffe2 accepts any segment inside the tensor, an empty one included (the elements
    // stay zero); so do we, within the zero-fill allowance.
    #[test]
    fn empty_segment_of_a_small_tensor_gives_zeros() {
        let mut p = proto(DataType::Int32, &[2, 2]);
        p.segment = Some(Segment { begin: 1, end: 1 });
        assert_eq!(
            tensor_from_proto(&p).unwrap().typed::<i32>().unwrap(),
            &[0, 0, 0, 0]
        );
        let mut s = proto(DataType::String, &[3]);
        s.segment = Some(Segment { begin: 0, end: 0 });
        assert_eq!(tensor_from_proto(&s).unwrap().strings().unwrap().len(), 3);
    }

    #[test]
    fn zeros_outside_segments_are_limited_per_decode() {
        let chunk = |numel: i64, dtype: DataType| {
            let mut p = proto(dtype, &[numel]);
            p.segment = Some(Segment { begin: 0, end: 0 });
            p
        };
        // Exactly the allowance is fine; one element more is a parse error naming the bytes.
        let floats = (MAX_IMPLICIT_ZERO_BYTES / 4) as i64;
        assert_eq!(
            tensor_from_proto(&chunk(floats, DataType::Float))
                .unwrap()
                .nbytes(),
            MAX_IMPLICIT_ZERO_BYTES
        );
        let e = tensor_from_proto(&chunk(floats + 1, DataType::Float)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(
            e.message().contains(&format!(
                "the {} bytes outside it are not in the input",
                MAX_IMPLICIT_ZERO_BYTES + 4
            )),
            "{}",
            e.message()
        );
        // STRING elements count their headers.
        let strings = (MAX_IMPLICIT_ZERO_BYTES / crate::tensor::STRING_ELEMENT_BYTES) as i64 + 1;
        assert_eq!(
            tensor_from_proto(&chunk(strings, DataType::String))
                .unwrap_err()
                .kind(),
            ErrorKind::Parse
        );
        // The protos of one decode share the allowance: two halves fit, a third does not.
        let half = chunk(floats / 2, DataType::Float);
        let decoded = tensors_from_protos(&[half.clone(), half.clone()]).unwrap();
        assert_eq!(decoded.len(), 2);
        let e = tensors_from_protos(&[half.clone(), half.clone(), half]).unwrap_err();
        assert!(e.message().starts_with("protos[2]: "), "{}", e.message());
        // Checking without decoding charges the same budget.
        let mut budget = ZeroFillBudget::default();
        check_tensor_proto(&chunk(floats, DataType::Float), &mut budget).unwrap();
        assert!(check_tensor_proto(&chunk(1, DataType::Float), &mut budget).is_err());
    }

    #[test]
    fn sizes_beyond_the_address_space_are_parse_errors_before_allocating() {
        // 2^61 DOUBLE elements need 2^64 bytes.
        let mut p = proto(DataType::Double, &[1 << 61]);
        p.segment = Some(Segment { begin: 0, end: 0 });
        let e = tensor_from_proto(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(e.message().contains("too large"), "{}", e.message());
        // 2^60 DOUBLE elements: 2^63 bytes fit in usize but exceed isize::MAX, which no
        // allocation may have.
        p.dims = vec![1 << 60];
        let e = tensor_from_proto(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(
            e.message().contains("too large to allocate"),
            "{}",
            e.message()
        );
    }

    /// BOOL elements from every form a writer may use; any non-zero value or byte is true.
    #[test]
    fn bool_is_read_from_every_storage_form_and_nonzero_is_true() {
        let expected = [1u8, 0, 1, 1];
        let mut int32 = proto(DataType::Bool, &[4]);
        int32.int32_data = vec![1, 0, 2, -1];
        let mut bytes = proto(DataType::Bool, &[4]);
        bytes.byte_data = Some(vec![1, 0, 2, 255]);
        let mut raw = proto(DataType::Bool, &[4]);
        raw.storage_type = Some(STORAGE_RAW);
        raw.raw_data = Some(vec![7, 0, 1, 128]);
        let mut raw_untyped = proto(DataType::Bool, &[4]);
        raw_untyped.raw_data = Some(vec![1, 0, 3, 64]);
        for (form, p) in [
            ("int32_data", int32),
            ("byte_data", bytes),
            ("raw_data (RAW)", raw),
            ("raw_data (storage_type unset)", raw_untyped),
        ] {
            let t = tensor_from_proto(&p).unwrap();
            assert_eq!(t.dtype(), DataType::Bool, "{form}");
            assert_eq!(t.bytes().unwrap(), &expected, "{form}");
        }
    }

    /// The little-endian bytes of `values`' elements (`raw_data`'s layout).
    fn le<const N: usize, T: Copy>(values: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|&v| f(v)).collect()
    }

    /// Writers that leave `storage_type` unset but put the payload in `raw_data` (the typed
    /// field empty) are read as RAW, for every dtype with fixed-size elements.
    #[test]
    fn raw_data_is_read_when_storage_type_is_unset_and_the_typed_field_is_empty() {
        let cases: [(DataType, Vec<u8>); 10] = [
            (DataType::Float, le(&[1.5f32, -2.0], f32::to_le_bytes)),
            (DataType::Int32, le(&[7i32, -9], i32::to_le_bytes)),
            (DataType::Int64, le(&[1i64 << 40, -3], i64::to_le_bytes)),
            (DataType::Double, le(&[0.25f64, -8.0], f64::to_le_bytes)),
            (DataType::Uint8, vec![200, 3]),
            (DataType::Int8, vec![0x80, 5]),
            (DataType::Int16, le(&[-300i16, 12], i16::to_le_bytes)),
            (DataType::Uint16, le(&[60000u16, 1], u16::to_le_bytes)),
            (
                DataType::Float16,
                le(&[0x3c00u16, 0xc000], u16::to_le_bytes),
            ),
            (DataType::Byte, vec![9, 10]),
        ];
        for (dtype, bytes) in cases {
            let mut p = proto(dtype, &[2]);
            p.raw_data = Some(bytes.clone());
            let t = tensor_from_proto(&p).unwrap_or_else(|e| panic!("{dtype}: {}", e.message()));
            assert_eq!(t.bytes().unwrap(), &bytes[..], "{dtype}");
            // For the dtypes with a field of their own, only that field counts: stray
            // byte_data does not stop raw_data from being read.
            if matches!(
                dtype,
                DataType::Float | DataType::Int32 | DataType::Int64 | DataType::Double
            ) {
                p.byte_data = Some(vec![1, 2, 3]);
                let t = tensor_from_proto(&p)
                    .unwrap_or_else(|e| panic!("{dtype} with byte_data: {}", e.message()));
                assert_eq!(t.bytes().unwrap(), &bytes[..], "{dtype} with byte_data");
            }
        }
        // STRING elements have no fixed size: raw_data cannot hold them.
        let mut s = proto(DataType::String, &[1]);
        s.raw_data = Some(b"abc".to_vec());
        let e = tensor_from_proto(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(
            e.message().contains("raw_data cannot hold STRING"),
            "{}",
            e.message()
        );
    }

    /// When the dtype's own field holds the payload, a stray `raw_data` (storage_type unset) is
    /// ignored; with storage_type RAW, `raw_data` is the payload whatever else is set.
    #[test]
    fn the_typed_field_wins_over_raw_data_unless_storage_type_is_raw() {
        let stray = Some(vec![0xee; 64]);
        let mut cases = Vec::new();
        let mut f = proto(DataType::Float, &[2]);
        f.float_data = vec![1.0, 2.0];
        cases.push((f, le(&[1.0f32, 2.0], f32::to_le_bytes)));
        let mut i = proto(DataType::Int32, &[2]);
        i.int32_data = vec![3, -4];
        cases.push((i, le(&[3i32, -4], i32::to_le_bytes)));
        let mut l = proto(DataType::Int64, &[2]);
        l.int64_data = vec![5, -6];
        cases.push((l, le(&[5i64, -6], i64::to_le_bytes)));
        let mut d = proto(DataType::Double, &[2]);
        d.double_data = vec![0.5, -0.5];
        cases.push((d, le(&[0.5f64, -0.5], f64::to_le_bytes)));
        let mut b = proto(DataType::Uint8, &[2]);
        b.int32_data = vec![250, 1];
        cases.push((b, vec![250, 1]));
        let mut h = proto(DataType::Int16, &[2]);
        h.byte_data = Some(le(&[-2i16, 2], i16::to_le_bytes));
        cases.push((h, le(&[-2i16, 2], i16::to_le_bytes)));
        for (mut p, expected) in cases {
            p.raw_data = stray.clone();
            let t = tensor_from_proto(&p).unwrap();
            assert_eq!(t.bytes().unwrap(), &expected[..], "{}", t.dtype());
        }
        let mut s = proto(DataType::String, &[2]);
        s.string_data = vec![b"a".to_vec(), b"bc".to_vec()];
        s.raw_data = stray.clone();
        assert_eq!(
            tensor_from_proto(&s).unwrap().strings().unwrap(),
            &[b"a".to_vec(), b"bc".to_vec()]
        );
        // storage_type RAW: raw_data is read even though float_data is also set.
        let mut raw = proto(DataType::Float, &[1]);
        raw.storage_type = Some(STORAGE_RAW);
        raw.float_data = vec![9.0];
        raw.raw_data = Some(3.0f32.to_le_bytes().to_vec());
        assert_eq!(
            tensor_from_proto(&raw).unwrap().typed::<f32>().unwrap(),
            &[3.0]
        );
    }

    /// Only the elements outside a proto's segment count against the zero-fill allowance: full
    /// tensors of any size (here 24 MB in one decode) are not limited by it.
    #[test]
    fn payload_carried_by_the_proto_does_not_count_as_zero_fill() {
        let n = MAX_IMPLICIT_ZERO_BYTES / 4 * 3 / 4; // 12 MB of floats per tensor
        let mut p = proto(DataType::Float, &[n as i64]);
        p.float_data = vec![0.5; n];
        let decoded = tensors_from_protos(&[p.clone(), p.clone()]).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[1].nbytes(), n * 4);
        // A segment covering half the tensor charges only the other half.
        let mut half = proto(DataType::Float, &[n as i64]);
        half.segment = Some(Segment {
            begin: 0,
            end: (n / 2) as i64,
        });
        half.float_data = vec![1.0; n / 2];
        let mut budget = ZeroFillBudget::default();
        check_tensor_proto(&half, &mut budget).unwrap();
        let rest = MAX_IMPLICIT_ZERO_BYTES - (n - n / 2) * 4;
        let mut exact = proto(DataType::Byte, &[rest as i64]);
        exact.segment = Some(Segment { begin: 0, end: 0 });
        check_tensor_proto(&exact, &mut budget).unwrap();
        let mut one_more = proto(DataType::Byte, &[1]);
        one_more.segment = Some(Segment { begin: 0, end: 0 });
        assert!(check_tensor_proto(&one_more, &mut budget).is_err());
    }

    /// A range outside the tensor is refused, naming the range, instead of slicing out of
    /// bounds; an empty range at the end is a valid (empty) chunk.
    #[test]
    // `2..1` is the reversed range a caller may pass; it must be refused, not iterated.
    #[allow(clippy::reversed_empty_ranges)]
    fn encoding_a_range_outside_the_tensor_is_an_invalid_argument() {
        let t = Tensor::from_slice(DataType::Int32, &[3], &[1i32, 2, 3]).unwrap();
        for range in [0..4, 2..1, 4..4] {
            let e = tensor_range_to_proto(&t, range.clone(), true).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{range:?}");
            assert_eq!(
                e.message(),
                format!("range {range:?} lies outside a tensor of 3 elements")
            );
        }
        let end = tensor_range_to_proto(&t, 3..3, true).unwrap();
        assert!(end.int32_data.is_empty());
        assert_eq!(end.segment, Some(Segment { begin: 3, end: 3 }));
        let s = Tensor::from_strings(&[2], vec![b"x".to_vec(), b"y".to_vec()]).unwrap();
        assert_eq!(
            tensor_range_to_proto(&s, 1..3, false).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn negative_int8_uses_sign_extension() {
        let t = Tensor::from_slice(DataType::Int8, &[2], &[-128i8, 127]).unwrap();
        assert_eq!(tensor_to_proto(&t).unwrap().int32_data, vec![-128, 127]);
    }
}
