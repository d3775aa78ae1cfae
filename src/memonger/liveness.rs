//! Lifetimes of activations and the lower bounds (spec §2, golden memonger manifest).
//!
//! An activation is a name written by at least one op and not static. It lives from the
//! first op writing it to the last op reading or writing it (closed interval); external
//! outputs live to `N` (past the end); an activation nothing reads lives only where written.
//! One pass over the ops: O(N + E).

use super::graph::{BlobId, NetGraph};

/// Closed op interval of one activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// First op writing the name.
    pub first: u32,
    /// Last access (read or write); `N` for external outputs.
    pub last: u32,
    /// Last read at or after `first` (`first` when never read); `N` for external outputs.
    pub last_read: u32,
}

impl Interval {
    pub fn intersects(&self, other: &Interval) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Lifetimes of every name of a net under a static set.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    pub num_ops: usize,
    /// Activations in order of first write (op, then output slot).
    pub activations: Vec<BlobId>,
    /// Interval per name id; `None` for static names and names never written.
    pub interval: Vec<Option<Interval>>,
    /// Written, not static, but read (at an earlier op) before its first write.
    pub read_before_write: Vec<BlobId>,
    /// (name, op) pairs: read by `op`, never written by any op, and not static.
    pub unwritten_reads: Vec<(BlobId, usize)>,
}

/// The reads of op `i`: its inputs, control inputs and names referenced in its subnets.
pub fn reads_of(g: &NetGraph, i: usize) -> impl Iterator<Item = BlobId> + '_ {
    let op = &g.ops[i];
    op.inputs
        .iter()
        .chain(op.control.iter())
        .chain(op.subnet_names.iter())
        .copied()
}

impl Liveness {
    /// Computes lifetimes; `is_static[id]` marks static names (external inputs plus the
    /// caller's). Names in subnet arguments count as reads at the parent op.
    pub fn compute(g: &NetGraph, is_static: &[bool]) -> Liveness {
        let n = g.ops.len();
        let names = g.num_names();
        let mut interval: Vec<Option<Interval>> = vec![None; names];
        let mut first_read: Vec<Option<u32>> = vec![None; names];
        let mut activations = Vec::new();
        for (i, op) in g.ops.iter().enumerate() {
            let t = i as u32;
            for b in reads_of(g, i) {
                let bi = b as usize;
                if first_read[bi].is_none() {
                    first_read[bi] = Some(t);
                }
                if let Some(iv) = interval[bi].as_mut() {
                    iv.last = t;
                    iv.last_read = t;
                }
            }
            for &b in &op.outputs {
                let bi = b as usize;
                if is_static[bi] {
                    continue;
                }
                match interval[bi].as_mut() {
                    Some(iv) => iv.last = iv.last.max(t),
                    None => {
                        interval[bi] = Some(Interval {
                            first: t,
                            last: t,
                            last_read: t,
                        });
                        activations.push(b);
                    }
                }
            }
        }
        for &b in &g.external_output {
            if let Some(iv) = interval[b as usize].as_mut() {
                iv.last = n as u32;
                iv.last_read = n as u32;
            }
        }
        let mut read_before_write = Vec::new();
        for &b in &activations {
            let first = interval[b as usize].map_or(0, |iv| iv.first);
            if first_read[b as usize].is_some_and(|r| r < first) {
                read_before_write.push(b);
            }
        }
        let mut unwritten_reads = Vec::new();
        let mut reported = vec![false; names];
        for (i, op) in g.ops.iter().enumerate() {
            // Subnet names may be written inside the subnet itself: not an unwritten read.
            for &b in op.inputs.iter().chain(op.control.iter()) {
                let bi = b as usize;
                if interval[bi].is_none() && !is_static[bi] && !reported[bi] {
                    reported[bi] = true;
                    unwritten_reads.push((b, i));
                }
            }
        }
        Liveness {
            num_ops: n,
            activations,
            interval,
            read_before_write,
            unwritten_reads,
        }
    }

    pub fn get(&self, b: BlobId) -> Option<Interval> {
        self.interval[b as usize]
    }
}

/// Peak of Σ size over closed intervals, and the per-op live sums (length `num_ops`).
/// `items` are (interval, size); one sweep over a ±size event list: O(N + k).
pub fn peak_live(num_ops: usize, items: impl Iterator<Item = (u32, u32, u64)>) -> (u64, Vec<u64>) {
    let mut delta = vec![0i128; num_ops + 2];
    for (first, last, size) in items {
        delta[first as usize] += size as i128;
        delta[(last as usize + 1).min(num_ops + 1)] -= size as i128;
    }
    let mut live = 0i128;
    let mut peak = 0i128;
    let mut per_op = Vec::with_capacity(num_ops);
    for (t, d) in delta.iter().enumerate().take(num_ops + 1) {
        live += d;
        peak = peak.max(live);
        if t < num_ops {
            per_op.push(live as u64);
        }
    }
    (peak as u64, per_op)
}

#[cfg(test)]
mod tests {
    use super::{Interval, Liveness};
    use crate::memonger::graph::NetGraph;
    use crate::proto::{NetDef, OperatorDef};

    #[test]
    fn only_a_read_at_an_earlier_op_is_a_read_before_write() {
        let op = |ins: &[&str], outs: &[&str]| OperatorDef {
            r#type: Some("Relu".into()),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        // `a` is read and first written by the same op (in place); `b` is read by op 0 and
        // first written by op 1.
        let net = NetDef {
            external_input: vec!["x".into()],
            op: vec![
                op(&["a", "b"], &["a"]),
                op(&["x"], &["b"]),
                op(&["a", "b"], &["y"]),
            ],
            ..Default::default()
        };
        let g = NetGraph::build(&net);
        let is_static: Vec<bool> = g.names.iter().map(|n| n == "x").collect();
        let live = Liveness::compute(&g, &is_static);
        let names: Vec<&str> = live
            .read_before_write
            .iter()
            .map(|&b| g.names[b as usize].as_str())
            .collect();
        assert_eq!(names, ["b"]);
    }

    fn iv(first: u32, last: u32) -> Interval {
        Interval {
            first,
            last,
            last_read: first,
        }
    }

    #[test]
    fn peak_live_counts_each_size_over_its_closed_interval() {
        // Three ops: 10 bytes live at ops 0-1, 5 at ops 1-2, 7 past the end (external output).
        let (peak, per_op) = super::peak_live(3, [(0, 1, 10), (1, 2, 5), (2, 3, 7)].into_iter());
        assert_eq!(per_op, [10, 15, 12]);
        assert_eq!(peak, 15);
        // The slot past the last op counts toward the peak too.
        let (peak, per_op) = super::peak_live(2, [(0, 0, 1), (2, 2, 9)].into_iter());
        assert_eq!((peak, per_op), (9, vec![1, 0]));
    }

    #[test]
    fn intervals_are_closed_so_sharing_one_op_intersects() {
        let cases = [
            ((1, 3), (3, 5), true),
            ((1, 3), (4, 5), false),
            ((2, 2), (2, 2), true),
            ((0, 9), (4, 5), true),
            ((6, 7), (0, 5), false),
        ];
        for ((a0, a1), (b0, b1), want) in cases {
            let (a, b) = (iv(a0, a1), iv(b0, b1));
            assert_eq!(a.intersects(&b), want, "{a:?} vs {b:?}");
            assert_eq!(b.intersects(&a), want, "{b:?} vs {a:?}");
        }
    }
}
