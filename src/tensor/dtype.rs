//! Caffe2 element types, numbered as `TensorProto.DataType`.

use crate::error::{C2rsError, Result};

/// A tensor element type. The discriminants are Caffe2's `TensorProto.DataType` numbers,
/// which are also the integers that cross the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum DataType {
    Float = 1,
    Int32 = 2,
    /// Legacy byte payload (MNIST/CIFAR era DBs); stored as `u8`, kept distinct from UINT8 so
    /// a decoded BYTE tensor re-encodes exactly as it was read (`byte_data`, BYTE).
    Byte = 3,
    String = 4,
    Bool = 5,
    Uint8 = 6,
    Int8 = 7,
    Uint16 = 8,
    Int16 = 9,
    Int64 = 10,
    Float16 = 12,
    Double = 13,
}

impl DataType {
    /// Every supported dtype, in Caffe2 numbering order.
    pub const ALL: [DataType; 12] = [
        DataType::Float,
        DataType::Int32,
        DataType::Byte,
        DataType::String,
        DataType::Bool,
        DataType::Uint8,
        DataType::Int8,
        DataType::Uint16,
        DataType::Int16,
        DataType::Int64,
        DataType::Float16,
        DataType::Double,
    ];

    /// Bytes per element in CPU storage; `None` for STRING, whose elements are byte strings.
    pub fn item_size(self) -> Option<usize> {
        match self {
            DataType::Byte | DataType::Bool | DataType::Uint8 | DataType::Int8 => Some(1),
            DataType::Uint16 | DataType::Int16 | DataType::Float16 => Some(2),
            DataType::Float | DataType::Int32 => Some(4),
            DataType::Int64 | DataType::Double => Some(8),
            DataType::String => None,
        }
    }

    /// The Caffe2 enum name (`FLOAT`, `INT32`, …).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Float => "FLOAT",
            DataType::Int32 => "INT32",
            DataType::Byte => "BYTE",
            DataType::String => "STRING",
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Int8 => "INT8",
            DataType::Uint16 => "UINT16",
            DataType::Int16 => "INT16",
            DataType::Int64 => "INT64",
            DataType::Float16 => "FLOAT16",
            DataType::Double => "DOUBLE",
        }
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

impl TryFrom<i32> for DataType {
    type Error = C2rsError;

    /// Caffe2's numbers that are not tensor element types (UNDEFINED 0, 11,
    /// ZERO_COLLISION_HASH 14, REBATCHING_BUFFER 15) are `Unsupported`; anything else unknown is
    /// `InvalidArgument`. Callers decoding bytes re-classify the latter as a parse error.
    fn try_from(value: i32) -> Result<Self> {
        DataType::ALL
            .iter()
            .copied()
            .find(|d| d.as_i32() == value)
            .ok_or_else(|| match value {
                0 => C2rsError::unsupported("data type UNDEFINED (0) has no tensor storage"),
                14 => C2rsError::unsupported(
                    "data type ZERO_COLLISION_HASH (14) is not a tensor element type",
                ),
                15 => C2rsError::unsupported(
                    "data type REBATCHING_BUFFER (15) is not a tensor element type",
                ),
                _ => C2rsError::invalid_argument(format!("Unknown data type: {value}")),
            })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_caffe2() {
        let expected = [
            (1, "FLOAT"),
            (2, "INT32"),
            (3, "BYTE"),
            (4, "STRING"),
            (5, "BOOL"),
            (6, "UINT8"),
            (7, "INT8"),
            (8, "UINT16"),
            (9, "INT16"),
            (10, "INT64"),
            (12, "FLOAT16"),
            (13, "DOUBLE"),
        ];
        for (n, name) in expected {
            let d = DataType::try_from(n).expect("known dtype");
            assert_eq!(d.as_i32(), n);
            assert_eq!(d.name(), name);
        }
    }

    #[test]
    fn non_tensor_numbers_are_rejected_with_their_reason() {
        for n in [0, 14, 15] {
            let e = DataType::try_from(n).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Unsupported, "{n}");
        }
        for n in [-1, 11, 16, 1000] {
            let e = DataType::try_from(n).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
            assert_eq!(e.message(), format!("Unknown data type: {n}"));
        }
    }
}
