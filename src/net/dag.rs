//! The DAG executor: operators whose dependencies are done run in parallel on `num_workers`
//! threads. Edges: read-after-write (inputs and `control_input`), write-after-write and
//! write-after-read, deduplicated, no self edges. The first failure stops scheduling, cancels
//! the operators still running, and `run` returns that first error. (Caffe2's chain merging
//! is not done: it changes scheduling granularity, not results.)

use std::collections::{BTreeSet, HashMap, VecDeque};

use parking_lot::{Condvar, Mutex};

use super::Net;
use crate::error::{C2rsError, Result};
use crate::operator::{Operator, run_operator};
use crate::proto::NetDef;

pub struct DagNet {
    def: NetDef,
    ops: Vec<Box<dyn Operator>>,
    /// Number of parents of each op.
    parent_count: Vec<usize>,
    /// Children of each op, sorted, unique.
    children: Vec<Vec<usize>>,
    num_workers: usize,
}

/// Dependency edges of `def`'s operators: `parents[i]` are the ops `i` must wait for.
pub fn dependencies(def: &NetDef) -> Vec<BTreeSet<usize>> {
    let mut last_writer: HashMap<&str, usize> = HashMap::new();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut parents = Vec::with_capacity(def.op.len());
    for (i, op) in def.op.iter().enumerate() {
        let mut deps = BTreeSet::new();
        for name in op.input.iter().chain(op.control_input.iter()) {
            if let Some(&w) = last_writer.get(name.as_str()) {
                deps.insert(w);
            }
            readers.entry(name.as_str()).or_default().push(i);
        }
        for name in &op.output {
            if let Some(&w) = last_writer.get(name.as_str()) {
                deps.insert(w);
            }
            if let Some(rs) = readers.get_mut(name.as_str()) {
                deps.extend(rs.iter().copied());
                rs.clear();
            }
            last_writer.insert(name.as_str(), i);
        }
        deps.remove(&i);
        parents.push(deps);
    }
    parents
}

/// Per-run scheduling state, guarded by `RunState::inner`.
struct Inner {
    /// Unfinished parents per op.
    waiting_on: Vec<usize>,
    ready: VecDeque<usize>,
    running: Vec<bool>,
    finished: usize,
    /// The first failure; once set nothing new is scheduled.
    failure: Option<C2rsError>,
}

struct RunState {
    /// Invariant: an op is in at most one of `ready`, `running` (true), finished; workers
    /// exit when `failure` is set or every op finished. Lock order: this mutex only; operator
    /// `run`/`cancel` are called without it.
    inner: Mutex<Inner>,
    /// Signalled when an op becomes ready, when the run completes or when it fails.
    changed: Condvar,
}

impl DagNet {
    pub fn new(def: NetDef, ops: Vec<Box<dyn Operator>>, num_workers: usize) -> Self {
        let parents = dependencies(&def);
        let mut children = vec![Vec::new(); ops.len()];
        for (i, ps) in parents.iter().enumerate() {
            for &p in ps {
                children[p].push(i);
            }
        }
        Self {
            parent_count: parents.iter().map(BTreeSet::len).collect(),
            children,
            def,
            ops,
            num_workers: num_workers.max(1),
        }
    }

    pub fn num_workers(&self) -> usize {
        self.num_workers
    }

    fn worker(&self, state: &RunState) {
        let n = self.ops.len();
        let mut inner = state.inner.lock();
        loop {
            if inner.failure.is_some() || inner.finished == n {
                return;
            }
            let Some(i) = inner.ready.pop_front() else {
                state.changed.wait(&mut inner);
                continue;
            };
            inner.running[i] = true;
            drop(inner);
            let result = run_operator(self.ops[i].as_ref());
            inner = state.inner.lock();
            inner.running[i] = false;
            inner.finished += 1;
            match result {
                Ok(()) => {
                    for &c in &self.children[i] {
                        inner.waiting_on[c] -= 1;
                        if inner.waiting_on[c] == 0 {
                            inner.ready.push_back(c);
                        }
                    }
                    state.changed.notify_all();
                }
                Err(e) => {
                    if inner.failure.is_none() {
                        inner.failure = Some(e);
                        let running: Vec<usize> = (0..n).filter(|&j| inner.running[j]).collect();
                        state.changed.notify_all();
                        drop(inner);
                        for j in running {
                            self.ops[j].cancel();
                        }
                        return;
                    }
                }
            }
        }
    }
}

impl Net for DagNet {
    fn def(&self) -> &NetDef {
        &self.def
    }
    fn operators(&self) -> &[Box<dyn Operator>] {
        &self.ops
    }
    fn run(&self) -> Result<()> {
        let n = self.ops.len();
        if n == 0 {
            return Ok(());
        }
        let ready: VecDeque<usize> = (0..n).filter(|&i| self.parent_count[i] == 0).collect();
        let state = RunState {
            inner: Mutex::new(Inner {
                waiting_on: self.parent_count.clone(),
                ready,
                running: vec![false; n],
                finished: 0,
                failure: None,
            }),
            changed: Condvar::new(),
        };
        let workers = self.num_workers.min(n);
        if workers == 1 {
            self.worker(&state);
        } else {
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| self.worker(&state));
                }
            });
        }
        let inner = state.inner.into_inner();
        match inner.failure {
            Some(e) => Err(e),
            None => {
                debug_assert_eq!(inner.finished, n);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::OperatorDef;

    fn op(inputs: &[&str], outputs: &[&str]) -> OperatorDef {
        OperatorDef {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn edges_cover_raw_waw_war_and_control_inputs() {
        let mut c = op(&[], &["z"]);
        c.control_input.push("a".into());
        let def = NetDef {
            op: vec![
                op(&["in"], &["a"]),     // 0
                op(&["in"], &["b"]),     // 1: independent of 0
                op(&["a"], &["a"]),      // 2: RAW + WAW on a (in place)
                op(&["a", "b"], &["c"]), // 3: RAW on 2 and 1
                op(&[], &["b"]),         // 4: WAW on 1, WAR on 3
                c,                       // 5: control input a -> 2
            ],
            ..Default::default()
        };
        let deps = dependencies(&def);
        let as_vec = |i: usize| deps[i].iter().copied().collect::<Vec<_>>();
        assert!(deps[0].is_empty() && deps[1].is_empty());
        assert_eq!(as_vec(2), [0]);
        assert_eq!(as_vec(3), [1, 2]);
        assert_eq!(as_vec(4), [1, 3]);
        assert_eq!(as_vec(5), [2]);
    }
}
