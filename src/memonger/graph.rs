//! The net as the memongers see it: names interned to dense ids (in order of first
//! appearance, so every later step is deterministic), per-op input/output ids, the names an
//! op's subnet arguments reference, and each op's effective device.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::proto::{Argument, DeviceOption, NetDef, OperatorDef};

/// A small multiplicative hasher (the Fx scheme) for maps keyed by blob names: the keys
/// come from the caller's own net, so hash flooding is not a concern, and SipHash
/// dominated planner time on large nets.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // splitmix64 finaliser: spreads entropy into the high bits hashbrown uses for tags.
        let mut z = self.hash;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A HashMap with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A blob name id: index into [`NetGraph::names`].
pub type BlobId = u32;

/// (device type, device id) in Caffe2 numbering; CPU is (0, 0).
pub type Device = (i32, i32);

/// One operator of the net, with its names interned.
#[derive(Clone, Debug)]
pub struct OpNode {
    pub op_type: String,
    pub inputs: Vec<BlobId>,
    pub outputs: Vec<BlobId>,
    /// Names referenced anywhere inside the op's subnet arguments (`n`, `nets`, text `s`).
    pub subnet_names: Vec<BlobId>,
    /// Names in `control_input`.
    pub control: Vec<BlobId>,
    /// Effective device: the op's option, else the net's, else CPU.
    pub device: Device,
    /// The op carries at least one subnet argument.
    pub has_subnet: bool,
    /// One of its subnet arguments is a text-format net in `s`.
    pub has_text_subnet: bool,
}

/// The interned net.
#[derive(Clone, Debug, Default)]
pub struct NetGraph {
    pub names: Vec<String>,
    /// Open-addressing table of `id + 1` (0 = empty), indexed by the name's Fx hash;
    /// each name is stored once, in `names`.
    slots: Vec<u32>,
    pub ops: Vec<OpNode>,
    pub external_input: Vec<BlobId>,
    pub external_output: Vec<BlobId>,
}

fn device_of(opt: Option<&DeviceOption>) -> Option<Device> {
    opt.map(|d| (d.device_type.unwrap_or(0), d.device_id.unwrap_or(0)))
}

/// Effective device of `op` inside `net` (§4: the op's option, else the net's, else CPU);
/// `CopyGPUToCPU` outputs live on the CPU.
pub fn effective_device(net: &NetDef, op: &OperatorDef) -> Device {
    if op.r#type.as_deref() == Some("CopyGPUToCPU") {
        return (0, 0);
    }
    device_of(op.device_option.as_ref())
        .or_else(|| device_of(net.device_option.as_ref()))
        .unwrap_or((0, 0))
}

/// Whether an argument holds a subnet (`n`, `nets`, or a text-format NetDef in `s`).
pub fn is_subnet_arg(arg: &Argument) -> bool {
    arg.n.is_some() || !arg.nets.is_empty() || arg.s.as_deref().is_some_and(looks_like_text_net)
}

/// Heuristic for a text-format NetDef stored in a string argument.
pub fn looks_like_text_net(s: &[u8]) -> bool {
    let text = String::from_utf8_lossy(s);
    text.contains("op {") || text.contains("op{")
}

/// Field names whose quoted values are blob names in a text-format NetDef.
const TEXT_NAME_FIELDS: [&str; 4] = ["input:", "output:", "external_input:", "external_output:"];

/// Calls `f` for every blob name a text-format NetDef mentions, with the byte range of the
/// name inside `text` (between its quotes).
pub fn for_each_text_name(text: &str, mut f: impl FnMut(std::ops::Range<usize>)) {
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        for field in TEXT_NAME_FIELDS {
            if let Some(rest) = trimmed.strip_prefix(field) {
                let after = rest.trim_start();
                let skip = rest.len() - after.len();
                if let Some(body) = after.strip_prefix('"') {
                    if let Some(end) = body.find('"') {
                        let start = pos + lead + field.len() + skip + 1;
                        f(start..start + end);
                    }
                }
                break;
            }
        }
        pos += line.len();
    }
}

/// Every blob name referenced inside the subnet arguments of `op` (recursively, without
/// recursion: an explicit stack).
pub fn subnet_names(op: &OperatorDef) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<&NetDef> = Vec::new();
    let mut texts: Vec<&[u8]> = Vec::new();
    fn push_args<'a>(args: &'a [Argument], stack: &mut Vec<&'a NetDef>, texts: &mut Vec<&'a [u8]>) {
        for arg in args {
            if let Some(n) = arg.n.as_ref() {
                stack.push(n);
            }
            stack.extend(arg.nets.iter());
            if let Some(s) = arg.s.as_deref() {
                if looks_like_text_net(s) {
                    texts.push(s);
                }
            }
        }
    }
    push_args(&op.arg, &mut stack, &mut texts);
    while let Some(net) = stack.pop() {
        out.extend(net.external_input.iter().cloned());
        out.extend(net.external_output.iter().cloned());
        for inner in &net.op {
            out.extend(inner.input.iter().cloned());
            out.extend(inner.output.iter().cloned());
            push_args(&inner.arg, &mut stack, &mut texts);
        }
    }
    for s in texts {
        let text = String::from_utf8_lossy(s);
        for_each_text_name(&text, |r| out.push(text[r].to_string()));
    }
    out
}

impl NetGraph {
    /// Interns `net`. Linear in the number of names referenced.
    pub fn build(net: &NetDef) -> NetGraph {
        let mut g = NetGraph::default();
        for name in &net.external_input {
            g.intern(name);
        }
        for op in &net.op {
            let inputs = op.input.iter().map(|n| g.intern(n)).collect();
            let outputs = op.output.iter().map(|n| g.intern(n)).collect();
            let control = op.control_input.iter().map(|n| g.intern(n)).collect();
            let has_subnet = op.arg.iter().any(is_subnet_arg);
            let subnet_names = if has_subnet {
                let mut ids: Vec<BlobId> = subnet_names(op).iter().map(|n| g.intern(n)).collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            } else {
                Vec::new()
            };
            g.ops.push(OpNode {
                op_type: op.r#type.clone().unwrap_or_default(),
                inputs,
                outputs,
                subnet_names,
                control,
                device: effective_device(net, op),
                has_subnet,
                has_text_subnet: op
                    .arg
                    .iter()
                    .any(|a| a.s.as_deref().is_some_and(looks_like_text_net)),
            });
        }
        g.external_input = net.external_input.iter().map(|n| g.intern(n)).collect();
        g.external_output = net.external_output.iter().map(|n| g.intern(n)).collect();
        g
    }

    fn hash_name(name: &str) -> u64 {
        let mut h = FxHasher::default();
        h.write(name.as_bytes());
        h.write_u8(0xff);
        h.finish()
    }

    /// Slot index holding `name`, or the empty slot where it would go.
    fn find_slot(&self, name: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = (Self::hash_name(name) as usize) & mask;
        loop {
            let s = self.slots[i];
            if s == 0 || self.names[(s - 1) as usize] == name {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> BlobId {
        if self.slots.len() < 2 * (self.names.len() + 1) {
            let cap = (4 * (self.names.len() + 1)).next_power_of_two().max(16);
            self.slots = vec![0; cap];
            for id in 0..self.names.len() {
                let i = self.find_slot(&self.names[id]);
                self.slots[i] = id as u32 + 1;
            }
        }
        let i = self.find_slot(name);
        if self.slots[i] != 0 {
            return self.slots[i] - 1;
        }
        let id = self.names.len() as BlobId;
        self.names.push(name.to_string());
        self.slots[i] = id + 1;
        id
    }

    /// The id of `name` when the net mentions it.
    pub fn id(&self, name: &str) -> Option<BlobId> {
        if self.slots.is_empty() {
            return None;
        }
        let s = self.slots[self.find_slot(name)];
        (s != 0).then(|| s - 1)
    }

    pub fn name(&self, id: BlobId) -> &str {
        &self.names[id as usize]
    }

    pub fn num_names(&self) -> usize {
        self.names.len()
    }
}
