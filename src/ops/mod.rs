//! Operator implementations, one file per family, each with a `register(&mut Registry)`
//! called from `operator::register_builtin_ops`.

pub mod basic_ops;
pub mod copy_ops;
pub mod counter_ops;
pub mod db_ops;
pub mod given_fill_ops;
pub mod iter_ops;
pub mod load_save_ops;
pub mod queue_docs;
pub mod queue_ops;
pub mod rebatching_ops;
pub mod timer_ops;
pub mod utility_ops;
pub mod workspace_ops;

use crate::error::Result;
use crate::operator::{OpBase, Operator};

/// An operator whose run is a plain function of its base (no state of its own).
pub struct FnOperator {
    base: OpBase,
    run: fn(&OpBase) -> Result<bool>,
}

impl FnOperator {
    pub fn boxed(base: OpBase, run: fn(&OpBase) -> Result<bool>) -> Box<dyn Operator> {
        Box::new(Self { base, run })
    }
}

impl Operator for FnOperator {
    fn base(&self) -> &OpBase {
        &self.base
    }
    fn run(&self) -> Result<bool> {
        (self.run)(&self.base)
    }
}
