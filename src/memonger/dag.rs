//! Compatible mode B (spec §4): Caffe2's `compute_blob_recycling_for_dag` — DAG-safe
//! recycling driven by tokens minted at forks — and `apply_assignments`, which renames every
//! op, the step nets of `RecurrentNetwork*` ops (with `.rename` args and their blob-name
//! string args) and the `then_net`/`else_net` of `If`/`AsyncIf`. Traversal is iterative.
//!
//! Fixes beyond spec §4 for names written more than once (caffe2rs issue 6): a write
//! descends only into the *later* readers of its outputs; a name is freed only after all
//! its readers and writers ran; a name with a second writer that does not read it is never
//! remapped (it may still lend its name).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

use super::graph::{
    BlobId, Device, FastMap, NetGraph, escape_text_literal, for_each_text_name, looks_like_text_net,
};
use crate::error::{C2rsError, Result};
use crate::proto::{Argument, NetDef};

/// Inputs of [`compute_blob_recycling_for_dag`] besides the net.
#[derive(Clone, Debug, Default)]
pub struct DagOptions {
    /// Traversal roots: consumers of these names start the walk.
    pub heads: Vec<String>,
    /// Ops that may be optimised, in order.
    pub op_indices: Vec<usize>,
    /// Names that may be freed and recycled.
    pub shareable: HashSet<String>,
    /// Prefix of the `__m<k>_shared` names (no "/" added).
    pub namescope: String,
    /// Names never recycled nor remapped.
    pub dont_share: HashSet<String>,
    /// Optional dims per name (sizes guide the choice of a free blob).
    pub blob_shapes: HashMap<String, Vec<i64>>,
    /// Pick the smallest usable blob that is big enough (else the largest) instead of
    /// Caffe2's order-dependent rule.
    pub best_fit: bool,
}

/// The result: the renamed net and the name mapping (old → final name).
#[derive(Clone, Debug)]
pub struct DagResult {
    pub net: NetDef,
    /// Final name of every remapped name, in order of first mapping.
    pub mapping: Vec<(String, String)>,
    /// Number of `__m<k>_shared` names created.
    pub shared: usize,
}

/// Op types whose subnets [`apply_assignments`] renames; names in other ops' subnets are
/// never remapped nor recycled.
fn renames_subnets(op_type: &str) -> bool {
    op_type.starts_with("RecurrentNetwork") || op_type == "If" || op_type == "AsyncIf"
}

/// Free list: a min-heap on (−share count, name) without shapes, an ordered vector with.
enum FreeList {
    Heap(BinaryHeap<Reverse<(i64, String, BlobId)>>),
    Vec(Vec<BlobId>),
}

struct State<'a> {
    g: &'a NetGraph,
    /// Per op: inputs as the traversal sees them (op inputs plus parent names a subnet reads).
    op_in: Vec<Vec<BlobId>>,
    shareable: Vec<bool>,
    dont_share: Vec<bool>,
    blob_to_ops: Vec<Vec<usize>>,
    blob_input_count: Vec<usize>,
    /// Per name: writes by ops in `op_indices`, in all and so far.
    blob_writes: Vec<usize>,
    blob_write_count: Vec<usize>,
    /// Per name: may its first write be recycled into a free blob (see the setup)?
    remappable: Vec<bool>,
    op_inputs: Vec<usize>,
    /// Position of each op in `op_indices` (`usize::MAX` for ops outside it).
    pos: Vec<usize>,
    op_visited_count: Vec<usize>,
    share_counts: Vec<i64>,
    blob_size: Vec<Option<u64>>,
    cached_size: Vec<u64>,
    req_tokens: Vec<BTreeSet<u64>>,
    deposit: Vec<BTreeSet<u64>>,
    mapping: Vec<Option<BlobId>>,
    mapping_order: Vec<BlobId>,
    device: Vec<Device>,
    processed: Vec<bool>,
    visited: Vec<bool>,
    on_list: Vec<bool>,
    tokens_counter: u64,
    best_fit: bool,
}

impl State<'_> {
    fn actual(&self, b: BlobId) -> BlobId {
        self.mapping[b as usize].unwrap_or(b)
    }

    fn can_use(&self, blob: BlobId, tokens: &BTreeSet<u64>, device: Device) -> bool {
        self.device[blob as usize] == device && self.req_tokens[blob as usize].is_subset(tokens)
    }

    fn get_free_blob(
        &mut self,
        want: BlobId,
        list: &mut FreeList,
        tokens: &BTreeSet<u64>,
    ) -> Option<BlobId> {
        let device = self.device[want as usize];
        match list {
            FreeList::Heap(heap) => {
                let mut skipped = Vec::new();
                let mut found = None;
                while let Some(top) = heap.pop() {
                    if self.can_use(top.0.2, tokens, device) {
                        found = Some(top.0.2);
                        break;
                    }
                    skipped.push(top);
                }
                heap.extend(skipped);
                found
            }
            FreeList::Vec(v) => {
                let wanted = self.blob_size[want as usize].unwrap_or(0);
                let mut best: Option<(usize, u64)> = None;
                for (k, &b) in v.iter().enumerate() {
                    if !self.can_use(b, tokens, device) {
                        continue;
                    }
                    let c = self.cached_size[b as usize];
                    let better = match best {
                        None => true,
                        Some((_, bs)) if self.best_fit => {
                            if bs >= wanted {
                                c >= wanted && c < bs
                            } else {
                                c > bs
                            }
                        }
                        Some((_, bs)) => c >= bs && (bs < wanted || c == bs),
                    };
                    if better {
                        best = Some((k, c));
                    }
                }
                let (k, c) = best?;
                let b = v.remove(k);
                self.cached_size[b as usize] = c.max(wanted);
                Some(b)
            }
        }
    }

    fn push_free(&mut self, list: &mut FreeList, b: BlobId) {
        if self.on_list[b as usize] {
            return;
        }
        self.on_list[b as usize] = true;
        match list {
            FreeList::Heap(h) => h.push(Reverse((
                -self.share_counts[b as usize],
                self.g.name(b).to_string(),
                b,
            ))),
            FreeList::Vec(v) => {
                let s = self.blob_size[b as usize].unwrap_or(0);
                let c = &mut self.cached_size[b as usize];
                *c = (*c).max(s);
                v.push(b);
            }
        }
    }

    /// Steps 1–5 of `process_op`; returns the children to descend into, in order, with
    /// whether each gets a new token.
    fn process_op(
        &mut self,
        op: usize,
        tokens: &mut BTreeSet<u64>,
        list: &mut FreeList,
    ) -> Result<Vec<usize>> {
        let dep = std::mem::take(&mut self.deposit[op]);
        tokens.extend(dep);
        if self.visited[op] {
            return Err(C2rsError::enforce(format!(
                "op #{op} ({}) was visited twice",
                self.g.ops[op].op_type
            )));
        }
        self.visited[op] = true;
        let g = self.g;
        let names: Vec<BlobId> = self.op_in[op]
            .iter()
            .chain(g.ops[op].outputs.iter())
            .copied()
            .collect();
        for &b in &names {
            let a = self.actual(b);
            self.req_tokens[a as usize].extend(tokens.iter().copied());
            if a != b {
                self.req_tokens[b as usize].extend(tokens.iter().copied());
            }
        }
        // Free a name once every reader *and* every writer of it ran: a later overwrite
        // (in place or not) on a parallel branch still owns the name after the last read
        // of an earlier version. Counters reach their totals once, so the op making the
        // last count frees the name, exactly once.
        for &b in &self.op_in[op] {
            if self.shareable[b as usize] {
                self.blob_input_count[b as usize] += 1;
            }
        }
        for &b in &g.ops[op].outputs {
            self.blob_write_count[b as usize] += 1;
        }
        let mut newly_freed: Vec<BlobId> = Vec::new();
        for &b in self.op_in[op].iter().chain(&g.ops[op].outputs) {
            let bi = b as usize;
            let reads = self.blob_to_ops[bi].len();
            if !self.shareable[bi]
                || reads == 0
                || self.blob_input_count[bi] != reads
                || self.blob_write_count[bi] != self.blob_writes[bi]
            {
                continue;
            }
            let a = self.actual(b);
            if !self.dont_share[a as usize] && !self.dont_share[bi] && !newly_freed.contains(&a) {
                newly_freed.push(a);
            }
        }
        for &out in &g.ops[op].outputs {
            let oi = out as usize;
            if !self.shareable[oi]
                || self.dont_share[oi]
                || !self.remappable[oi]
                || self.processed[oi]
                || newly_freed.contains(&out)
            {
                continue;
            }
            self.processed[oi] = true;
            if let Some(blob) = self.get_free_blob(out, list, tokens) {
                self.on_list[blob as usize] = false;
                self.req_tokens[blob as usize].extend(tokens.iter().copied());
                self.share_counts[blob as usize] += 1;
                self.mapping[oi] = Some(blob);
                self.mapping_order.push(out);
            }
        }
        for b in newly_freed {
            self.push_free(list, b);
        }
        // Children: the readers this write reaches, i.e. the later readers of each output.
        // A name written again (in place) also lists the readers of its earlier versions and
        // the writer itself; descending into those would put them *after* this op (an edge
        // against the net's order, and an extra visit toward their readiness), so a blob
        // one of them frees could be recycled into an op that runs in parallel with, or
        // before, this write.
        let here = self.pos[op];
        let mut children = Vec::new();
        for &out in &g.ops[op].outputs {
            children.extend(
                self.blob_to_ops[out as usize]
                    .iter()
                    .copied()
                    .filter(|&r| self.pos[r] > here),
            );
        }
        Ok(children)
    }
}

/// One suspended `process_op`: its tokens, its children and how far it got.
struct Frame {
    tokens: BTreeSet<u64>,
    children: Vec<usize>,
    next: usize,
}

/// Caffe2's `compute_blob_recycling_for_dag` with the spec's fixes (subnet names read at
/// the parent op, effective devices of every writer, roots only at ops with no pending
/// inputs, in-place writers of external inputs not shareable, external lists never
/// remapped, deterministic naming). Returns the renamed net.
pub fn compute_blob_recycling_for_dag(net: &NetDef, opts: &DagOptions) -> Result<DagResult> {
    super::schema_check::check_schemas(net)?;
    let g = NetGraph::build(net);
    let names = g.num_names();
    let n_ops = g.ops.len();
    for &i in &opts.op_indices {
        if i >= n_ops {
            return Err(C2rsError::invalid_argument(format!(
                "op index {i} is out of range (the net has {n_ops} ops)"
            )));
        }
    }
    let mut shareable = vec![false; names];
    for s in &opts.shareable {
        if let Some(id) = g.id(s) {
            shareable[id as usize] = true;
        }
    }
    let mut dont_share = vec![false; names];
    for s in &opts.dont_share {
        if let Some(id) = g.id(s) {
            dont_share[id as usize] = true;
        }
    }
    // Safety: external lists keep their names and contents.
    for &b in g.external_input.iter().chain(&g.external_output) {
        dont_share[b as usize] = true;
    }
    // Names written or read by some op of the parent net.
    let mut in_parent = vec![false; names];
    for op in &g.ops {
        for &b in op.inputs.iter().chain(&op.outputs) {
            in_parent[b as usize] = true;
        }
    }
    for &b in &g.external_input {
        in_parent[b as usize] = true;
    }
    let mut op_in: Vec<Vec<BlobId>> = Vec::with_capacity(n_ops);
    for op in &g.ops {
        let mut v = op.inputs.clone();
        for &b in &op.subnet_names {
            if !in_parent[b as usize] {
                continue;
            }
            let text_subnet = op.op_type.ends_with("If") && op.has_text_subnet;
            if !renames_subnets(&op.op_type) || text_subnet {
                dont_share[b as usize] = true;
            }
            if !v.contains(&b) {
                v.push(b);
            }
        }
        op_in.push(v);
    }
    let mut is_head = vec![false; names];
    let mut heads: Vec<BlobId> = Vec::new();
    for h in &opts.heads {
        if let Some(id) = g.id(h) {
            is_head[id as usize] = true;
            heads.push(id);
        }
    }
    // Effective devices of every writer (fix: ops outside op_indices too).
    let mut device: Vec<Device> = vec![(0, 0); names];
    for op in &g.ops {
        for &b in &op.outputs {
            device[b as usize] = op.device;
        }
    }
    let mut optim_out = vec![false; names];
    for &i in &opts.op_indices {
        for &b in &g.ops[i].outputs {
            if shareable[b as usize] && !dont_share[b as usize] {
                optim_out[b as usize] = true;
            }
        }
    }
    let mut blob_to_ops: Vec<Vec<usize>> = vec![Vec::new(); names];
    let mut blob_seen = vec![0usize; names];
    let mut op_inputs = vec![0usize; n_ops];
    let mut pos = vec![usize::MAX; n_ops];
    // Writes per name, and whether a name is written only once without being read by the
    // writer. Later in-place writers read the name, so they wait for (descend from) the
    // first writer and the choice made there covers them; a second *pure* writer does not,
    // and the traversal may even reach it first, so such names are never remapped (they
    // still lend their names once every touch ran).
    let mut blob_writes = vec![0usize; names];
    let mut pure_writes = vec![0usize; names];
    for (k, &i) in opts.op_indices.iter().enumerate() {
        if pos[i] == usize::MAX {
            pos[i] = k;
        }
    }
    let mut share_counts = vec![0i64; names];
    for &i in &opts.op_indices {
        // A name a subnet mentions that no earlier op wrote is the subnet's own (or this
        // op's output): not a read of the parent.
        let direct = g.ops[i].inputs.len();
        let mut k = direct;
        while k < op_in[i].len() {
            let b = op_in[i][k] as usize;
            if optim_out[b] && blob_seen[b] == 0 {
                op_in[i].remove(k);
            } else {
                k += 1;
            }
        }
        for &b in &op_in[i] {
            let bi = b as usize;
            if !(shareable[bi] || is_head[bi]) {
                continue;
            }
            if optim_out[bi] {
                if blob_seen[bi] == 0 {
                    return Err(C2rsError::enforce(format!(
                        "Input {} was not output by an op before",
                        g.name(b)
                    )));
                }
                op_inputs[i] += blob_seen[bi];
            } else {
                share_counts[bi] = 1;
            }
            blob_to_ops[bi].push(i);
        }
        for &b in &g.ops[i].outputs {
            blob_seen[b as usize] += 1;
            blob_writes[b as usize] += 1;
            if !op_in[i].contains(&b) {
                pure_writes[b as usize] += 1;
            }
        }
    }
    let remappable: Vec<bool> = pure_writes.iter().map(|&w| w <= 1).collect();
    let blob_size: Vec<Option<u64>> = (0..names)
        .map(|b| {
            opts.blob_shapes.get(g.name(b as BlobId)).map(|dims| {
                dims.iter()
                    .fold(1u64, |acc, &d| acc.saturating_mul(d.max(0) as u64))
            })
        })
        .collect();
    let mut st = State {
        g: &g,
        op_in,
        shareable,
        dont_share,
        blob_to_ops,
        blob_input_count: vec![0; names],
        blob_writes,
        blob_write_count: vec![0; names],
        remappable,
        op_inputs,
        pos,
        op_visited_count: vec![0; n_ops],
        share_counts,
        blob_size,
        cached_size: vec![0; names],
        req_tokens: vec![BTreeSet::new(); names],
        deposit: vec![BTreeSet::new(); n_ops],
        mapping: vec![None; names],
        mapping_order: Vec::new(),
        device,
        processed: vec![false; names],
        visited: vec![false; n_ops],
        on_list: vec![false; names],
        tokens_counter: 1,
        best_fit: opts.best_fit,
    };
    let with_shapes = !opts.blob_shapes.is_empty();
    for &h in &heads {
        let roots = st.blob_to_ops[h as usize].clone();
        for root in roots {
            if st.visited[root] || st.op_inputs[root] != 0 {
                continue;
            }
            let mut list = if with_shapes {
                FreeList::Vec(Vec::new())
            } else {
                FreeList::Heap(BinaryHeap::new())
            };
            let mut tokens = BTreeSet::from([st.tokens_counter]);
            st.tokens_counter += 1;
            let children = st.process_op(root, &mut tokens, &mut list)?;
            let mut stack = vec![Frame {
                tokens,
                children,
                next: 0,
            }];
            while let Some(top) = stack.last_mut() {
                if top.next >= top.children.len() {
                    stack.pop();
                    continue;
                }
                let child = top.children[top.next];
                top.next += 1;
                let branches = top.children.len();
                st.op_visited_count[child] += 1;
                if st.op_visited_count[child] == st.op_inputs[child] {
                    let mut t = top.tokens.clone();
                    if branches > 1 {
                        t.insert(st.tokens_counter);
                        st.tokens_counter += 1;
                    }
                    let children = st.process_op(child, &mut t, &mut list)?;
                    stack.push(Frame {
                        tokens: t,
                        children,
                        next: 0,
                    });
                } else if !st.visited[child] {
                    let t = top.tokens.clone();
                    st.deposit[child].extend(t);
                }
            }
        }
    }
    // Naming: targets that are outputs of optimised ops get shared names, in order of
    // first mapping; others lend their own names.
    let mut final_of: Vec<Option<String>> = vec![None; names];
    let mut shared = 0usize;
    let mut idx = 0usize;
    let mut target_name: FastMap<BlobId, String> = FastMap::default();
    let mut mapping = Vec::new();
    for &k in &st.mapping_order {
        let Some(v) = st.mapping[k as usize] else {
            continue;
        };
        let name = match target_name.get(&v) {
            Some(s) => s.clone(),
            None => {
                let s = if optim_out[v as usize] {
                    let mut s = format!("{}__m{idx}_shared", opts.namescope);
                    while g.id(&s).is_some() {
                        idx += 1;
                        s = format!("{}__m{idx}_shared", opts.namescope);
                    }
                    idx += 1;
                    shared += 1;
                    final_of[v as usize] = Some(s.clone());
                    mapping.push((g.name(v).to_string(), s.clone()));
                    s
                } else {
                    g.name(v).to_string()
                };
                target_name.insert(v, s.clone());
                s
            }
        };
        final_of[k as usize] = Some(name.clone());
        mapping.push((g.name(k).to_string(), name));
    }
    let map: FastMap<&str, &str> = mapping
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let out = apply_assignments(net, &map)?;
    Ok(DagResult {
        net: out,
        mapping,
        shared,
    })
}

fn rename_str(s: &mut String, map: &FastMap<&str, &str>) -> bool {
    if let Some(new) = map.get(s.as_str()) {
        if *new != s {
            *s = (*new).to_string();
            return true;
        }
    }
    false
}

/// Renames quoted names inside a text-format NetDef.
/// Only the literals of renamed names change (written escaped, as text format writes them);
/// every other byte of `text` is kept as it was.
fn rename_text(text: &[u8], map: &FastMap<&str, &str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut pos = 0;
    for_each_text_name(text, |r, name| {
        if let Some(new) = map.get(name.as_str()) {
            out.extend_from_slice(&text[pos..r.start]);
            out.extend_from_slice(escape_text_literal(new).as_bytes());
            pos = r.end;
        }
    });
    out.extend_from_slice(&text[pos..]);
    out
}

/// Renames a nested net in place (ops, external lists, nested subnets), without recursion.
fn rename_nested(net: &mut NetDef, map: &FastMap<&str, &str>) {
    let mut stack: Vec<&mut NetDef> = vec![net];
    while let Some(n) = stack.pop() {
        for s in n
            .external_input
            .iter_mut()
            .chain(n.external_output.iter_mut())
        {
            rename_str(s, map);
        }
        for op in n.op.iter_mut() {
            for s in op.input.iter_mut().chain(op.output.iter_mut()) {
                rename_str(s, map);
            }
            for arg in op.arg.iter_mut() {
                if let Some(s) = arg.s.as_mut() {
                    if looks_like_text_net(s) {
                        *s = rename_text(s, map);
                    }
                }
                if let Some(inner) = arg.n.as_mut() {
                    stack.push(inner);
                }
                stack.extend(arg.nets.iter_mut());
            }
        }
    }
}

/// String-list args of `RecurrentNetwork*` ops that name parent blobs (#24388).
const RNN_NAME_ARGS: [&str; 4] = [
    "link_external",
    "alias_src",
    "alias_dst",
    "recurrent_states",
];

/// `apply_assignments`: renames inputs and outputs of every op by `map`; for
/// `RecurrentNetwork*` ops also the `step_net`/`backward_step_net` subnets (both forms),
/// the blob-name string args, and adds `"<old>.rename"` args for renamed slots; for
/// `If`/`AsyncIf` the `then_net`/`else_net` subnets. External lists are untouched.
pub fn apply_assignments(net: &NetDef, map: &FastMap<&str, &str>) -> Result<NetDef> {
    let mut out = net.clone();
    for op in out.op.iter_mut() {
        let ty = op.r#type.clone().unwrap_or_default();
        let mut renamed: Vec<(String, String)> = Vec::new();
        for s in op.input.iter_mut().chain(op.output.iter_mut()) {
            let old = s.clone();
            if rename_str(s, map) && !renamed.iter().any(|(o, _)| *o == old) {
                renamed.push((old, s.clone()));
            }
        }
        if ty.starts_with("RecurrentNetwork") {
            for arg in op.arg.iter_mut() {
                let name = arg.name.as_deref().unwrap_or("");
                if name == "step_net" || name == "backward_step_net" {
                    let text_form = arg.s.as_deref().is_some_and(looks_like_text_net);
                    if arg.n.is_some() && text_form {
                        return Err(C2rsError::enforce(format!(
                            "argument `{name}` of a {ty} op holds both a NetDef and a text-format net"
                        )));
                    }
                    if let Some(n) = arg.n.as_mut() {
                        rename_nested(n, map);
                    } else if let Some(s) = arg.s.as_mut() {
                        *s = rename_text(s, map);
                    }
                } else if RNN_NAME_ARGS.contains(&name) {
                    for s in arg.strings.iter_mut() {
                        let text = String::from_utf8_lossy(s).into_owned();
                        if let Some(new) = map.get(text.as_str()) {
                            *s = new.as_bytes().to_vec();
                        }
                    }
                }
            }
            for (old, new) in renamed {
                op.arg.push(Argument {
                    name: Some(format!("{old}.rename")),
                    s: Some(new.into_bytes()),
                    ..Default::default()
                });
            }
        } else if ty == "If" || ty == "AsyncIf" {
            for arg in op.arg.iter_mut() {
                let name = arg.name.as_deref().unwrap_or("");
                if name == "then_net" || name == "else_net" {
                    if let Some(n) = arg.n.as_mut() {
                        rename_nested(n, map);
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_step_net_names_match_unescaped_and_are_written_escaped() {
        // As C++ and Python text format write them: NUL and non-ASCII bytes as octal escapes.
        let text = b"op {\n  input: \"a\\000b\"\n  input: \"keep\"\n  output: '\\303\\251'\n  type: \"Copy\" # \xff raw byte kept\n}\nexternal_input: \"a\\000b\"\n";
        let mut map: FastMap<&str, &str> = FastMap::default();
        map.insert("a\0b", "__m0_shared");
        map.insert("é", "ü\0\"");
        let out = rename_text(text, &map);
        let want: &[u8] = b"op {\n  input: \"__m0_shared\"\n  input: \"keep\"\n  output: '\\303\\274\\000\\\"'\n  type: \"Copy\" # \xff raw byte kept\n}\nexternal_input: \"__m0_shared\"\n";
        assert_eq!(out, want, "{}", String::from_utf8_lossy(&out));
        // Nothing to rename: the bytes come back unchanged.
        assert_eq!(rename_text(text, &FastMap::default()), text.to_vec());
    }
}
