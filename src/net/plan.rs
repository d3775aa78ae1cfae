//! Plans: Caffe2's `RunPlan` (`caffe2/core/plan_executor.cc` semantics). A `PlanDef` holds
//! net definitions and a list of `ExecutionStep`s run in order; a step runs its `network`s
//! or its `substep`s, repeated `num_iter` times or until its `should_stop_blob` is true,
//! sequentially or one thread per substep (`concurrent_substeps`, × `num_concurrent_instances`),
//! with a `report_net` and `run_every_ms` substeps on background threads while it runs, in a
//! fresh child workspace per execution when `create_workspace` is set.
//!
//! A top-level step is compiled (its nets created, its stop blob looked up, recursively for
//! substeps without `create_workspace`) right before it runs, so a net may use blobs an
//! earlier step made. A plan net that already existed before the plan is overwritten once;
//! a missing one is created.
//!
//! Failure and cancellation (differences from Caffe2 are marked "new"):
//! - The first failure anywhere stops the whole plan: no net, iteration or substep starts
//!   afterwards, and the plan returns that failure prefixed with its step path, e.g.
//!   `plan p: step s / substep t: op #2 (DequeueBlobs): …`. Caffe2 aborted the process on
//!   an exception in a worker thread.
//! - After a failure the operators of the plan's nets get their `cancel()` hook (Caffe2's
//!   `Cancel`: a blocked queue operator closes its queue), **except** operators that touch a
//!   native object (queue, reader, counter …) which existed when the plan started (new):
//!   the plan closes nothing it did not open. An operator blocked on such a host queue is
//!   woken when the host closes the queue or calls `Workspace::cancel_plans`
//!   (`c2rs_workspace_cancel`), which cancels every operator of the plan's nets.
//! - `criteria_network` (deprecated in Caffe2) is refused (new); `report_interval`,
//!   `run_every_ms` and `num_concurrent_instances` must be positive when set, and one step
//!   starts at most `MAX_STEP_THREADS` threads (new: Caffe2 busy-looped or crashed).
//! - A report net or `run_every_ms` substep whose failure is "ran and reported failure"
//!   (`RunFailed`) is logged and ignored, as Caffe2 logged a `false` return; any other
//!   error stops the plan.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Net;
use crate::error::{C2rsError, ErrorKind, Result};
use crate::operator::Operator;
use crate::proto::{ExecutionStep, NetDef, PlanDef};
use crate::tensor::DataType;
use crate::workspace::{Blob, BlobContent, NativeObject, Workspace};

/// The most threads one step may run at once (concurrent substeps × instances).
pub const MAX_STEP_THREADS: usize = 4096;
/// The most threads one plan may run at once, all steps, reporters and nesting levels
/// together: a hostile plan of nested concurrent steps fails instead of exhausting the host.
pub const MAX_PLAN_THREADS: usize = 8192;

/// The shared state of one running plan: its stop flag, first failure and the nets it built,
/// reachable from other threads (`Workspace::cancel_plans`).
pub struct PlanControl {
    name: String,
    /// Set once (Release) by the first failure or a cancel, never cleared. Read (Acquire)
    /// before every net run, iteration, substep and compile, and under `nets` when a net is
    /// registered, so a net built after a cancel is refused rather than missed by the sweep.
    stopped: AtomicBool,
    /// The failure the plan returns: the first one recorded. Never held while anything
    /// else is locked or running.
    first_error: Mutex<Option<C2rsError>>,
    /// Every net the plan built (weak: a `create_workspace` step's nets die with its child
    /// workspace). Invariant: once `stopped` is set no net is added. Lock order: taken alone;
    /// the sweep copies the list out and cancels operators without it.
    nets: Mutex<Vec<Weak<dyn Net>>>,
    /// Native objects (queues, readers, counters …) present in the workspace when the plan
    /// started. Kept alive here, so their addresses cannot be reused by new objects.
    preexisting: Vec<NativeObject>,
    /// Whether the failure sweep ran (it runs once; a host cancel sweeps again, fully).
    failure_swept: AtomicBool,
    /// Threads the plan runs now (concurrent substeps and reporters). Only a budget count
    /// (`MAX_PLAN_THREADS`): no data is published through it, so Relaxed suffices.
    threads: AtomicUsize,
}

impl PlanControl {
    /// Control for a plan `name` about to run on `ws`: records the native objects visible in
    /// `ws` now (local, forwarded and parent blobs) as not the plan's own.
    pub fn new(name: &str, ws: &Workspace) -> Arc<Self> {
        let mut preexisting = Vec::new();
        for blob_name in ws.blobs() {
            if let Some(blob) = ws.get_blob(&blob_name) {
                if let BlobContent::Native(n) = &*blob.read() {
                    preexisting.push(n.clone());
                }
            }
        }
        Arc::new(Self {
            name: name.to_string(),
            stopped: AtomicBool::new(false),
            first_error: Mutex::new(None),
            nets: Mutex::new(Vec::new()),
            preexisting,
            failure_swept: AtomicBool::new(false),
            threads: AtomicUsize::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The error a stopped plan's steps return: the first failure (or the cancellation).
    fn stop_error(&self) -> C2rsError {
        self.first_error
            .lock()
            .clone()
            .unwrap_or_else(|| C2rsError::run_failed("plan stopped"))
    }

    /// `Err(first failure)` once the plan is stopped.
    fn check(&self) -> Result<()> {
        if self.is_stopped() {
            return Err(self.stop_error());
        }
        Ok(())
    }

    /// Keeps `e` if it is the first failure, stops the plan and, the first time, cancels the
    /// operators of its nets that touch nothing the plan did not open.
    fn fail(&self, e: C2rsError) {
        {
            let mut first = self.first_error.lock();
            if first.is_none() {
                *first = Some(e);
            }
        }
        self.stopped.store(true, Ordering::Release);
        if !self.failure_swept.swap(true, Ordering::AcqRel) {
            self.sweep(false);
        }
    }

    /// A host cancel: stops the plan (unless it already failed, it returns "cancelled") and
    /// cancels every operator of its nets, including those waiting on the host's queues.
    pub fn cancel(&self) {
        {
            let mut first = self.first_error.lock();
            if first.is_none() {
                *first = Some(C2rsError::run_failed(
                    "cancelled (c2rs_workspace_cancel / Workspace::cancel_plans)",
                ));
            }
        }
        self.stopped.store(true, Ordering::Release);
        self.sweep(true);
    }

    /// Adds a net the plan built; refused once the plan is stopped.
    fn register_net(&self, net: &Arc<dyn Net>) -> Result<()> {
        let mut nets = self.nets.lock();
        if self.is_stopped() {
            drop(nets);
            return Err(self.stop_error());
        }
        nets.retain(|w| w.strong_count() > 0);
        nets.push(Arc::downgrade(net));
        Ok(())
    }

    /// Whether `op` reads or writes a native object that existed before the plan.
    fn touches_preexisting(&self, op: &dyn Operator) -> bool {
        let base = op.base();
        base.inputs()
            .iter()
            .chain(base.outputs())
            .any(|b| match &*b.read() {
                BlobContent::Native(n) => self.preexisting.iter().any(|p| p.same_object(n)),
                _ => false,
            })
    }

    /// Calls the cancel hook of the operators of every live plan net (`all`), or of those
    /// touching only what the plan opened.
    fn sweep(&self, all: bool) {
        let nets: Vec<Arc<dyn Net>> = self.nets.lock().iter().filter_map(Weak::upgrade).collect();
        for net in nets {
            for op in net.operators() {
                if all || !self.touches_preexisting(op.as_ref()) {
                    // A host cancel callback that panics must not stop the sweep.
                    let _ = catch_unwind(AssertUnwindSafe(|| op.cancel()));
                }
            }
        }
    }
}

/// Runs `plan` on `ws` under `control`. Errors read `plan <p>: step <s> / substep <t>: …`.
pub fn run_plan(ws: &Arc<Workspace>, plan: &PlanDef, control: &PlanControl) -> Result<()> {
    if plan.execution_step.is_empty() {
        // Caffe2 warns "Nothing to run - did you define a correct plan?" and succeeds.
        return Ok(());
    }
    let prefix = format!("plan {}", plan.name());
    let mut net_defs = HashMap::new();
    for def in &plan.network {
        if net_defs.contains_key(def.name()) {
            return Err(C2rsError::enforce(format!(
                "Your plan contains networks of the same name \"{}\", which should not happen. \
                 Check your plan to see if you made a programming error in creating the plan.",
                def.name()
            ))
            .context(&prefix));
        }
        net_defs.insert(
            def.name(),
            NetDefInfo {
                def,
                needs_override: AtomicBool::new(ws.has_net(def.name())),
            },
        );
    }
    let runner = Runner { net_defs, control };
    for step in &plan.execution_step {
        let result = control.check().and_then(|()| {
            let wrapper = runner.wrap(step, ws, format!("step {}", step.name()))?;
            runner.execute(&wrapper)
        });
        if let Err(e) = result {
            control.fail(e);
            return Err(control.stop_error().context(&prefix));
        }
    }
    Ok(())
}

/// A plan net definition and whether a net of that name existed before the plan (so it is
/// overwritten once, the first time a step uses it).
struct NetDefInfo<'p> {
    def: &'p NetDef,
    /// Cleared (Release) once the plan has built the net; read (Acquire) before building.
    needs_override: AtomicBool,
}

/// How many times a step's body runs.
#[derive(Clone, Copy)]
enum Continuation {
    /// `num_iter` iterations (default 1).
    Iterations(i64),
    /// Until the stop blob is true; only one iteration with `only_once`.
    UntilStopped { only_once: bool },
}

impl Continuation {
    fn of(step: &ExecutionStep) -> Result<Self> {
        if step.should_stop_blob.is_some() {
            if step.num_iter.is_some() {
                return Err(C2rsError::enforce(
                    "Must not specify num_iter if should_stop_blob is set",
                ));
            }
            return Ok(Continuation::UntilStopped {
                only_once: step.only_once(),
            });
        }
        if step.only_once.is_some() {
            return Err(C2rsError::enforce(
                "only_once is not supported without should_stop_blob",
            ));
        }
        Ok(Continuation::Iterations(step.num_iter.unwrap_or(1)))
    }

    fn allows(self, iter: i64) -> bool {
        match self {
            Continuation::Iterations(n) => iter < n,
            Continuation::UntilStopped { only_once } => !only_once || iter == 0,
        }
    }
}

/// A step ready to run: compiled now, or (`create_workspace`) compiled per execution.
struct StepWrapper<'p> {
    step: &'p ExecutionStep,
    path: String,
    /// The workspace the step runs in (the parent of its fresh child with `create_workspace`).
    ws: Arc<Workspace>,
    compiled: Option<CompiledStep<'p>>,
}

struct CompiledStep<'p> {
    body: Body<'p>,
    should_stop: Option<Arc<Blob>>,
    /// (net, name, interval)
    report: Option<(Arc<dyn Net>, String, Duration)>,
    continuation: Continuation,
    /// The child workspace of a `create_workspace` step, dropped with the compiled step.
    _own_ws: Option<Arc<Workspace>>,
}

enum Body<'p> {
    Nets(Vec<Arc<dyn Net>>),
    Substeps {
        recurring: Vec<StepWrapper<'p>>,
        /// (substep, period) of the `run_every_ms` substeps.
        periodic: Vec<(StepWrapper<'p>, Duration)>,
    },
}

struct Runner<'p> {
    net_defs: HashMap<&'p str, NetDefInfo<'p>>,
    control: &'p PlanControl,
}

/// `value` units of `unit_ms` milliseconds; `value` must be positive.
fn positive_duration(value: i64, what: &str, unit_ms: u64) -> Result<Duration> {
    u64::try_from(value)
        .ok()
        .filter(|&n| n > 0)
        .map(|n| Duration::from_millis(n.saturating_mul(unit_ms)))
        .ok_or_else(|| C2rsError::enforce(format!("{what} must be positive, got {value}")))
}

/// Caffe2's `getShouldStop`: an uninitialised blob reads false; otherwise it must hold a
/// scalar (one element) BOOL CPU tensor.
fn should_stop(blob: Option<&Arc<Blob>>, name: &str) -> Result<bool> {
    let Some(blob) = blob else {
        return Ok(false);
    };
    match &*blob.read() {
        BlobContent::Empty => Ok(false),
        BlobContent::Tensor(t) if t.dtype() == DataType::Bool && t.numel() == 1 => {
            Ok(t.typed::<u8>()?[0] != 0)
        }
        BlobContent::Tensor(t) => Err(C2rsError::enforce(format!(
            "should_stop_blob {name} expects a scalar boolean, it is a {} tensor of dims {:?}",
            t.dtype(),
            t.dims()
        ))),
        other => Err(C2rsError::enforce(format!(
            "should_stop_blob {name} expects a scalar boolean, it holds {}",
            other.type_name()
        ))),
    }
}

impl<'p> Runner<'p> {
    /// Wraps `step` to run in `ws`; compiles it now unless it creates its own workspace.
    fn wrap(
        &self,
        step: &'p ExecutionStep,
        ws: &Arc<Workspace>,
        path: String,
    ) -> Result<StepWrapper<'p>> {
        let compiled = if step.create_workspace() {
            None
        } else {
            Some(self.compile(step, ws, &path)?)
        };
        Ok(StepWrapper {
            step,
            path,
            ws: Arc::clone(ws),
            compiled,
        })
    }

    /// Caffe2's `CompiledExecutionStep`: creates the step's nets (and compiles substeps),
    /// looks up the stop blob, checks the step's fields. Errors carry `path`.
    fn compile(
        &self,
        step: &'p ExecutionStep,
        parent_ws: &Arc<Workspace>,
        path: &str,
    ) -> Result<CompiledStep<'p>> {
        self.control.check()?;
        #[allow(deprecated)] // read only to refuse it
        if step.criteria_network.is_some() {
            return Err(C2rsError::unsupported(format!(
                "ExecutionStep {}: criteria_network is deprecated and not supported; use \
                 should_stop_blob",
                step.name()
            ))
            .context(path));
        }
        let own_ws = step
            .create_workspace()
            .then(|| Workspace::new_child(parent_ws));
        let ws = own_ws.as_ref().unwrap_or(parent_ws);
        if !step.substep.is_empty() && !step.network.is_empty() {
            return Err(C2rsError::enforce(
                "An ExecutionStep should either have substep or networks but not both.",
            )
            .context(path));
        }
        let body = if step.substep.is_empty() {
            let mut nets = Vec::with_capacity(step.network.len());
            for name in &step.network {
                nets.push(self.net(ws, step, name).map_err(|e| e.context(path))?);
            }
            Body::Nets(nets)
        } else {
            let (mut recurring, mut periodic) = (Vec::new(), Vec::new());
            for ss in &step.substep {
                let sub_path = format!("{path} / substep {}", ss.name());
                let every = match ss.run_every_ms {
                    Some(ms) => Some(
                        positive_duration(ms, "run_every_ms", 1)
                            .map_err(|e| e.context(&sub_path))?,
                    ),
                    None => None,
                };
                let wrapper = self.wrap(ss, ws, sub_path)?;
                match every {
                    Some(period) => periodic.push((wrapper, period)),
                    None => recurring.push(wrapper),
                }
            }
            Body::Substeps {
                recurring,
                periodic,
            }
        };
        let should_stop = match &step.should_stop_blob {
            Some(name) => Some(ws.get_blob(name).ok_or_else(|| {
                C2rsError::enforce(format!("blob {name} does not exist")).context(path)
            })?),
            None => None,
        };
        let report = match &step.report_net {
            Some(name) => {
                let interval = step.report_interval.ok_or_else(|| {
                    C2rsError::enforce("A report_interval must be provided if report_net is set.")
                        .context(path)
                })?;
                let interval = positive_duration(i64::from(interval), "report_interval", 1000)
                    .map_err(|e| e.context(path))?;
                let net = self.net(ws, step, name).map_err(|e| e.context(path))?;
                Some((net, name.clone(), interval))
            }
            None => None,
        };
        let continuation = Continuation::of(step).map_err(|e| e.context(path))?;
        if let Some(n) = step.num_concurrent_instances {
            if n < 1 {
                return Err(C2rsError::enforce(format!(
                    "num_concurrent_instances must be >= 1, got {n}"
                ))
                .context(path));
            }
        }
        Ok(CompiledStep {
            body,
            should_stop,
            report,
            continuation,
            _own_ws: own_ws,
        })
    }

    /// The plan net `name` in `ws`, created (or overwritten once) as Caffe2 does.
    fn net(&self, ws: &Arc<Workspace>, step: &ExecutionStep, name: &str) -> Result<Arc<dyn Net>> {
        let info = self.net_defs.get(name).ok_or_else(|| {
            C2rsError::enforce(format!(
                "ExecutionStep {} uses undefined net {name}",
                step.name()
            ))
        })?;
        if info.needs_override.load(Ordering::Acquire) || !ws.has_net(name) {
            ws.create_net(info.def, true)?;
            info.needs_override.store(false, Ordering::Release);
        }
        let net = ws
            .get_net(name)
            .ok_or_else(|| C2rsError::enforce(format!("Network {name} not found.")))?;
        self.control.register_net(&net)?;
        Ok(net)
    }

    /// Caffe2's `ExecuteStepRecursive`.
    fn execute(&self, w: &StepWrapper<'p>) -> Result<()> {
        let fresh;
        let compiled = match &w.compiled {
            Some(c) => c,
            None => {
                fresh = self.compile(w.step, &w.ws, &w.path)?;
                &fresh
            }
        };
        let periodic = match &compiled.body {
            Body::Substeps { periodic, .. } => periodic.as_slice(),
            Body::Nets(_) => &[],
        };
        if compiled.report.is_none() && periodic.is_empty() {
            return self.run_body(w, compiled);
        }
        let signal = ReportSignal::default();
        std::thread::scope(|scope| {
            let started = self.start_reporters(scope, w, compiled, periodic, &signal);
            let result = started.and_then(|()| self.run_body(w, compiled));
            signal.finish();
            result
        })
    }

    /// Starts the report net and the `run_every_ms` substeps on their own threads.
    fn start_reporters<'s>(
        &'s self,
        scope: &'s std::thread::Scope<'s, '_>,
        w: &'s StepWrapper<'p>,
        compiled: &'s CompiledStep<'p>,
        periodic: &'s [(StepWrapper<'p>, Duration)],
        signal: &'s ReportSignal,
    ) -> Result<()> {
        if let Some((net, name, interval)) = &compiled.report {
            let what = format!("{} / report_net {name}", w.path);
            spawn(scope, self.control, &w.path, {
                let what = what.clone();
                move || {
                    self.report_loop(signal, *interval, &what, || {
                        net.run().map_err(|e| e.context(&what))
                    })
                }
            })?;
        }
        for (sub, period) in periodic {
            spawn(scope, self.control, &sub.path, move || {
                self.report_loop(signal, *period, &sub.path, || self.execute(sub))
            })?;
        }
        Ok(())
    }

    /// Caffe2's reporter: wait a period (or until the step ends), run `f`; after the step
    /// ends `f` runs once more, unless the plan was stopped.
    fn report_loop(
        &self,
        signal: &ReportSignal,
        period: Duration,
        what: &str,
        f: impl Fn() -> Result<()>,
    ) {
        loop {
            let done = signal.wait(period);
            if self.control.is_stopped() {
                return;
            }
            match catch_unwind(AssertUnwindSafe(&f)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.kind() == ErrorKind::RunFailed => {
                    eprintln!(
                        "caffe2rs: plan {}: {what} failed (ignored, as Caffe2 did): {}",
                        self.control.name(),
                        e.message()
                    );
                }
                Ok(Err(e)) => {
                    self.control.fail(e);
                    return;
                }
                Err(payload) => {
                    self.control
                        .fail(C2rsError::from_panic(payload.as_ref()).context(what));
                    return;
                }
            }
            if done {
                return;
            }
        }
    }

    fn run_body(&self, w: &StepWrapper<'p>, c: &CompiledStep<'p>) -> Result<()> {
        let step = w.step;
        let stop_name = step.should_stop_blob();
        let stop_now =
            || should_stop(c.should_stop.as_ref(), stop_name).map_err(|e| e.context(&w.path));
        let mut iter: i64 = 0;
        match &c.body {
            Body::Nets(nets) => {
                while self.should_continue(c, iter)? {
                    for net in nets {
                        self.control.check()?;
                        net.run().map_err(|e| e.context(&w.path))?;
                        if stop_now()? {
                            return Ok(());
                        }
                    }
                    iter = iter.saturating_add(1);
                }
            }
            Body::Substeps { recurring, .. } => {
                let instances = step.num_concurrent_instances.unwrap_or(1).max(1);
                let sequential =
                    (!step.concurrent_substeps() || step.substep.len() <= 1) && instances <= 1;
                while self.should_continue(c, iter)? {
                    if sequential {
                        for sub in recurring {
                            self.control.check()?;
                            self.execute(sub)?;
                            if stop_now()? {
                                return Ok(());
                            }
                        }
                    } else {
                        self.run_concurrently(w, recurring, instances as usize)?;
                        if stop_now()? {
                            return Ok(());
                        }
                    }
                    iter = iter.saturating_add(1);
                }
            }
        }
        Ok(())
    }

    fn should_continue(&self, c: &CompiledStep<'p>, iter: i64) -> Result<bool> {
        self.control.check()?;
        Ok(c.continuation.allows(iter))
    }

    /// One round of concurrent substeps: a thread per substep × instance. The first failure
    /// stops the plan; the round returns it once every thread has ended.
    fn run_concurrently(
        &self,
        w: &StepWrapper<'p>,
        recurring: &[StepWrapper<'p>],
        instances: usize,
    ) -> Result<()> {
        let threads = recurring.len().saturating_mul(instances);
        if threads > MAX_STEP_THREADS {
            return Err(C2rsError::enforce(format!(
                "{} substeps x {instances} instances would start {threads} threads (at most \
                 {MAX_STEP_THREADS})",
                recurring.len()
            ))
            .context(&w.path));
        }
        std::thread::scope(|scope| {
            for k in 0..threads {
                let sub = &recurring[k % recurring.len()];
                let started = spawn(scope, self.control, &sub.path, move || {
                    if self.control.is_stopped() {
                        return;
                    }
                    match catch_unwind(AssertUnwindSafe(|| self.execute(sub))) {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => self.control.fail(e),
                        Err(payload) => self
                            .control
                            .fail(C2rsError::from_panic(payload.as_ref()).context(&sub.path)),
                    }
                });
                if let Err(e) = started {
                    self.control.fail(e);
                    break;
                }
            }
        });
        self.control.check()
    }
}

/// Starts a named scoped thread within the plan's thread budget; failure to start is an
/// error naming the step.
fn spawn<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    control: &'s PlanControl,
    path: &str,
    f: impl FnOnce() + Send + 's,
) -> Result<()> {
    if control.threads.fetch_add(1, Ordering::Relaxed) >= MAX_PLAN_THREADS {
        control.threads.fetch_sub(1, Ordering::Relaxed);
        return Err(C2rsError::enforce(format!(
            "{path}: the plan would run more than {MAX_PLAN_THREADS} threads at once"
        )));
    }
    std::thread::Builder::new()
        .name("c2rs-plan".to_string())
        .spawn_scoped(scope, move || {
            // Returns the budget slot when the thread ends, even by a panic.
            struct Slot<'a>(&'a AtomicUsize);
            impl Drop for Slot<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _slot = Slot(&control.threads);
            f();
        })
        .map(|_| ())
        .map_err(|e| {
            control.threads.fetch_sub(1, Ordering::Relaxed);
            C2rsError::internal(format!("{path}: could not start a thread: {e}"))
        })
}

/// Tells a step's reporter threads that the step has ended.
#[derive(Default)]
struct ReportSignal {
    /// True once the step has ended; guarded so a reporter cannot miss the wake-up between
    /// its check and its wait.
    done: Mutex<bool>,
    changed: Condvar,
}

impl ReportSignal {
    /// Waits `period` or until the step ends; true when it has ended.
    fn wait(&self, period: Duration) -> bool {
        let deadline = Instant::now() + period;
        let mut done = self.done.lock();
        while !*done {
            if self.changed.wait_until(&mut done, deadline).timed_out() {
                break;
            }
        }
        *done
    }

    fn finish(&self) {
        *self.done.lock() = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn step_with(f: impl FnOnce(&mut ExecutionStep)) -> ExecutionStep {
        let mut s = ExecutionStep {
            name: Some("s".into()),
            ..Default::default()
        };
        f(&mut s);
        s
    }

    #[test]
    fn continuation_follows_num_iter_stop_blob_and_only_once() {
        let c = Continuation::of(&step_with(|_| {})).unwrap();
        assert!(c.allows(0) && !c.allows(1));
        let c = Continuation::of(&step_with(|s| s.num_iter = Some(3))).unwrap();
        assert!(c.allows(2) && !c.allows(3));
        let c = Continuation::of(&step_with(|s| s.should_stop_blob = Some("b".into()))).unwrap();
        assert!(c.allows(0) && c.allows(1_000_000));
        let c = Continuation::of(&step_with(|s| {
            s.should_stop_blob = Some("b".into());
            s.only_once = Some(true);
        }))
        .unwrap();
        assert!(c.allows(0) && !c.allows(1));
        let e = Continuation::of(&step_with(|s| s.only_once = Some(false)))
            .err()
            .unwrap();
        assert!(e.message().contains("not supported"), "{e}");
        let e = Continuation::of(&step_with(|s| {
            s.should_stop_blob = Some("b".into());
            s.num_iter = Some(1);
        }))
        .err()
        .unwrap();
        assert_eq!(
            e.message(),
            "Must not specify num_iter if should_stop_blob is set"
        );
    }

    #[test]
    fn should_stop_reads_an_uninitialised_blob_as_false_and_wants_a_bool_scalar() {
        let blob = Arc::new(Blob::new());
        assert!(!should_stop(Some(&blob), "b").unwrap());
        assert!(!should_stop(None, "b").unwrap());
        blob.set_tensor(Tensor::from_slice(DataType::Bool, &[], &[1u8]).unwrap());
        assert!(should_stop(Some(&blob), "b").unwrap());
        blob.set_tensor(Tensor::from_slice(DataType::Bool, &[1], &[0u8]).unwrap());
        assert!(!should_stop(Some(&blob), "b").unwrap());
        blob.set_tensor(Tensor::from_slice(DataType::Bool, &[2], &[1u8, 1]).unwrap());
        let e = should_stop(Some(&blob), "b").err().unwrap();
        assert!(e.message().contains("expects a scalar boolean"), "{e}");
        blob.set_string(b"yes".to_vec());
        assert!(should_stop(Some(&blob), "b").is_err());
    }

    #[test]
    fn report_signal_wakes_waiters_when_the_step_ends() {
        let signal = ReportSignal::default();
        assert!(!signal.wait(Duration::from_millis(1)));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| signal.wait(Duration::from_secs(3600)));
            signal.finish();
            assert!(waiter.join().unwrap());
        });
        assert!(signal.wait(Duration::from_secs(3600)));
    }

    #[test]
    fn control_keeps_the_first_failure_and_refuses_nets_once_stopped() {
        let ws = Workspace::new();
        let control = PlanControl::new("p", &ws);
        assert!(control.check().is_ok());
        control.fail(C2rsError::enforce("first"));
        control.fail(C2rsError::enforce("second"));
        control.cancel();
        assert_eq!(control.stop_error().message(), "first");
        let net = crate::net::create_net_object(
            &NetDef {
                name: Some("n".into()),
                ..Default::default()
            },
            &ws,
        )
        .unwrap();
        assert_eq!(control.register_net(&net).unwrap_err().message(), "first");
        // A cancel before any failure is what the plan returns.
        let control = PlanControl::new("p", &ws);
        control.cancel();
        assert!(control.stop_error().message().starts_with("cancelled"));
    }
}
