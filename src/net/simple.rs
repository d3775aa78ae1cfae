//! The sequential executor: operators run in order; the first failure stops the run.

use super::Net;
use crate::error::Result;
use crate::operator::{Operator, run_operator};
use crate::proto::NetDef;

pub struct SimpleNet {
    def: NetDef,
    ops: Vec<Box<dyn Operator>>,
}

impl SimpleNet {
    pub fn new(def: NetDef, ops: Vec<Box<dyn Operator>>) -> Self {
        Self { def, ops }
    }
}

impl Net for SimpleNet {
    fn def(&self) -> &NetDef {
        &self.def
    }
    fn operators(&self) -> &[Box<dyn Operator>] {
        &self.ops
    }
    fn run(&self) -> Result<()> {
        for op in &self.ops {
            run_operator(op.as_ref())?;
        }
        Ok(())
    }
}
