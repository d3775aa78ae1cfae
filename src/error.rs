//! The one error type every area returns. The kind is chosen where the error arises (through
//! the named constructors); `ffi::guard` alone translates it into a C status code.

use std::fmt;

/// What went wrong, one variant per C status code (see `ffi::status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A Caffe2 `CAFFE_ENFORCE` failed: a recoverable precondition on values or state.
    Enforce,
    /// An argument is NULL, out of range or otherwise unusable.
    InvalidArgument,
    /// A named thing (blob, net, operator type, file) does not exist.
    NotFound,
    /// A named thing already exists and may not be replaced.
    AlreadyExists,
    /// A value has another dtype or blob type than the caller expects.
    TypeMismatch,
    /// Inputs or outputs disagree with an operator schema.
    SchemaMismatch,
    /// The request is valid but not supported by this build or this data.
    Unsupported,
    /// An operator or net ran and reported failure.
    RunFailed,
    /// Bytes could not be decoded, or decode to inconsistent content.
    Parse,
    /// A queue or stream was closed.
    Closed,
    /// A deadline passed.
    Timeout,
    /// The operating system refused a file or device operation.
    Io,
    /// Code panicked; the boundary caught it.
    Panic,
    /// A broken internal invariant.
    Internal,
}

/// An error with its kind and a message meant for the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct C2rsError {
    kind: ErrorKind,
    message: String,
}

impl C2rsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn enforce(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Enforce, message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    pub fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TypeMismatch, message)
    }
    pub fn schema_mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::SchemaMismatch, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn run_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RunFailed, message)
    }
    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Parse, message)
    }
    pub fn closed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Closed, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }
    pub fn panic(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Panic, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The error for a caught panic: `panic: <payload text>`.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let text = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a non-string payload".to_string()
        };
        Self::panic(format!("panic: {text}"))
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with context, e.g. the operator that failed:
    /// `op #3 (DequeueBlobs): <message>`.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl fmt::Display for C2rsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for C2rsError {}

/// Result alias used throughout the crate.
pub type Result<T, E = C2rsError> = std::result::Result<T, E>;
