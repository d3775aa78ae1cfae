//! caffe2rs: Caffe2's data and memory runtime (queues, workspaces, device contexts, the
//! memory optimizer, TensorProtos and databases) in Rust, behind a stable C ABI.
//!
//! Module wiring only. Area modules hold the logic as safe Rust; `ffi` converts, checks
//! and forwards, and is the only module with `extern "C"` functions.

pub mod context;
pub mod db;
pub mod error;
pub mod ffi;
pub mod memonger;
pub mod net;
pub mod operator;
pub mod ops;
pub mod proto;
pub mod queue;
pub mod tensor;
pub mod workspace;

pub use error::{C2rsError, ErrorKind, Result};
