//! The DAG executor: operators whose dependencies are done run in parallel on `num_workers`
//! threads. Edges: read-after-write (inputs and `control_input`), write-after-write and
//! write-after-read, deduplicated, no self edges. The first failure stops scheduling, cancels
//! the operators still running, and `run` returns that first error. (Caffe2's chain merging
//! is not done: it changes scheduling granularity, not results.)

use std::collections::{BTreeSet, HashMap, VecDeque};

use std::sync::Arc;

use once_cell::sync::OnceCell;
use parking_lot::{Condvar, Mutex};

use super::Net;
use crate::error::{C2rsError, Result};
use crate::operator::{Operator, run_operator};
use crate::proto::NetDef;

pub struct DagNet {
    def: NetDef,
    shared: Arc<Shared>,
    num_workers: usize,
    /// Helper threads (`num_workers - 1`; the calling thread is the last worker), started
    /// on the first run and joined on drop.
    pool: OnceCell<Pool>,
}

/// What helper threads need from the net.
struct Shared {
    ops: Vec<Box<dyn Operator>>,
    /// Number of parents of each op.
    parent_count: Vec<usize>,
    /// Children of each op, sorted, unique.
    children: Vec<Vec<usize>>,
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
    /// Ops currently running (number of `true` in `running`).
    active: usize,
    finished: usize,
    /// The first failure; once set nothing new is scheduled.
    failure: Option<C2rsError>,
}

/// One run of the net, shared by the calling thread and the helpers that join it.
struct RunState {
    /// Invariant: an op is in at most one of `ready`, running, finished. Workers leave when
    /// `failure` is set or every op finished. Lock order: this mutex only; operator
    /// `run`/`cancel` are called without it.
    inner: Mutex<Inner>,
    /// Signalled when an op becomes ready or finishes, and when the run fails.
    changed: Condvar,
}

/// Runs handed to helper threads; `shutdown` ends them.
struct JobQueue {
    /// Guards the pending runs and the shutdown flag.
    jobs: Mutex<(VecDeque<Arc<RunState>>, bool)>,
    /// Signalled when a run is queued or on shutdown.
    available: Condvar,
}

struct Pool {
    queue: Arc<JobQueue>,
    helpers: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn start(shared: &Arc<Shared>, helpers: usize) -> Self {
        let queue = Arc::new(JobQueue {
            jobs: Mutex::new((VecDeque::new(), false)),
            available: Condvar::new(),
        });
        let mut handles = Vec::with_capacity(helpers);
        for k in 0..helpers {
            let (queue, shared) = (Arc::clone(&queue), Arc::clone(shared));
            let spawned = std::thread::Builder::new()
                .name(format!("c2rs-dag-{k}"))
                .spawn(move || helper_loop(&queue, &shared));
            // Without a helper the calling thread still runs every op: fewer threads, same
            // result. The OS refusing one thread means it refuses the next ones too: stop.
            match spawned {
                Ok(h) => handles.push(h),
                Err(_) => break,
            }
        }
        Self {
            queue,
            helpers: handles,
        }
    }

    fn submit(&self, run: &Arc<RunState>) {
        let mut jobs = self.queue.jobs.lock();
        for _ in 0..self.helpers.len() {
            jobs.0.push_back(Arc::clone(run));
        }
        self.queue.available.notify_all();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.queue.jobs.lock().1 = true;
        self.queue.available.notify_all();
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}

fn helper_loop(queue: &JobQueue, shared: &Shared) {
    loop {
        let run = {
            let mut jobs = queue.jobs.lock();
            loop {
                if let Some(r) = jobs.0.pop_front() {
                    break r;
                }
                if jobs.1 {
                    return;
                }
                queue.available.wait(&mut jobs);
            }
        };
        shared.work(&run);
    }
}

impl Shared {
    /// Takes ready ops of `state` and runs them until the run is over or has failed.
    fn work(&self, state: &RunState) {
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
            inner.active += 1;
            drop(inner);
            let result = run_operator(self.ops[i].as_ref());
            inner = state.inner.lock();
            inner.running[i] = false;
            inner.active -= 1;
            inner.finished += 1;
            state.changed.notify_all();
            match result {
                Ok(()) => {
                    for &c in &self.children[i] {
                        inner.waiting_on[c] -= 1;
                        if inner.waiting_on[c] == 0 {
                            inner.ready.push_back(c);
                        }
                    }
                }
                Err(e) => {
                    if inner.failure.is_none() {
                        inner.failure = Some(e);
                        let running: Vec<usize> = (0..n).filter(|&j| inner.running[j]).collect();
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
            shared: Arc::new(Shared {
                parent_count: parents.iter().map(BTreeSet::len).collect(),
                children,
                ops,
            }),
            def,
            num_workers: num_workers.max(1),
            pool: OnceCell::new(),
        }
    }

    pub fn num_workers(&self) -> usize {
        self.num_workers
    }
}

impl Net for DagNet {
    fn def(&self) -> &NetDef {
        &self.def
    }
    fn operators(&self) -> &[Box<dyn Operator>] {
        &self.shared.ops
    }
    fn run(&self) -> Result<()> {
        let n = self.shared.ops.len();
        if n == 0 {
            return Ok(());
        }
        let state = Arc::new(RunState {
            inner: Mutex::new(Inner {
                waiting_on: self.shared.parent_count.clone(),
                ready: (0..n)
                    .filter(|&i| self.shared.parent_count[i] == 0)
                    .collect(),
                running: vec![false; n],
                active: 0,
                finished: 0,
                failure: None,
            }),
            changed: Condvar::new(),
        });
        let helpers = self.num_workers.min(n) - 1;
        if helpers > 0 {
            self.pool
                .get_or_init(|| Pool::start(&self.shared, helpers))
                .submit(&state);
        }
        self.shared.work(&state);
        // Wait for ops still running on helpers (after a failure, or the last ones).
        let mut inner = state.inner.lock();
        while inner.active > 0 || (inner.failure.is_none() && inner.finished < n) {
            state.changed.wait(&mut inner);
        }
        // Clone, not take: helpers may still pick up this run's queued job and must see
        // that it failed.
        match inner.failure.clone() {
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
