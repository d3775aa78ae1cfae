//! A borrowing scanner for serialized `TensorProtos`: finds each TensorProto's dims, dtype and
//! payload without allocating per element, so batch assembly can copy packed payloads straight
//! into the batch buffer (one memcpy per tensor for float/double/byte data).
//!
//! The scanner understands the common storage forms (typed fields, packed or not, byte_data,
//! string_data). Anything else (segments, raw_data, storage_type, data_format, unknown dtype
//! numbers) marks the tensor `needs_full_decode`, and callers fall back to prost + the regular
//! `tensor_from_proto`, so the fast path never decides a case the full decoder would decide
//! differently.

use smallvec::{SmallVec, smallvec};

use crate::error::{C2rsError, Result};

/// Payload parts: almost always one (a packed field), so kept inline (no allocation per record).
pub(crate) type Parts<T> = SmallVec<[T; 1]>;

/// A protobuf field value in wire form.
pub(crate) enum Wire<'a> {
    Varint(u64),
    Fixed64(&'a [u8]),
    Bytes(&'a [u8]),
    Fixed32(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(C2rsError::parse("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(C2rsError::parse("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| C2rsError::parse("truncated field"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>)> {
        let key = self.varint()?;
        let number =
            u32::try_from(key >> 3).map_err(|_| C2rsError::parse("field number out of range"))?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(self.take(8)?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| C2rsError::parse("length out of range"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Fixed32(self.take(4)?),
            other => return Err(C2rsError::parse(format!("unsupported wire type {other}"))),
        };
        Ok((number, wire))
    }
}

/// Where one TensorProto keeps its elements.
#[derive(Debug, Default)]
pub(crate) enum Payload<'a> {
    #[default]
    None,
    /// Packed little-endian fixed-width elements (float_data, double_data) or byte_data.
    Raw(Parts<&'a [u8]>),
    /// Unpacked fixed-width values collected one by one.
    Fixed(Parts<&'a [u8]>),
    /// Varint-encoded integers (int32_data, int64_data), packed runs and single values.
    Varints(Parts<Wire<'a>>),
    Strings(Parts<&'a [u8]>),
}

impl std::fmt::Debug for Wire<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wire")
    }
}

/// One TensorProto as found in the bytes.
#[derive(Debug, Default)]
pub(crate) struct TensorView<'a> {
    /// Inline up to 4 dims (no allocation per record for common shapes).
    pub dims: SmallVec<[i64; 4]>,
    pub data_type: i32,
    /// The field number the payload came from (3 float, 4 int32, 5 byte, 6 string, 9 double, 10 int64).
    pub field: u32,
    pub payload: Payload<'a>,
    /// Set when the proto uses a form only the full decoder handles.
    pub needs_full_decode: bool,
    /// The whole serialized TensorProto, for the fallback.
    pub bytes: &'a [u8],
}

/// The views of one record's TensorProtos (inline up to 2: no allocation per record).
pub(crate) type Views<'a> = SmallVec<[TensorView<'a>; 2]>;

/// Scans a serialized TensorProtos into one view per TensorProto.
pub(crate) fn scan_tensor_protos(bytes: &[u8]) -> Result<Views<'_>> {
    let mut r = Reader::new(bytes);
    let mut out = Views::new();
    while !r.done() {
        match r.field()? {
            (1, Wire::Bytes(b)) => out.push(scan_tensor(b)?),
            (1, _) => return Err(C2rsError::parse("field 1 (protos) is not length-delimited")),
            _ => {}
        }
    }
    Ok(out)
}

fn scan_tensor(bytes: &[u8]) -> Result<TensorView<'_>> {
    let mut v = TensorView {
        data_type: 1,
        bytes,
        ..Default::default()
    };
    let mut r = Reader::new(bytes);
    let add = |v: &mut TensorView<'_>, field: u32| -> bool {
        if v.field != 0 && v.field != field {
            v.needs_full_decode = true;
            return false;
        }
        v.field = field;
        true
    };
    while !r.done() {
        let (number, wire) = r.field()?;
        match (number, wire) {
            (1, Wire::Varint(d)) => v.dims.push(d as i64),
            (1, Wire::Bytes(b)) => {
                let mut p = Reader::new(b);
                while !p.done() {
                    v.dims.push(p.varint()? as i64);
                }
            }
            (2, Wire::Varint(t)) => v.data_type = t as i32,
            (3 | 9, Wire::Bytes(b)) | (5, Wire::Bytes(b)) => {
                if add(&mut v, number) {
                    match &mut v.payload {
                        Payload::None => v.payload = Payload::Raw(smallvec![b]),
                        Payload::Raw(parts) => parts.push(b),
                        _ => v.needs_full_decode = true,
                    }
                }
            }
            (3, w @ Wire::Fixed32(_)) | (9, w @ Wire::Fixed64(_)) => {
                if add(&mut v, number) {
                    let (Wire::Fixed32(b) | Wire::Fixed64(b)) = w else {
                        continue;
                    };
                    match &mut v.payload {
                        Payload::None => v.payload = Payload::Fixed(smallvec![b]),
                        Payload::Fixed(parts) => parts.push(b),
                        _ => v.needs_full_decode = true,
                    }
                }
            }
            (4 | 10, w @ (Wire::Varint(_) | Wire::Bytes(_))) => {
                if add(&mut v, number) {
                    match &mut v.payload {
                        Payload::None => v.payload = Payload::Varints(smallvec![w]),
                        Payload::Varints(parts) => parts.push(w),
                        _ => v.needs_full_decode = true,
                    }
                }
            }
            (6, Wire::Bytes(b)) => {
                if add(&mut v, 6) {
                    match &mut v.payload {
                        Payload::None => v.payload = Payload::Strings(smallvec![b]),
                        Payload::Strings(parts) => parts.push(b),
                        _ => v.needs_full_decode = true,
                    }
                }
            }
            // name and device_detail do not affect the data.
            (7, Wire::Bytes(_)) | (8, Wire::Bytes(_)) => {}
            // segment, storage_type, raw_data, external_data, data_format, wrong wire types,
            // unknown fields: let the full decoder decide.
            _ => v.needs_full_decode = true,
        }
    }
    Ok(v)
}

/// Decodes varint payload parts into `out`, one element per value, via `store(index, value)`.
/// Returns how many values there were.
pub(crate) fn for_each_varint(
    parts: &[Wire<'_>],
    mut store: impl FnMut(usize, u64) -> Result<()>,
) -> Result<usize> {
    let mut i = 0;
    for part in parts {
        match part {
            Wire::Varint(x) => {
                store(i, *x)?;
                i += 1;
            }
            Wire::Bytes(b) => {
                let mut r = Reader::new(b);
                while !r.done() {
                    store(i, r.varint()?)?;
                    i += 1;
                }
            }
            _ => return Err(C2rsError::internal("non-varint part in a varint payload")),
        }
    }
    Ok(i)
}
