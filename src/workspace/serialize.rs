//! Blob ⇄ `BlobProto` as Caffe2 stores blobs in DBs (shared/spec/data-input.md §3, §5):
//! tensors as one `BlobProto` per chunk (key `<name>#%<k>`, full dims, segment always set),
//! byte strings as `std::string` content, DB readers as a `DBReaderProto` in `content`.

use std::sync::Arc;

use prost::Message;

use super::blob::{Blob, BlobContent};
use crate::db::DbReader;
use crate::error::{C2rsError, Result};
use crate::ops::counter_ops::Counter;
use crate::ops::iter_ops::BlobMutex;
use crate::proto::{BlobProto, DbReaderProto, DeviceOption, TensorProto};
use crate::tensor::{DataType, Tensor, checked_numel, tensor_from_proto, tensor_range_to_proto};

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
/// otherwise the blob is replaced by a fresh zeroed tensor first.
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

fn deserialize_tensor_chunk(
    mut proto: TensorProto,
    blob: &Blob,
    reset: bool,
) -> Result<Deserialized> {
    let raw_dtype = proto.data_type.unwrap_or(DataType::Float.as_i32());
    let dtype = DataType::try_from(raw_dtype).map_err(|e| C2rsError::parse(e.message()))?;
    let dims = proto.dims.clone();
    let numel = checked_numel(&dims).map_err(|e| C2rsError::parse(e.message()))?;
    let had_segment = proto.segment.is_some();
    let (begin, end) = match &proto.segment {
        Some(s) => {
            let ok = 0 <= s.begin
                && s.begin <= s.end
                && usize::try_from(s.end).is_ok_and(|e| e <= numel);
            if !ok {
                return Err(C2rsError::parse(format!(
                    "segment [{}, {}) lies outside a tensor of {numel} elements",
                    s.begin, s.end
                )));
            }
            (s.begin as usize, s.end as usize)
        }
        None => (0, numel),
    };
    // Decode only the segment (a 1-D tensor of its length), then place it.
    proto.dims = vec![(end - begin) as i64];
    proto.segment = None;
    let part = tensor_from_proto(&proto)?;
    let mut guard = blob.write();
    let reuse = !reset
        && matches!(&*guard, BlobContent::Tensor(t) if t.dtype() == dtype && t.dims() == dims.as_slice());
    if !reuse {
        *guard = BlobContent::Tensor(Tensor::zeros(dtype, &dims)?);
    }
    let BlobContent::Tensor(target) = &mut *guard else {
        return Err(C2rsError::internal("tensor blob changed type while locked"));
    };
    if dtype == DataType::String {
        target.strings_mut()?[begin..end].clone_from_slice(part.strings()?);
    } else {
        let item = dtype.item_size().unwrap_or(0);
        target.bytes_mut()?[begin * item..end * item].copy_from_slice(part.bytes()?);
    }
    Ok(Deserialized::TensorChunk {
        begin,
        end,
        numel,
        had_segment,
    })
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
