//! Batch assembly for TensorProtosDBInput: records (serialized TensorProtos) become one tensor
//! per output, `[B] + dims` for `batch_size` B > 0, or the record's own tensors for B = 0.
//! Payloads go straight from the record bytes into the batch buffer (see `scan`); forms the
//! scanner does not handle are decoded with the full decoder and copied.

use std::sync::Arc;

use prost::Message;

use super::scan::{Payload, TensorView, Views, Wire, for_each_varint, scan_tensor_protos};
use crate::error::{C2rsError, Result};
use crate::proto::{TensorProto, TensorProtos};
use crate::tensor::{
    BufferPool, DataType, STRING_ELEMENT_BYTES, SequentialFill, Tensor, ZeroFillBudget,
    check_tensor_proto, checked_numel, dims_text, tensor_from_proto, tensor_from_proto_budgeted,
};

/// A record as read from a DB: key and value bytes.
pub type Record = (Vec<u8>, Vec<u8>);

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Says when a value that is not a TensorProtos looks like a Caffe `Datum` (field 1 a varint),
/// the most common mistake (pytorch/pytorch#14348).
fn datum_hint(value: &[u8]) -> &'static str {
    if value.first() == Some(&0x08) {
        " (the value looks like a Caffe Datum; TensorProtosDBInput needs serialized TensorProtos)"
    } else {
        ""
    }
}

/// Decodes every tensor of one record with the full decoder (prost + `tensor_from_proto`).
pub fn decode_record(key: &[u8], value: &[u8], num_outputs: usize) -> Result<Vec<Tensor>> {
    let protos = TensorProtos::decode(value).map_err(|e| {
        C2rsError::parse(format!(
            "TensorProtosDBInput: record '{}' is not a TensorProtos: {e}{}",
            key_text(key),
            datum_hint(value)
        ))
    })?;
    check_count(key, value, protos.protos.len(), num_outputs)?;
    // One zero-fill budget for the whole record: its protos together may not claim more
    // than MAX_IMPLICIT_ZERO_BYTES outside their segments.
    let mut budget = ZeroFillBudget::default();
    protos
        .protos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            tensor_from_proto_budgeted(p, &mut budget).map_err(|e| {
                e.context(format!(
                    "TensorProtosDBInput: record '{}' output {i}",
                    key_text(key)
                ))
            })
        })
        .collect()
}

fn check_count(key: &[u8], value: &[u8], found: usize, num_outputs: usize) -> Result<()> {
    if found != num_outputs {
        return Err(C2rsError::enforce(format!(
            "TensorProtosDBInput: record '{}' has {found} TensorProtos, the op has {num_outputs} outputs{}",
            key_text(key),
            datum_hint(value)
        )));
    }
    Ok(())
}

/// Builds batches of `batch_size` records with `num_outputs` tensors each.
#[derive(Clone, Copy, Debug)]
pub struct BatchAssembler {
    pub batch_size: usize,
    pub num_outputs: usize,
}

impl BatchAssembler {
    /// Records this assembler consumes per batch (1 when `batch_size` is 0).
    pub fn records_per_batch(&self) -> usize {
        self.batch_size.max(1)
    }

    pub fn assemble(&self, records: &[Record]) -> Result<Vec<Tensor>> {
        self.assemble_borrowed(records)
    }

    /// `assemble` over records borrowed from anywhere (`(key, value)` byte slices or vectors),
    /// e.g. a host's in-memory records: nothing is copied besides the payloads.
    pub fn assemble_borrowed<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(K, V)],
    ) -> Result<Vec<Tensor>> {
        self.assemble_pooled(records, None)
    }

    /// `assemble_borrowed` with the batch buffers taken from `pool` where it has some of the
    /// right size; they go back to it when the batch's tensors drop.
    pub fn assemble_pooled<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(K, V)],
        pool: Option<&Arc<BufferPool>>,
    ) -> Result<Vec<Tensor>> {
        if records.len() != self.records_per_batch() {
            return Err(C2rsError::internal(format!(
                "batch of {} records, expected {}",
                records.len(),
                self.records_per_batch()
            )));
        }
        if self.batch_size == 0 {
            let (key, value) = &records[0];
            return decode_record(key.as_ref(), value.as_ref(), self.num_outputs);
        }
        // Scan and check every record before allocating the batch: each output is sized
        // from record 0's dims, and only once every record has shown a payload that can hold
        // its row (plus at most MAX_IMPLICIT_ZERO_BYTES of zeros for the whole batch).
        let mut scanned: Vec<Views<'_>> = Vec::new();
        scanned.try_reserve_exact(records.len()).map_err(|_| {
            C2rsError::internal(format!(
                "out of memory allocating the views of {} records",
                records.len()
            ))
        })?;
        let mut budget = ZeroFillBudget::default();
        let mut shapes: Vec<(DataType, usize)> = Vec::new();
        for (k, (key, value)) in records.iter().enumerate() {
            let (key, value) = (key.as_ref(), value.as_ref());
            let Ok(views) = scan_tensor_protos(value) else {
                // Malformed bytes: the full decoder produces the precise error.
                return decode_record(key, value, self.num_outputs).map(|_| Vec::new());
            };
            check_count(key, value, views.len(), self.num_outputs)?;
            if k == 0 {
                shapes = record_shapes(key, &views)?;
            }
            for (i, view) in views.iter().enumerate() {
                let context = |e: C2rsError| {
                    e.context(format!(
                        "TensorProtosDBInput: record '{}' output {i}",
                        key_text(key)
                    ))
                };
                let (dtype0, row_numel) = shapes[i];
                let dims0 = &scanned.first().unwrap_or(&views)[i].dims;
                if view.dims != *dims0 || view.data_type != dtype0.as_i32() {
                    let got = DataType::try_from(view.data_type)
                        .map(|d| d.name().to_string())
                        .unwrap_or_else(|_| view.data_type.to_string());
                    return Err(C2rsError::enforce(format!(
                        "TensorProtosDBInput: record '{}' output {i} has {}/{got}, batch expects {}/{}",
                        key_text(key),
                        dims_text(&view.dims),
                        dims_text(dims0),
                        dtype0
                    )));
                }
                check_backed(view, row_numel, &mut budget).map_err(context)?;
            }
            scanned.push(views);
        }
        let mut outputs = Vec::with_capacity(self.num_outputs);
        for (view, &(dtype, _)) in scanned[0].iter().zip(&shapes) {
            let mut dims = Vec::with_capacity(view.dims.len() + 1);
            dims.push(self.batch_size as i64);
            dims.extend_from_slice(&view.dims);
            outputs.push(BatchOutput::new(dtype, dims, pool)?);
        }
        for ((key, _), views) in records.iter().zip(&scanned) {
            for (i, (view, out)) in views.iter().zip(outputs.iter_mut()).enumerate() {
                out.push_row(view).map_err(|e| {
                    e.context(format!(
                        "TensorProtosDBInput: record '{}' output {i}",
                        key_text(key.as_ref())
                    ))
                })?;
            }
        }
        outputs.into_iter().map(BatchOutput::finish).collect()
    }
}

/// Each output's dtype and elements per record, from the first record's views.
fn record_shapes(key: &[u8], views: &Views<'_>) -> Result<Vec<(DataType, usize)>> {
    views
        .iter()
        .enumerate()
        .map(|(i, view)| {
            let context = |e: C2rsError| {
                C2rsError::new(
                    e.kind(),
                    format!(
                        "TensorProtosDBInput: record '{}' output {i}: {}",
                        key_text(key),
                        e.message()
                    ),
                )
            };
            let dtype = DataType::try_from(view.data_type).map_err(context)?;
            let numel =
                checked_numel(&view.dims).map_err(|e| context(C2rsError::parse(e.message())))?;
            Ok((dtype, numel))
        })
        .collect()
}

/// Checks, before the batch is allocated, that `view`'s payload can hold its `numel`
/// elements: at least one payload byte (or one value) per element for the forms the scanner
/// reads, or the full decoder's checks (zeros outside a segment taken from `budget`) for the
/// others. The exact counts are checked again when the row is copied.
fn check_backed(view: &TensorView<'_>, numel: usize, budget: &mut ZeroFillBudget) -> Result<()> {
    if !view.needs_full_decode {
        let capacity = match &view.payload {
            Payload::None => 0,
            Payload::Raw(parts) => parts.iter().map(|p| p.len()).sum(),
            Payload::Fixed(parts) | Payload::Strings(parts) => parts.len(),
            Payload::Varints(parts) => parts
                .iter()
                .map(|w| match w {
                    Wire::Bytes(b) => b.len(),
                    _ => 1,
                })
                .sum(),
        };
        if numel <= capacity {
            return Ok(());
        }
    }
    // The precise error (or, for forms the scanner leaves to it, the full decoder's verdict).
    let proto = TensorProto::decode(view.bytes)
        .map_err(|e| C2rsError::parse(format!("not a valid TensorProto: {e}")))?;
    check_tensor_proto(&proto, budget)
}

/// One output of a batch being assembled, filled row after row (record order).
struct BatchOutput {
    dtype: DataType,
    /// `[B] + record dims`.
    dims: Vec<i64>,
    /// Elements per record.
    row_numel: usize,
    data: OutputData,
}

enum OutputData {
    /// Fixed-size elements, written front to back without zero-filling first.
    Bytes(SequentialFill),
    Strings(Vec<Vec<u8>>),
}

impl BatchOutput {
    fn new(dtype: DataType, dims: Vec<i64>, pool: Option<&Arc<BufferPool>>) -> Result<Self> {
        let numel = checked_numel(&dims)?;
        let row_numel = numel / (dims[0].max(1) as usize);
        let data = match dtype.item_size() {
            Some(item) => {
                let len = numel.checked_mul(item).ok_or_else(|| {
                    C2rsError::invalid_argument(format!(
                        "batch of dims {} is too large",
                        dims_text(&dims)
                    ))
                })?;
                let fill = match pool {
                    Some(pool) => SequentialFill::pooled(len, pool),
                    None => SequentialFill::new(len),
                };
                OutputData::Bytes(fill.map_err(|e| {
                    C2rsError::new(
                        e.kind(),
                        format!(
                            "{} (a {dtype} batch of dims {})",
                            e.message(),
                            dims_text(&dims)
                        ),
                    )
                })?)
            }
            None => {
                let mut strings = Vec::new();
                strings.try_reserve_exact(numel).map_err(|_| {
                    C2rsError::internal(format!(
                        "out of memory allocating {} bytes for a STRING batch of dims {}",
                        numel.saturating_mul(STRING_ELEMENT_BYTES),
                        dims_text(&dims)
                    ))
                })?;
                OutputData::Strings(strings)
            }
        };
        Ok(Self {
            dtype,
            dims,
            row_numel,
            data,
        })
    }

    /// Appends one record's tensor (already checked to have the batch's dims and dtype).
    fn push_row(&mut self, view: &TensorView<'_>) -> Result<()> {
        let (dtype, numel) = (self.dtype, self.row_numel);
        match &mut self.data {
            OutputData::Strings(strings) => match &view.payload {
                Payload::Strings(parts)
                    if !view.needs_full_decode && view.field == 6 && parts.len() == numel =>
                {
                    strings.extend(parts.iter().map(|p| p.to_vec()));
                    Ok(())
                }
                Payload::None if !view.needs_full_decode && numel == 0 => Ok(()),
                _ => {
                    strings.extend_from_slice(full_decode(view)?.strings()?);
                    Ok(())
                }
            },
            OutputData::Bytes(fill) => {
                let row_bytes = numel * dtype.item_size().unwrap_or(0);
                if let Some(parts) = raw_parts(view, dtype, row_bytes)? {
                    // The common case: packed payload bytes go straight into the batch.
                    return parts.iter().try_for_each(|p| fill.push(p));
                }
                fill.push_with(row_bytes, |dst| {
                    if !view.needs_full_decode && fast_write(view, dtype, dst, numel)? {
                        return Ok(());
                    }
                    dst.copy_from_slice(full_decode(view)?.bytes()?);
                    Ok(())
                })
            }
        }
    }

    fn finish(self) -> Result<Tensor> {
        match self.data {
            OutputData::Bytes(fill) => {
                Tensor::from_storage(self.dtype, &self.dims, Arc::new(fill.finish()?))
            }
            OutputData::Strings(strings) => Tensor::from_strings(&self.dims, strings),
        }
    }
}

/// The payload pieces of a record whose little-endian bytes are exactly the row (packed
/// float/double data, byte_data of byte-sized and 16-bit types), or `None` for other forms.
fn raw_parts<'v, 'a>(
    view: &'v TensorView<'a>,
    dtype: DataType,
    row_bytes: usize,
) -> Result<Option<&'v [&'a [u8]]>> {
    use DataType as D;
    let Payload::Raw(parts) = &view.payload else {
        return Ok(None);
    };
    let fits = matches!(
        (dtype, view.field),
        (D::Float, 3)
            | (D::Double, 9)
            | (
                D::Byte | D::Uint8 | D::Int8 | D::Uint16 | D::Int16 | D::Float16,
                5
            )
    );
    if view.needs_full_decode || !fits {
        return Ok(None);
    }
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total != row_bytes {
        let item = dtype.item_size().unwrap_or(1);
        return Err(size_error(dtype, row_bytes / item, total / item));
    }
    Ok(Some(parts))
}

fn full_decode(view: &TensorView<'_>) -> Result<Tensor> {
    let proto = TensorProto::decode(view.bytes)
        .map_err(|e| C2rsError::parse(format!("not a valid TensorProto: {e}")))?;
    tensor_from_proto(&proto)
}

fn size_error(dtype: DataType, numel: usize, found: usize) -> C2rsError {
    C2rsError::parse(format!(
        "Incorrect proto field size: a {dtype} tensor of {numel} elements, found {found} items"
    ))
}

/// Writes the payload straight into `dst` when its form is one the scanner understood.
/// Returns false when the caller must use the full decoder. Packed payloads that are already
/// the row's bytes never come here: `push_row` copies them through `raw_parts`.
fn fast_write(
    view: &TensorView<'_>,
    dtype: DataType,
    dst: &mut [u8],
    numel: usize,
) -> Result<bool> {
    use DataType as D;
    match (&view.payload, dtype, view.field) {
        (Payload::None, _, _) if numel == 0 => Ok(true),
        (Payload::Raw(parts), D::Bool, 5) => {
            let total: usize = parts.iter().map(|p| p.len()).sum();
            if total != dst.len() {
                return Err(size_error(dtype, numel, total));
            }
            for (d, s) in dst.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
                *d = u8::from(*s != 0);
            }
            Ok(true)
        }
        (Payload::Fixed(parts), D::Float, 3) | (Payload::Fixed(parts), D::Double, 9) => {
            let item = dtype.item_size().unwrap_or(1);
            if parts.len() != numel {
                return Err(size_error(dtype, numel, parts.len()));
            }
            for (d, s) in dst.chunks_exact_mut(item).zip(parts) {
                d.copy_from_slice(s);
            }
            Ok(true)
        }
        (Payload::Varints(parts), _, 4)
            if matches!(
                dtype,
                D::Int32 | D::Bool | D::Uint8 | D::Int8 | D::Uint16 | D::Int16 | D::Float16
            ) =>
        {
            let item = dtype.item_size().unwrap_or(1);
            let n = for_each_varint(parts, |i, v| {
                let Some(d) = dst.get_mut(i * item..(i + 1) * item) else {
                    return Err(size_error(dtype, numel, i + 1));
                };
                // int32 values travel sign-extended; C++ narrowed them with static_cast.
                let v = v as i32;
                match dtype {
                    D::Int32 => d.copy_from_slice(&v.to_le_bytes()),
                    D::Bool => d[0] = u8::from(v != 0),
                    D::Uint8 | D::Int8 => d[0] = v as u8,
                    _ => d.copy_from_slice(&(v as u16).to_le_bytes()),
                }
                Ok(())
            })?;
            if n != numel {
                return Err(size_error(dtype, numel, n));
            }
            Ok(true)
        }
        (Payload::Varints(parts), D::Int64, 10) => {
            let n = for_each_varint(parts, |i, v| {
                let Some(d) = dst.get_mut(i * 8..(i + 1) * 8) else {
                    return Err(size_error(dtype, numel, i + 1));
                };
                d.copy_from_slice(&(v as i64).to_le_bytes());
                Ok(())
            })?;
            if n != numel {
                return Err(size_error(dtype, numel, n));
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TensorProto;
    use crate::tensor::tensor_to_proto;

    fn record(key: &str, tensors: &[Tensor]) -> Record {
        let protos = TensorProtos {
            protos: tensors
                .iter()
                .map(|t| tensor_to_proto(t).unwrap())
                .collect(),
        };
        (key.as_bytes().to_vec(), protos.encode_to_vec())
    }

    fn sample(i: i32) -> Vec<Tensor> {
        vec![
            Tensor::from_slice(DataType::Float, &[2, 2], &[i as f32, 1.5, -2.0, 0.25]).unwrap(),
            Tensor::from_slice(DataType::Int32, &[], &[i * 1000 - 7]).unwrap(),
            Tensor::from_slice(DataType::Int64, &[2], &[i64::MIN, i as i64]).unwrap(),
            Tensor::from_slice(DataType::Int8, &[3], &[-128i8, i as i8, 127]).unwrap(),
            Tensor::from_slice(DataType::Bool, &[2], &[1u8, 0]).unwrap(),
            Tensor::from_slice(DataType::Double, &[1], &[f64::from(i) / 3.0]).unwrap(),
            Tensor::from_strings(&[], vec![format!("rec-{i}").into_bytes()]).unwrap(),
            Tensor::from_slice(DataType::Float16, &[2], &[0x3c00u16, i as u16]).unwrap(),
        ]
    }

    #[test]
    fn fast_batches_equal_stacked_full_decodes() {
        let records: Vec<Record> = (0..4)
            .map(|i| record(&format!("k{i}"), &sample(i)))
            .collect();
        let batch = BatchAssembler {
            batch_size: 4,
            num_outputs: 8,
        }
        .assemble(&records)
        .unwrap();
        for (o, out) in batch.iter().enumerate() {
            let rows: Vec<Tensor> = records
                .iter()
                .map(|(k, v)| decode_record(k, v, 8).unwrap().swap_remove(o))
                .collect();
            let expected =
                crate::tensor::rows::stack_rows(&rows.iter().collect::<Vec<_>>()).unwrap();
            assert_eq!(*out, expected, "output {o}");
        }
        assert_eq!(batch[1].dims(), &[4], "scalars batch to [B]");
    }

    #[test]
    fn unpacked_and_byte_data_forms_take_the_fast_or_the_full_path_with_equal_results() {
        // float_data unpacked (wire type 5), int32 in byte_data-free form, a segment (full path).
        let mut unpacked = Vec::new();
        for v in [1.0f32, 2.0] {
            unpacked.extend_from_slice(&[0x1d]);
            unpacked.extend_from_slice(&v.to_le_bytes());
        }
        let t_unpacked = [&[0x08u8, 0x02, 0x10, 0x01][..], &unpacked].concat();
        let mut seg = TensorProto {
            dims: vec![2],
            data_type: Some(1),
            float_data: vec![1.0, 2.0],
            ..Default::default()
        };
        seg.segment = Some(crate::proto::tensor_proto::Segment { begin: 0, end: 2 });
        let encode_one = |t: &[u8]| {
            let mut v = vec![0x0a, t.len() as u8];
            v.extend_from_slice(t);
            v
        };
        let records = vec![
            (b"a".to_vec(), encode_one(&t_unpacked)),
            (b"b".to_vec(), encode_one(&seg.encode_to_vec())),
        ];
        let batch = BatchAssembler {
            batch_size: 2,
            num_outputs: 1,
        }
        .assemble(&records)
        .unwrap();
        assert_eq!(batch[0].typed::<f32>().unwrap(), &[1.0, 2.0, 1.0, 2.0]);
    }

    /// A TensorProtos record holding one hand-encoded TensorProto (`fields`, raw bytes).
    fn one_proto(key: &str, fields: &[&[u8]]) -> Record {
        let t = fields.concat();
        // The length is written as a one-byte varint.
        assert!(t.len() < 128, "one_proto writes lengths below 128 only");
        let mut v = vec![0x0a, t.len() as u8];
        v.extend_from_slice(&t);
        (key.as_bytes().to_vec(), v)
    }

    /// Packed float_data (field 3) holding `values`.
    fn packed_floats(values: &[f32]) -> Vec<u8> {
        assert!(
            values.len() * 4 < 128,
            "packed_floats writes lengths below 128 only"
        );
        let mut v = vec![0x1a, (values.len() * 4) as u8];
        for x in values {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    }

    /// Batches all of `records` as one batch and checks the result against the full decoder's rows
    /// (or, when the full decoder refuses a record, that the batch is refused with its kind).
    fn batches_like_the_full_decoder(records: &[Record]) -> Result<Vec<Tensor>> {
        let got = BatchAssembler {
            batch_size: records.len(),
            num_outputs: 1,
        }
        .assemble(records);
        let rows: Result<Vec<Tensor>> = records
            .iter()
            .map(|(k, v)| decode_record(k, v, 1).map(|mut t| t.swap_remove(0)))
            .collect();
        match (&got, rows) {
            (Ok(batch), Ok(rows)) => {
                let expected =
                    crate::tensor::rows::stack_rows(&rows.iter().collect::<Vec<_>>()).unwrap();
                assert_eq!(batch[0], expected);
            }
            (Err(e), Err(full)) => assert_eq!(e.kind(), full.kind(), "{e} vs {full}"),
            (got, full) => panic!("batch {got:?}, full decoder {full:?}"),
        }
        got
    }

    #[test]
    fn hand_encoded_forms_batch_as_the_full_decoder_reads_them() {
        let dims_2 = [0x08u8, 0x02];
        let float = [0x10u8, 0x01];
        // No data_type field: FLOAT, the proto's default.
        let batch = batches_like_the_full_decoder(&[
            one_proto("implicit", &[&dims_2, &packed_floats(&[1.0, 2.0])]),
            one_proto("explicit", &[&dims_2, &float, &packed_floats(&[3.0, 4.0])]),
        ])
        .unwrap();
        assert_eq!(batch[0].dtype(), DataType::Float);
        assert_eq!(batch[0].typed::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0]);
        // Packed dims (field 1, length-delimited) equal unpacked ones.
        let packed_dims = [0x0au8, 0x02, 0x01, 0x02];
        let batch = batches_like_the_full_decoder(&[
            one_proto(
                "packed",
                &[&packed_dims, &float, &packed_floats(&[1.0, 2.0])],
            ),
            one_proto(
                "unpacked",
                &[
                    &[0x08, 0x01, 0x08, 0x02],
                    &float,
                    &packed_floats(&[3.0, 4.0]),
                ],
            ),
        ])
        .unwrap();
        assert_eq!(batch[0].dims(), &[2, 1, 2]);
        // A FLOAT tensor with a stray int32_data (field 4) beside its float_data.
        let stray_int32 = [0x22u8, 0x02, 0x07, 0x09];
        batches_like_the_full_decoder(&[
            one_proto("a", &[&dims_2, &float, &packed_floats(&[1.0, 2.0])]),
            one_proto(
                "b",
                &[&dims_2, &float, &packed_floats(&[3.0, 4.0]), &stray_int32],
            ),
        ])
        .unwrap();
        batches_like_the_full_decoder(&[
            one_proto("a", &[&dims_2, &float, &packed_floats(&[1.0, 2.0])]),
            one_proto(
                "b",
                &[&dims_2, &float, &stray_int32, &packed_floats(&[3.0, 4.0])],
            ),
        ])
        .unwrap();
        // A stray byte_data (field 5) before float_data: together they are the row's 8 bytes,
        // but only float_data is the FLOAT tensor's data (one float for two elements).
        let stray_bytes = [0x2au8, 0x04, 1, 2, 3, 4];
        batches_like_the_full_decoder(&[
            one_proto("a", &[&dims_2, &float, &packed_floats(&[1.0, 2.0])]),
            one_proto(
                "b",
                &[&dims_2, &float, &stray_bytes, &packed_floats(&[3.0])],
            ),
        ])
        .unwrap_err();
        // float_data split over two packed runs is one payload.
        let batch = batches_like_the_full_decoder(&[
            one_proto("a", &[&dims_2, &float, &packed_floats(&[1.0, 2.0])]),
            one_proto(
                "b",
                &[
                    &dims_2,
                    &float,
                    &packed_floats(&[3.0]),
                    &packed_floats(&[4.0]),
                ],
            ),
        ])
        .unwrap();
        assert_eq!(batch[0].typed::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0]);
        // Unpacked int32_data and int64_data (one varint field per value; Caffe2 packs them),
        // beside packed ones; int32 negatives travel as 10-byte sign-extended varints.
        let int32 = [0x10u8, 0x02];
        let minus_one = [
            0x20u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        let batch = batches_like_the_full_decoder(&[
            one_proto("unpacked", &[&dims_2, &int32, &[0x20, 0x05], &minus_one]),
            one_proto("packed", &[&dims_2, &int32, &[0x22, 0x02, 0x07, 0x09]]),
        ])
        .unwrap();
        assert_eq!(batch[0].typed::<i32>().unwrap(), &[5, -1, 7, 9]);
        let int64 = [0x10u8, 0x0a];
        let batch = batches_like_the_full_decoder(&[
            one_proto("unpacked", &[&dims_2, &int64, &[0x50, 0x03], &[0x50, 0x04]]),
            one_proto(
                "mixed",
                &[&dims_2, &int64, &[0x50, 0x05], &[0x52, 0x01, 0x06]],
            ),
        ])
        .unwrap();
        assert_eq!(batch[0].typed::<i64>().unwrap(), &[3, 4, 5, 6]);
        // TensorProtos' field 1 as a varint instead of a message: a parse error.
        let e = batches_like_the_full_decoder(&[
            one_proto("a", &[&dims_2, &float, &packed_floats(&[1.0, 2.0])]),
            (b"b".to_vec(), vec![0x08, 0x01]),
        ])
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Parse, "{e}");
    }

    /// Forms the scanner leaves to the full decoder (a segment), payloads in a field that is
    /// not the dtype's, BOOL from byte_data, strings, and payloads whose count differs from
    /// the dims, batch as the full decoder reads them; count errors give both counts.
    #[test]
    fn segments_odd_fields_and_wrong_counts_batch_as_the_full_decoder_reads_them() {
        let dims = |d: u8| [0x08u8, d];
        let segment = |begin: u8, end: u8| [0x5au8, 0x04, 0x08, begin, 0x10, end];
        let (float, string) = ([0x10u8, 0x01], [0x10u8, 0x04]);
        let text = |v: &str| {
            let mut f = vec![0x32u8, v.len() as u8];
            f.extend_from_slice(v.as_bytes());
            f
        };
        // FLOAT elements 1 and 2 of 4: the others are zero.
        let batch = batches_like_the_full_decoder(&[
            one_proto(
                "segment",
                &[
                    &dims(4),
                    &float,
                    &segment(1, 3),
                    &packed_floats(&[1.0, 2.0]),
                ],
            ),
            one_proto("whole", &[&dims(4), &float, &packed_floats(&[3.0; 4])]),
        ])
        .unwrap();
        assert_eq!(
            batch[0].typed::<f32>().unwrap(),
            &[0.0, 1.0, 2.0, 0.0, 3.0, 3.0, 3.0, 3.0]
        );
        let strings = |t: &Tensor| -> Vec<Vec<u8>> { t.strings().unwrap().to_vec() };
        let batch = batches_like_the_full_decoder(&[
            one_proto("ab", &[&dims(2), &string, &text("a"), &text("b")]),
            one_proto("cd", &[&dims(2), &string, &text("c"), &text("d")]),
        ])
        .unwrap();
        assert_eq!(strings(&batch[0]), ["a", "b", "c", "d"].map(str::as_bytes));
        // Element 1 of 3 only, and an empty segment: empty strings elsewhere.
        let batch = batches_like_the_full_decoder(&[
            one_proto("middle", &[&dims(3), &string, &segment(1, 2), &text("s")]),
            one_proto("none", &[&dims(3), &string, &segment(0, 0)]),
        ])
        .unwrap();
        assert_eq!(
            strings(&batch[0]),
            ["", "s", "", "", "", ""].map(str::as_bytes)
        );
        // Packed bytes of the right length in a field that is not the dtype's: refused.
        let floats_in_byte_data = [0x2au8, 0x08, 0, 0, 128, 63, 0, 0, 0, 64];
        batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(2), &float, &packed_floats(&[1.0, 2.0])]),
            one_proto("b", &[&dims(2), &float, &floats_in_byte_data]),
        ])
        .unwrap_err();
        let int32 = [0x10u8, 0x02];
        batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(2), &int32, &[0x22, 0x02, 0x07, 0x09]]),
            one_proto("b", &[&dims(2), &int32, &packed_floats(&[1.0, 2.0])]),
        ])
        .unwrap_err();
        batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(2), &float, &packed_floats(&[1.0, 2.0])]),
            one_proto("b", &[&dims(2), &float, &[0x22, 0x02, 0x07, 0x09]]),
        ])
        .unwrap_err();
        // Three packed floats for two elements: the error gives both counts.
        let e = batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(2), &float, &packed_floats(&[1.0, 2.0])]),
            one_proto("b", &[&dims(2), &float, &packed_floats(&[1.0, 2.0, 3.0])]),
        ])
        .unwrap_err();
        assert!(
            e.message()
                .contains("a FLOAT tensor of 2 elements, found 3 items"),
            "{e}"
        );
        // BOOL from byte_data: any non-zero byte is true; a short payload is refused.
        let bool_ = [0x10u8, 0x05];
        let batch = batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(3), &bool_, &[0x2a, 0x03, 1, 0, 2]]),
            one_proto("b", &[&dims(3), &bool_, &[0x2a, 0x03, 0, 255, 0]]),
        ])
        .unwrap();
        assert_eq!(batch[0].bytes().unwrap(), &[1, 0, 1, 0, 1, 0]);
        batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(3), &bool_, &[0x2a, 0x03, 1, 0, 2]]),
            one_proto("b", &[&dims(3), &bool_, &[0x2a, 0x02, 1, 1]]),
        ])
        .unwrap_err();
        // Three int32 values for two elements: the error counts the third.
        let e = batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(2), &int32, &[0x22, 0x02, 0x07, 0x09]]),
            one_proto("b", &[&dims(2), &int32, &[0x22, 0x03, 0x07, 0x09, 0x0b]]),
        ])
        .unwrap_err();
        assert!(
            e.message()
                .contains("a INT32 tensor of 2 elements, found 3 items"),
            "{e}"
        );
        let int64 = [0x10u8, 0x0a];
        let e = batches_like_the_full_decoder(&[
            one_proto("a", &[&dims(2), &int64, &[0x52, 0x02, 0x07, 0x09]]),
            one_proto("b", &[&dims(2), &int64, &[0x52, 0x03, 0x07, 0x09, 0x0b]]),
        ])
        .unwrap_err();
        assert!(
            e.message()
                .contains("a INT64 tensor of 2 elements, found 3 items"),
            "{e}"
        );
        // Three strings for two elements: refused, as by the full decoder.
        batches_like_the_full_decoder(&[
            one_proto("ab", &[&dims(2), &string, &text("a"), &text("b")]),
            one_proto(
                "cde",
                &[&dims(2), &string, &text("c"), &text("d"), &text("e")],
            ),
        ])
        .unwrap_err();
    }

    #[test]
    fn mismatched_records_name_the_key_and_both_shapes() {
        let records = vec![
            record("k0", &[Tensor::zeros(DataType::Float, &[2]).unwrap()]),
            record("k1", &[Tensor::zeros(DataType::Float, &[3]).unwrap()]),
        ];
        let e = BatchAssembler {
            batch_size: 2,
            num_outputs: 1,
        }
        .assemble(&records)
        .unwrap_err();
        assert_eq!(
            e.message(),
            "TensorProtosDBInput: record 'k1' output 0 has [3]/FLOAT, batch expects [2]/FLOAT"
        );
        let records = vec![
            record("k0", &[Tensor::zeros(DataType::Float, &[2]).unwrap()]),
            record("k1", &[Tensor::zeros(DataType::Int32, &[2]).unwrap()]),
        ];
        assert!(
            BatchAssembler {
                batch_size: 2,
                num_outputs: 1
            }
            .assemble(&records)
            .unwrap_err()
            .message()
            .contains("has [2]/INT32, batch expects [2]/FLOAT")
        );
    }

    #[test]
    fn wrong_tensor_counts_and_datums_are_explained() {
        let records = vec![record("k0", &sample(0))];
        let e = BatchAssembler {
            batch_size: 1,
            num_outputs: 2,
        }
        .assemble(&records)
        .unwrap_err();
        assert_eq!(
            e.message(),
            "TensorProtosDBInput: record 'k0' has 8 TensorProtos, the op has 2 outputs"
        );
        // A Caffe Datum: channels=3 (field 1 varint), height, width, data.
        let datum = (
            b"d".to_vec(),
            vec![0x08, 0x03, 0x10, 0x01, 0x18, 0x01, 0x22, 0x03, 1, 2, 3],
        );
        for b in [0, 1] {
            let e = BatchAssembler {
                batch_size: b,
                num_outputs: 1,
            }
            .assemble(std::slice::from_ref(&datum))
            .unwrap_err();
            assert!(
                e.message().contains("looks like a Caffe Datum"),
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn payload_shorter_than_dims_is_a_parse_error() {
        let bad = TensorProto {
            dims: vec![3],
            data_type: Some(1),
            float_data: vec![1.0, 2.0],
            ..Default::default()
        };
        let good = TensorProto {
            dims: vec![3],
            data_type: Some(1),
            float_data: vec![1.0, 2.0, 3.0],
            ..Default::default()
        };
        let records: Vec<Record> = [good, bad]
            .into_iter()
            .map(|p| {
                (
                    b"k".to_vec(),
                    TensorProtos { protos: vec![p] }.encode_to_vec(),
                )
            })
            .collect();
        let e = BatchAssembler {
            batch_size: 2,
            num_outputs: 1,
        }
        .assemble(&records)
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Parse);
        assert!(
            e.message().contains("Incorrect proto field size"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn batch_size_zero_keeps_each_records_own_shape() {
        let a = BatchAssembler {
            batch_size: 0,
            num_outputs: 1,
        };
        let t1 = a
            .assemble(&[record(
                "x",
                &[Tensor::zeros(DataType::Float, &[2]).unwrap()],
            )])
            .unwrap();
        let t2 = a
            .assemble(&[record(
                "y",
                &[Tensor::zeros(DataType::Float, &[5, 1]).unwrap()],
            )])
            .unwrap();
        assert_eq!((t1[0].dims(), t2[0].dims()), (&[2i64][..], &[5i64, 1][..]));
    }
}
