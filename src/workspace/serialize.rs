//! Blob ⇄ `BlobProto` as Caffe2 stores blobs in DBs (shared/spec/data-input.md §3, §5):
//! tensors as one `BlobProto` per chunk (key `<name>#%<k>`, full dims, segment always set),
//! byte strings as `std::string` content, DB readers as a `DBReaderProto` in `content`.

use std::ops::Range;
use std::sync::Arc;

use prost::Message;

use super::blob::{Blob, BlobContent};
use crate::db::DbReader;
use crate::error::{C2rsError, Result};
use crate::ops::counter_ops::Counter;
use crate::ops::iter_ops::BlobMutex;
use crate::proto::{BlobProto, DbReaderProto, DeviceOption, TensorProto};
use crate::tensor::{
    DataType, MAX_IMPLICIT_ZERO_BYTES, Tensor, ZeroFillBudget, checked_numel, dims_text,
    element_bytes, segment_of, tensor_from_proto, tensor_range_to_proto,
};

/// Caffe2's `caffe2_tensor_chunk_size` default: elements per chunk.
pub const DEFAULT_CHUNK_SIZE: usize = 1_000_000;
/// Separates a blob name from its chunk number in DB keys (`w#%0`, `w#%1`, …).
pub const CHUNK_SEPARATOR: &str = "#%";
/// `BlobProto.type` of a tensor.
pub const TENSOR_PROTO_TYPE: &str = "Tensor";
/// `BlobProto.type` of a byte string.
pub const STRING_PROTO_TYPE: &str = "std::string";
/// `BlobProto.type` of a DB reader.
pub const DB_READER_PROTO_TYPE: &str = "DBReader";
/// `BlobProto.type` of a mutex (`CreateMutex`); the content is empty.
pub const MUTEX_PROTO_TYPE: &str = "std::unique_ptr<std::mutex>";
/// `BlobProto.type` of a counter (`CreateCounter`): an INT64 `[1]` tensor with the count.
pub const COUNTER_PROTO_TYPE: &str = "std::unique_ptr<Counter<int64_t>>";

/// Elements per chunk for the Save operator's `chunk_size` argument: −1 the default
/// (1 000 000), 0 no chunking, > 0 explicit.
pub fn chunk_size_from_arg(arg: i64) -> Result<usize> {
    match arg {
        -1 => Ok(DEFAULT_CHUNK_SIZE),
        0 => Ok(usize::MAX),
        n if n > 0 => usize::try_from(n)
            .map_err(|_| C2rsError::enforce(format!("chunk_size {n} is too large"))),
        n => Err(C2rsError::enforce(format!(
            "chunk_size must be -1 (default), 0 (no chunking) or positive, got {n}"
        ))),
    }
}

/// The DB key of chunk `index` of blob `name`.
pub fn chunk_key(name: &str, index: usize) -> String {
    format!("{name}{CHUNK_SEPARATOR}{index}")
}

fn tensor_chunk(name: &str, tensor: &Tensor, range: std::ops::Range<usize>) -> Result<BlobProto> {
    let mut proto: TensorProto = tensor_range_to_proto(tensor, range, true)?;
    proto.name = Some(name.as_bytes().to_vec());
    proto.device_detail = Some(DeviceOption {
        device_type: Some(0),
        ..Default::default()
    });
    Ok(BlobProto {
        name: Some(name.as_bytes().to_vec()),
        r#type: Some(TENSOR_PROTO_TYPE.to_string()),
        tensor: Some(proto),
        ..Default::default()
    })
}

/// A DB reader as Caffe2 serialised it: source, type and, when the cursor can seek, the key of
/// the record the next `read` returns. Shard settings are not part of the schema.
pub fn db_reader_to_proto(name: &str, reader: &DbReader) -> Result<BlobProto> {
    let key =
        reader.with_cursor(|c| Ok((c.supports_seek() && c.valid()).then(|| c.key().to_vec())))?;
    let content = DbReaderProto {
        name: Some(name.as_bytes().to_vec()),
        source: Some(reader.source().as_bytes().to_vec()),
        db_type: Some(reader.db_type().to_string()),
        key,
    };
    Ok(BlobProto {
        name: Some(name.as_bytes().to_vec()),
        r#type: Some(DB_READER_PROTO_TYPE.to_string()),
        content: Some(content.encode_to_vec()),
        ..Default::default()
    })
}

/// Serialises `content` (blob `name`) as Caffe2's `BlobSerializer`s do, handing each
/// `(key, serialized BlobProto)` to `accept` in order. Tensors give one record per
/// `chunk_size` elements (an empty tensor still one), keyed `name#%k`; other blobs one record
/// keyed `name`.
pub fn serialize_blob(
    name: &str,
    content: &BlobContent,
    chunk_size: usize,
    mut accept: impl FnMut(String, Vec<u8>) -> Result<()>,
) -> Result<()> {
    match content {
        BlobContent::Tensor(t) => {
            let chunk = chunk_size.max(1);
            let numel = t.numel();
            let mut begin: usize = 0;
            loop {
                let end = numel.min(begin.saturating_add(chunk));
                let proto = tensor_chunk(name, t, begin..end)?;
                accept(chunk_key(name, begin / chunk), proto.encode_to_vec())?;
                begin = end;
                if begin >= numel {
                    return Ok(());
                }
            }
        }
        other => accept(
            name.to_string(),
            serialize_blob_to_proto(name, other)?.encode_to_vec(),
        ),
    }
}

/// One `BlobProto` for the whole blob, never chunked (Caffe2's `Blob::Serialize`).
pub fn serialize_blob_to_proto(name: &str, content: &BlobContent) -> Result<BlobProto> {
    match content {
        BlobContent::Tensor(t) => tensor_chunk(name, t, 0..t.numel()),
        BlobContent::String(s) => Ok(BlobProto {
            name: Some(name.as_bytes().to_vec()),
            r#type: Some(STRING_PROTO_TYPE.to_string()),
            content: Some(s.clone()),
            ..Default::default()
        }),
        BlobContent::Native(n) => {
            if let Some(reader) = n.downcast::<DbReader>() {
                db_reader_to_proto(name, &reader)
            } else if n.downcast::<BlobMutex>().is_some() {
                Ok(BlobProto {
                    name: Some(name.as_bytes().to_vec()),
                    r#type: Some(MUTEX_PROTO_TYPE.to_string()),
                    content: Some(Vec::new()),
                    ..Default::default()
                })
            } else if let Some(counter) = n.downcast::<Counter>() {
                Ok(counter_to_proto(name, counter.retrieve()))
            } else {
                Err(C2rsError::enforce(format!(
                    "No known serializer for {}. Blob name: {name}",
                    n.type_name()
                )))
            }
        }
        BlobContent::Empty => Err(C2rsError::enforce(format!(
            "Blob {name} is empty (uninitialized) and cannot be serialized"
        ))),
    }
}

/// What one deserialised `BlobProto` contributed to its blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deserialized {
    /// A tensor chunk: elements `[begin, end)` of a tensor of `numel` elements.
    TensorChunk {
        begin: usize,
        end: usize,
        numel: usize,
        had_segment: bool,
    },
    /// A whole non-tensor blob.
    Whole,
}

/// Deserialises `proto` into `blob`. A tensor chunk whose dims and dtype match the tensor
/// already in the blob (and `reset` is false) fills its segment in place, so chunks accumulate;
/// otherwise the blob is replaced by the chunk's tensor, zero outside its segment (at most
/// `MAX_IMPLICIT_ZERO_BYTES` of zeros; Load assembles chunked tensors with `TensorAssembly`).
pub fn deserialize_blob(proto: BlobProto, blob: &Blob, reset: bool) -> Result<Deserialized> {
    let ty = proto.r#type.clone().unwrap_or_default();
    match ty.as_str() {
        TENSOR_PROTO_TYPE => {
            let tensor = proto
                .tensor
                .ok_or_else(|| C2rsError::parse("BlobProto of type Tensor has no tensor field"))?;
            deserialize_tensor_chunk(tensor, blob, reset)
        }
        STRING_PROTO_TYPE => {
            blob.set_string(proto.content.unwrap_or_default());
            Ok(Deserialized::Whole)
        }
        DB_READER_PROTO_TYPE => {
            let content = proto.content.unwrap_or_default();
            let reader = db_reader_from_proto(&content)?;
            blob.set_native(Arc::new(reader));
            Ok(Deserialized::Whole)
        }
        MUTEX_PROTO_TYPE => {
            // A mutex has no state: a fresh, unlocked one (Caffe2's MutexDeserializer).
            blob.set_native(Arc::new(BlobMutex::default()));
            Ok(Deserialized::Whole)
        }
        COUNTER_PROTO_TYPE => {
            let count = counter_from_proto(proto.tensor.unwrap_or_default())?;
            blob.set_native(Arc::new(Counter::new(count)));
            Ok(Deserialized::Whole)
        }
        other => Err(C2rsError::enforce(format!(
            "No registered deserializer for type {other}"
        ))),
    }
}

/// A counter as Caffe2's `CounterSerializer` wrote it: an INT64 tensor of dims `[1]`.
fn counter_to_proto(name: &str, count: i64) -> BlobProto {
    BlobProto {
        name: Some(name.as_bytes().to_vec()),
        r#type: Some(COUNTER_PROTO_TYPE.to_string()),
        tensor: Some(TensorProto {
            name: Some(name.as_bytes().to_vec()),
            data_type: Some(DataType::Int64.as_i32()),
            dims: vec![1],
            int64_data: vec![count],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The count of a serialized counter, with Caffe2's `CounterDeserializer` checks.
fn counter_from_proto(t: TensorProto) -> Result<i64> {
    if t.dims.len() != 1 {
        return Err(C2rsError::enforce("Unexpected size of dims"));
    }
    if t.dims[0] != 1 {
        return Err(C2rsError::enforce("Unexpected value of dims"));
    }
    if t.data_type != Some(DataType::Int64.as_i32()) {
        return Err(C2rsError::enforce("Only int64_t counters supported"));
    }
    match t.int64_data.as_slice() {
        [count] => Ok(*count),
        _ => Err(C2rsError::enforce("Unexpected size of data")),
    }
}

/// Opens the reader a `DBReaderProto` describes and seeks to its key, if any.
pub fn db_reader_from_proto(content: &[u8]) -> Result<DbReader> {
    let p = DbReaderProto::decode(content)
        .map_err(|e| C2rsError::parse(format!("content is not a DBReaderProto: {e}")))?;
    let source = String::from_utf8(p.source.unwrap_or_default())
        .map_err(|_| C2rsError::enforce("DBReaderProto source is not valid UTF-8"))?;
    let db_type = p.db_type.unwrap_or_default();
    let reader = DbReader::open(&db_type, &source, 1, 0)?;
    if let Some(key) = p.key {
        reader.with_cursor(|c| {
            if !c.supports_seek() {
                return Err(C2rsError::enforce(format!(
                    "DBReaderProto has a key but a {db_type} cursor cannot seek"
                )));
            }
            c.seek(&key)
        })?;
    }
    Ok(reader)
}

/// One tensor chunk decoded on its own: elements `range` of a `dtype` tensor of `dims`. `part`
/// holds exactly those elements (allocated from the chunk's payload, nothing more).
pub struct TensorChunk {
    pub dtype: DataType,
    pub dims: Vec<i64>,
    pub numel: usize,
    pub range: Range<usize>,
    /// Whether the proto carried a `segment` (Caffe2's chunked form always does).
    pub had_segment: bool,
    /// The chunk's elements: dims `dims` when it covers the whole tensor, else `[len]`.
    part: Tensor,
}

impl TensorChunk {
    /// Decodes `proto`'s segment only: the payload is checked against the segment before
    /// anything is allocated, and nothing outside the segment is allocated.
    pub fn decode(mut proto: TensorProto) -> Result<Self> {
        let raw_dtype = proto.data_type.unwrap_or(DataType::Float.as_i32());
        let dtype = DataType::try_from(raw_dtype).map_err(|e| C2rsError::parse(e.message()))?;
        let dims = std::mem::take(&mut proto.dims);
        let numel = checked_numel(&dims).map_err(|e| C2rsError::parse(e.message()))?;
        let had_segment = proto.segment.is_some();
        let range = segment_of(&proto, numel)?;
        let len = range.len();
        proto.dims = vec![len as i64];
        proto.segment = None;
        let mut part = tensor_from_proto(&proto)?;
        if len == numel {
            part.reshape(&dims)?;
        }
        Ok(Self {
            dtype,
            dims,
            numel,
            range,
            had_segment,
            part,
        })
    }

    fn covers_whole_tensor(&self) -> bool {
        self.range.len() == self.numel
    }

    /// Copies the chunk's elements into their place in `target` (same dtype and dims).
    fn write_into(&self, target: &mut Tensor) -> Result<()> {
        if self.range.is_empty() {
            return Ok(());
        }
        let Range { start, end } = self.range;
        if self.dtype == DataType::String {
            let dst = &mut target.strings_mut()?[start..end];
            for (d, s) in dst.iter_mut().zip(self.part.strings()?) {
                d.clear();
                d.try_reserve_exact(s.len()).map_err(|_| {
                    C2rsError::internal(format!(
                        "out of memory allocating {} bytes for a string element",
                        s.len()
                    ))
                })?;
                d.extend_from_slice(s);
            }
        } else {
            let item = self.dtype.item_size().unwrap_or(0);
            target.bytes_mut()?[start * item..end * item].copy_from_slice(self.part.bytes()?);
        }
        Ok(())
    }

    /// The whole tensor this chunk describes on its own: the chunk's elements in place and
    /// zeros elsewhere, refusing more than `MAX_IMPLICIT_ZERO_BYTES` of zeros.
    fn into_tensor(self) -> Result<Tensor> {
        if self.covers_whole_tensor() {
            return Ok(self.part);
        }
        let zeros = element_bytes(self.dtype, self.numel - self.range.len()).unwrap_or(usize::MAX);
        ZeroFillBudget::default().charge(zeros, || {
            format!(
                "a {} tensor chunk [{}, {}) of {} elements",
                self.dtype, self.range.start, self.range.end, self.numel
            )
        })?;
        let mut whole = Tensor::zeros(self.dtype, &self.dims)?;
        self.write_into(&mut whole)?;
        Ok(whole)
    }
}

/// A tensor being put together from its chunks (Load), allocated only once the chunks that
/// arrived back most of it: until then the decoded chunks are kept as they are. The full
/// tensor is allocated when the bytes still missing are at most the larger of
/// `MAX_IMPLICIT_ZERO_BYTES` and the bytes already received, so a chunk claiming a huge tensor
/// costs no more than twice what the input really holds, and a complete checkpoint costs at
/// most 1.5 times its largest tensor while loading.
pub struct TensorAssembly {
    dtype: DataType,
    dims: Vec<i64>,
    numel: usize,
    /// Elements received so far (sum of chunk lengths; at most `numel`).
    received: usize,
    /// Chunks received before `target` was allocated.
    staged: Vec<TensorChunk>,
    target: Option<Tensor>,
}

impl TensorAssembly {
    /// An assembly for the tensor `first` belongs to (`first` is not added yet).
    pub fn new(first: &TensorChunk) -> Self {
        Self {
            dtype: first.dtype,
            dims: first.dims.clone(),
            numel: first.numel,
            received: 0,
            staged: Vec::new(),
            target: None,
        }
    }

    pub fn dtype(&self) -> DataType {
        self.dtype
    }

    pub fn dims(&self) -> &[i64] {
        &self.dims
    }

    pub fn numel(&self) -> usize {
        self.numel
    }

    pub fn received(&self) -> usize {
        self.received
    }

    pub fn is_complete(&self) -> bool {
        self.received == self.numel
    }

    /// Adds a chunk of this tensor (same dtype and dims, checked by the caller).
    pub fn add(&mut self, chunk: TensorChunk) -> Result<()> {
        if chunk.dtype != self.dtype || chunk.dims != self.dims {
            return Err(C2rsError::enforce(format!(
                "a chunk of {} {} does not belong to the {} {} tensor of the earlier chunks",
                chunk.dtype,
                dims_text(&chunk.dims),
                self.dtype,
                dims_text(&self.dims)
            )));
        }
        let len = chunk.range.len();
        if self.received + len > self.numel {
            return Err(C2rsError::enforce(format!(
                "loaded {} elements, the tensor has {}",
                self.received + len,
                self.numel
            )));
        }
        self.received += len;
        if len == 0 {
            return Ok(());
        }
        if let Some(target) = &mut self.target {
            return chunk.write_into(target);
        }
        if chunk.covers_whole_tensor() {
            self.target = Some(chunk.part);
            return Ok(());
        }
        self.staged.try_reserve(1).map_err(|_| {
            C2rsError::internal("out of memory allocating the list of received tensor chunks")
        })?;
        self.staged.push(chunk);
        let item = |n: usize| element_bytes(self.dtype, n).unwrap_or(usize::MAX);
        let missing = item(self.numel - self.received);
        if missing <= MAX_IMPLICIT_ZERO_BYTES.max(item(self.received)) {
            let mut target = Tensor::zeros(self.dtype, &self.dims)?;
            for staged in self.staged.drain(..) {
                staged.write_into(&mut target)?;
            }
            self.target = Some(target);
        }
        Ok(())
    }

    /// The assembled tensor once complete (a shallow copy: the assembly keeps its own).
    pub fn tensor(&self) -> Result<Tensor> {
        match &self.target {
            Some(t) if self.is_complete() => Ok(t.clone()),
            // An empty tensor: nothing to receive, nothing allocated yet.
            None if self.numel == 0 => Tensor::zeros(self.dtype, &self.dims),
            _ => Err(C2rsError::internal(format!(
                "tensor assembly incomplete: {} of {} elements",
                self.received, self.numel
            ))),
        }
    }
}

fn deserialize_tensor_chunk(proto: TensorProto, blob: &Blob, reset: bool) -> Result<Deserialized> {
    let chunk = TensorChunk::decode(proto)?;
    let got = Deserialized::TensorChunk {
        begin: chunk.range.start,
        end: chunk.range.end,
        numel: chunk.numel,
        had_segment: chunk.had_segment,
    };
    let mut guard = blob.write();
    let reuse = !reset
        && matches!(&*guard, BlobContent::Tensor(t) if t.dtype() == chunk.dtype && t.dims() == chunk.dims.as_slice());
    if reuse {
        let BlobContent::Tensor(target) = &mut *guard else {
            return Err(C2rsError::internal("tensor blob changed type while locked"));
        };
        chunk.write_into(target)?;
    } else {
        *guard = BlobContent::Tensor(chunk.into_tensor()?);
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(name: &str, t: &Tensor, chunk: usize) -> Vec<(String, BlobProto)> {
        let mut out = Vec::new();
        serialize_blob(name, &BlobContent::Tensor(t.clone()), chunk, |k, v| {
            out.push((k, BlobProto::decode(v.as_slice()).unwrap()));
            Ok(())
        })
        .unwrap();
        out
    }

    // Ported from blob_test.cc CustomChunkSize: chunk_size = numel → 1 chunk; numel/2 + 1 →
    // 2 chunks; no chunking → 1 chunk; keys name#%0, name#%1.
    #[test]
    fn custom_chunk_sizes_give_the_expected_chunk_keys() {
        let d = 7usize;
        let values: Vec<f32> = (0..2 * d).map(|i| i as f32).collect();
        let t = Tensor::from_slice(DataType::Float, &[2, d as i64], &values).unwrap();
        let numel = 2 * d;
        let keys = |c| {
            records("test", &t, c)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(numel), ["test#%0"]);
        assert_eq!(keys(numel / 2 + 1), ["test#%0", "test#%1"]);
        assert_eq!(keys(chunk_size_from_arg(0).unwrap()), ["test#%0"]);
        // Chunks reassemble into the tensor.
        let blob = Blob::new();
        for (i, (_, p)) in records("test", &t, 3).into_iter().enumerate() {
            deserialize_blob(p, &blob, i == 0).unwrap();
        }
        assert_eq!(blob.tensor().unwrap(), t);
    }

    #[test]
    fn tensor_chunks_carry_full_dims_segment_name_and_cpu_device() {
        let t = Tensor::from_slice(DataType::Int32, &[5], &[1i32, 2, 3, 4, 5]).unwrap();
        let recs = records("w", &t, 2);
        assert_eq!(recs.len(), 3);
        let (_, last) = &recs[2];
        assert_eq!(last.r#type.as_deref(), Some("Tensor"));
        assert_eq!(last.name.as_deref(), Some(&b"w"[..]));
        let tp = last.tensor.as_ref().unwrap();
        assert_eq!(tp.dims, vec![5]);
        assert_eq!(tp.int32_data, vec![5]);
        let seg = tp.segment.as_ref().unwrap();
        assert_eq!((seg.begin, seg.end), (4, 5));
        assert_eq!(tp.device_detail.as_ref().unwrap().device_type, Some(0));
        // Unchunked tensors also carry a segment; an empty tensor gives one chunk.
        let empty = Tensor::zeros(DataType::Float, &[0, 3]).unwrap();
        let recs = records("e", &empty, DEFAULT_CHUNK_SIZE);
        assert_eq!(recs.len(), 1);
        let seg = recs[0].1.tensor.as_ref().unwrap().segment.unwrap();
        assert_eq!((seg.begin, seg.end), (0, 0));
    }

    // Ported from blob_test.cc StringSerialization.
    #[test]
    fn string_blob_serializes_as_std_string_content() {
        let p = serialize_blob_to_proto("test", &BlobContent::String(b"Hello world?".to_vec()))
            .unwrap();
        assert_eq!(p.r#type.as_deref(), Some("std::string"));
        assert!(p.tensor.is_none());
        assert_eq!(p.content.as_deref(), Some(&b"Hello world?"[..]));
        let blob = Blob::new();
        assert_eq!(
            deserialize_blob(p, &blob, true).unwrap(),
            Deserialized::Whole
        );
        assert_eq!(blob.string().unwrap(), b"Hello world?");
    }

    #[test]
    fn unknown_blob_proto_type_is_an_enforce() {
        let p = BlobProto {
            r#type: Some("Foo".into()),
            ..Default::default()
        };
        let e = deserialize_blob(p, &Blob::new(), true).unwrap_err();
        assert_eq!(e.message(), "No registered deserializer for type Foo");
        assert!(serialize_blob_to_proto("x", &BlobContent::Empty).is_err());
    }

    fn chunk_of(t: &Tensor, range: Range<usize>) -> TensorChunk {
        let mut p = tensor_range_to_proto(t, range, true).unwrap();
        p.name = None;
        TensorChunk::decode(p).unwrap()
    }

    #[test]
    fn assembly_stages_chunks_until_they_back_most_of_the_tensor() {
        // 10M floats (40 MB, more than twice the zero-fill allowance) in chunks of 1M.
        let n = 10_000_000usize;
        let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let t = Tensor::from_slice(DataType::Float, &[n as i64], &values).unwrap();
        let mut a = TensorAssembly::new(&chunk_of(&t, 0..1));
        // Out of order, as LMDB's key order gives them ("#%10" before "#%2").
        for (k, begin) in [9usize, 0, 5, 3, 7, 1, 8, 2, 6, 4].into_iter().enumerate() {
            let range = begin * 1_000_000..(begin + 1) * 1_000_000;
            a.add(chunk_of(&t, range)).unwrap();
            // The tensor is allocated once the chunks received back as much as is missing
            // (5 chunks: 20 of 40 MB); until then only the chunks themselves are held.
            assert_eq!(a.target.is_some(), k + 1 >= 5, "after {} chunks", k + 1);
        }
        assert!(a.is_complete());
        assert_eq!(a.tensor().unwrap(), t);
    }

    #[test]
    fn assembly_refuses_foreign_chunks_and_elements_beyond_the_tensor() {
        let t = Tensor::from_slice(DataType::Int32, &[4], &[1i32, 2, 3, 4]).unwrap();
        let mut a = TensorAssembly::new(&chunk_of(&t, 0..2));
        a.add(chunk_of(&t, 0..2)).unwrap();
        let other = Tensor::from_slice(DataType::Int32, &[5], &[1i32; 5]).unwrap();
        let e = a.add(chunk_of(&other, 2..4)).unwrap_err();
        assert!(e.message().contains("does not belong"), "{}", e.message());
        a.add(chunk_of(&t, 2..4)).unwrap();
        assert_eq!(a.tensor().unwrap(), t);
        let e = a.add(chunk_of(&t, 3..4)).unwrap_err();
        assert_eq!(e.message(), "loaded 5 elements, the tensor has 4");
        // An incomplete assembly has no tensor; an empty tensor is complete at once.
        let b = TensorAssembly::new(&chunk_of(&t, 0..1));
        assert!(b.tensor().is_err());
        let empty = Tensor::zeros(DataType::Float, &[0, 3]).unwrap();
        let mut c = TensorAssembly::new(&chunk_of(&empty, 0..0));
        c.add(chunk_of(&empty, 0..0)).unwrap();
        assert_eq!(c.tensor().unwrap().dims(), &[0, 3]);
    }

    #[test]
    fn a_chunk_claiming_a_huge_tensor_allocates_only_its_own_elements() {
        let p = TensorProto {
            dims: vec![1 << 40],
            data_type: Some(DataType::Float.as_i32()),
            float_data: vec![7.0],
            segment: Some(crate::proto::tensor_proto::Segment { begin: 5, end: 6 }),
            ..Default::default()
        };
        let chunk = TensorChunk::decode(p.clone()).unwrap();
        assert_eq!((chunk.range.clone(), chunk.part.nbytes()), (5..6, 4));
        let mut a = TensorAssembly::new(&chunk);
        a.add(chunk).unwrap();
        assert!(a.target.is_none() && !a.is_complete());
        // On its own (one BlobProto) the chunk would need 4 TiB of zeros: refused.
        let blob = Blob::new();
        let e = deserialize_blob(
            BlobProto {
                r#type: Some(TENSOR_PROTO_TYPE.into()),
                tensor: Some(p),
                ..Default::default()
            },
            &blob,
            true,
        )
        .unwrap_err();
        assert!(
            e.message().contains("are not in the input"),
            "{}",
            e.message()
        );
        assert!(blob.is_empty());
    }

    #[test]
    fn string_tensors_chunk_and_reassemble() {
        let t = Tensor::from_strings(
            &[3],
            vec![b"a".to_vec(), Vec::new(), "\u{e9}".as_bytes().to_vec()],
        )
        .unwrap();
        let blob = Blob::new();
        for (i, (_, p)) in records("s", &t, 2).into_iter().enumerate() {
            deserialize_blob(p, &blob, i == 0).unwrap();
        }
        assert_eq!(blob.tensor().unwrap(), t);
    }
}
