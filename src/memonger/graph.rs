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

/// Calls `f` for every blob name a text-format NetDef mentions: the byte range of the quoted
/// literal inside `text` (between its quotes, escapes as written) and the name it spells.
/// Text format escapes NUL, quotes and (from C++ and Python writers) every non-ASCII byte, so
/// the name is the literal unescaped (`unescape_text_literal`); a literal that does not spell
/// UTF-8 names no blob and is skipped.
pub fn for_each_text_name(text: &[u8], mut f: impl FnMut(std::ops::Range<usize>, String)) {
    let mut pos = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let lead = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let trimmed = &line[lead..];
        for field in TEXT_NAME_FIELDS {
            if let Some(rest) = trimmed.strip_prefix(field.as_bytes()) {
                let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
                let start = pos + lead + field.len() + skip;
                if let Some((body, name)) = quoted_literal(text, start) {
                    if let Ok(name) = String::from_utf8(name) {
                        f(body, name);
                    }
                }
                break;
            }
        }
        pos += line.len();
    }
}

/// The quoted literal starting at `text[start]` (`"` or `'`): the range between its quotes
/// and its unescaped bytes. None when `text[start]` is no quote or the literal is unclosed
/// on its line.
fn quoted_literal(text: &[u8], start: usize) -> Option<(std::ops::Range<usize>, Vec<u8>)> {
    let quote = *text.get(start).filter(|&&q| q == b'"' || q == b'\'')?;
    let mut i = start + 1;
    while let Some(&b) = text.get(i) {
        match b {
            b'\\' => i += 2,
            b'\n' => return None,
            _ if b == quote => {
                let body = start + 1..i;
                return Some((body.clone(), unescape_text_literal(&text[body])));
            }
            _ => i += 1,
        }
    }
    None
}

/// The bytes a protobuf text-format string literal body spells: `\n \r \t \a \b \f \v \\ \'
/// \" \?`, octal `\ooo` (1-3 digits) and hex `\xhh` (1-2 digits); other bytes as written.
pub fn unescape_text_literal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        i += 1;
        if b != b'\\' || i == body.len() {
            out.push(b);
            continue;
        }
        let e = body[i];
        i += 1;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' | b'X' => {
                let mut v = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match body.get(i).and_then(|&d| (d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.extend_from_slice(&[b'\\', e]);
                } else {
                    out.push(v as u8);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `name` as the body of a double-quoted text-format literal, escaped as C++ and Python
/// protobuf write it (`CEscape`): printable ASCII as is except `"`, `'` and `\`; every other
/// byte (NUL, control, non-ASCII UTF-8) as a three-digit octal escape.
pub fn escape_text_literal(name: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
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
        for_each_text_name(s, |_, name| out.push(name));
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
