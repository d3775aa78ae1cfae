//! Generated test nets for the memory planner, with shapes: structures the golden CNNs lack
//! (transformer blocks whose residual spans two large MLP buffers, a ConvNeXt block, a
//! RegNet-style stem with chained equal buffers, U-Net skips, training with gradient
//! accumulation) and the random DAG nets of issue 17. Shared by tests/memonger_generated.rs
//! and benches/memonger.rs (`#[path]`). Op types and arities follow Caffe2's schemas.
#![allow(dead_code)]

use caffe2rs::proto::{NetDef, OperatorDef, TensorShape, TensorShapes};

/// A generated net and the shapes of its activations.
pub struct GenNet {
    pub name: String,
    pub net: NetDef,
    pub shapes: TensorShapes,
}

/// Net builder: ops in order, a float32 shape per written blob, parameters as external
/// inputs.
#[derive(Default)]
struct Builder {
    ops: Vec<OperatorDef>,
    shapes: Vec<TensorShape>,
    ext_in: Vec<String>,
}

impl Builder {
    fn param(&mut self, name: &str) -> String {
        self.ext_in.push(name.to_string());
        name.to_string()
    }
    /// Op `ty` reading `ins` and writing `outs` (name, dims); returns the first output.
    fn op(&mut self, ty: &str, ins: &[&str], outs: &[(&str, &[i64])]) -> String {
        for (name, dims) in outs {
            if !self
                .shapes
                .iter()
                .any(|s| s.name.as_deref() == Some(name.as_bytes()))
            {
                self.shapes.push(TensorShape {
                    dims: dims.to_vec(),
                    data_type: Some(1),
                    name: Some(name.as_bytes().to_vec()),
                    ..Default::default()
                });
            }
        }
        self.ops.push(OperatorDef {
            r#type: Some(ty.into()),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|(s, _)| s.to_string()).collect(),
            ..Default::default()
        });
        outs[0].0.to_string()
    }
    fn finish(self, name: &str, outputs: &[&str]) -> GenNet {
        GenNet {
            name: name.into(),
            net: NetDef {
                name: Some(name.into()),
                op: self.ops,
                external_input: self.ext_in,
                external_output: outputs.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            shapes: TensorShapes {
                shapes: self.shapes,
            },
        }
    }
}

/// Pre-norm transformer blocks: attention scores (heads × seq²) and a 4× MLP, each with a
/// residual add whose input lives across the large buffers.
pub fn transformer(layers: usize, batch: i64, seq: i64, dim: i64, heads: i64) -> GenNet {
    let mut b = Builder::default();
    let x0 = b.param("tokens");
    let mut x = b.op("Copy", &[&x0], &[("x0", &[batch, seq, dim])]);
    let d = [batch, seq, dim];
    for l in 0..layers {
        let p = |s: &str| format!("l{l}_{s}");
        let (w, bias) = (b.param(&p("w")), b.param(&p("b")));
        let ln = b.op(
            "LayerNorm",
            &[&x],
            &[
                (&p("ln1"), &d),
                (&p("ln1_mean"), &[batch, seq]),
                (&p("ln1_std"), &[batch, seq]),
            ],
        );
        let qkv = b.op(
            "FC",
            &[&ln, &w, &bias],
            &[(&p("qkv"), &[batch, seq, 3 * dim])],
        );
        let scores = b.op(
            "BatchMatMul",
            &[&qkv, &qkv],
            &[(&p("scores"), &[batch, heads, seq, seq])],
        );
        let probs = b.op(
            "Softmax",
            &[&scores],
            &[(&p("probs"), &[batch, heads, seq, seq])],
        );
        let ctx = b.op("BatchMatMul", &[&probs, &qkv], &[(&p("ctx"), &d)]);
        let proj = b.op("FC", &[&ctx, &w, &bias], &[(&p("proj"), &d)]);
        let x1 = b.op("Add", &[&x, &proj], &[(&p("res1"), &d)]);
        let ln2 = b.op(
            "LayerNorm",
            &[&x1],
            &[
                (&p("ln2"), &d),
                (&p("ln2_mean"), &[batch, seq]),
                (&p("ln2_std"), &[batch, seq]),
            ],
        );
        let up = b.op(
            "FC",
            &[&ln2, &w, &bias],
            &[(&p("up"), &[batch, seq, 4 * dim])],
        );
        let act = b.op("Gelu", &[&up], &[(&p("gelu"), &[batch, seq, 4 * dim])]);
        let down = b.op("FC", &[&act, &w, &bias], &[(&p("down"), &d)]);
        x = b.op("Add", &[&x1, &down], &[(&p("res2"), &d)]);
    }
    let out = b.op("Copy", &[&x], &[("out", &d)]);
    b.finish(&format!("transformer_{layers}x{seq}x{dim}"), &[&out])
}

/// ConvNeXt-style blocks: depthwise conv, norm, 4× pointwise MLP, residual add spanning
/// the MLP; a downsampling conv between stages.
pub fn convnext(stages: &[(i64, i64, usize)], batch: i64) -> GenNet {
    let mut b = Builder::default();
    let data = b.param("data");
    let (c0, hw0, _) = stages[0];
    let mut x = b.op(
        "Conv",
        &[&data, "stem_w"],
        &[("stem", &[batch, c0, hw0, hw0])],
    );
    b.param("stem_w");
    for (s, &(c, hw, blocks)) in stages.iter().enumerate() {
        let d = [batch, c, hw, hw];
        if s > 0 {
            let w = b.param(&format!("down{s}_w"));
            x = b.op("Conv", &[&x, &w], &[(&format!("down{s}"), &d)]);
        }
        for k in 0..blocks {
            let p = |t: &str| format!("s{s}b{k}_{t}");
            let (w, bias) = (b.param(&p("w")), b.param(&p("b")));
            let dw = b.op("Conv", &[&x, &w, &bias], &[(&p("dw"), &d)]);
            let ln = b.op(
                "LayerNorm",
                &[&dw],
                &[
                    (&p("ln"), &d),
                    (&p("mean"), &[batch, hw, hw]),
                    (&p("std"), &[batch, hw, hw]),
                ],
            );
            let up = b.op(
                "Conv",
                &[&ln, &w, &bias],
                &[(&p("pw1"), &[batch, 4 * c, hw, hw])],
            );
            let act = b.op("Gelu", &[&up], &[(&p("gelu"), &[batch, 4 * c, hw, hw])]);
            let down = b.op("Conv", &[&act, &w, &bias], &[(&p("pw2"), &d)]);
            x = b.op("Add", &[&x, &down], &[(&p("res"), &d)]);
        }
    }
    let out = b.op(
        "AveragePool",
        &[&x],
        &[("pool", &[batch, stages[stages.len() - 1].0])],
    );
    b.finish("convnext", &[&out])
}

/// RegNet-style stem: three equal buffers with chained lifetimes ([0,1], [1,2], [2,5])
/// among smaller ones, then a bottleneck block with a shortcut.
pub fn regnet_stem(batch: i64, c: i64, hw: i64) -> GenNet {
    let mut b = Builder::default();
    let data = b.param("data");
    let w = b.param("w");
    let d = [batch, c, hw, hw];
    let half = [batch, c, hw / 2, hw / 2];
    let s0 = b.op("Conv", &[&data, &w], &[("stem_conv", &d)]); // 0
    let s1 = b.op("SpatialBN", &[&s0, &w, &w, &w, &w], &[("stem_bn", &d)]); // 1
    let s2 = b.op("Relu", &[&s1], &[("stem_relu", &d)]); // 2
    let a = b.op("Conv", &[&s2, &w], &[("b1_a", &half)]); // 3
    let a2 = b.op("Relu", &[&a], &[("b1_a_relu", &half)]); // 4
    let sc = b.op("Conv", &[&s2, &w], &[("b1_short", &half)]); // 5: stem_relu dies here
    let bb = b.op("Conv", &[&a2, &w], &[("b1_b", &half)]);
    let sum = b.op("Add", &[&bb, &sc], &[("b1_sum", &half)]);
    let out = b.op("Relu", &[&sum], &[("b1_out", &half)]);
    b.finish("regnet_stem", &[&out])
}

/// U-Net: an encoder whose every level's output is a skip read by the mirrored decoder
/// level (long lifetimes nesting), concatenated with the upsampled path.
pub fn unet(levels: usize, batch: i64, base_c: i64, hw: i64) -> GenNet {
    let mut b = Builder::default();
    let data = b.param("data");
    let w = b.param("w");
    let mut x = data.clone();
    let mut skips = Vec::new();
    let (mut c, mut s) = (base_c, hw);
    for l in 0..levels {
        let d = [batch, c, s, s];
        let e1 = b.op("Conv", &[&x, &w], &[(&format!("enc{l}_a"), &d)]);
        let e2 = b.op("Conv", &[&e1, &w], &[(&format!("enc{l}_b"), &d)]);
        skips.push((e2.clone(), c, s));
        x = b.op(
            "MaxPool",
            &[&e2],
            &[(&format!("pool{l}"), &[batch, c, s / 2, s / 2])],
        );
        c *= 2;
        s /= 2;
    }
    x = b.op("Conv", &[&x, &w], &[("bottom", &[batch, c, s, s])]);
    for l in (0..levels).rev() {
        let (skip, sc, ss) = skips[l].clone();
        let up = b.op(
            "ConvTranspose",
            &[&x, &w],
            &[(&format!("up{l}"), &[batch, sc, ss, ss])],
        );
        let cat = b.op(
            "Concat",
            &[&up, &skip],
            &[
                (&format!("cat{l}"), &[batch, 2 * sc, ss, ss]),
                (&format!("cat{l}_info"), &[2]),
            ],
        );
        let d1 = b.op(
            "Conv",
            &[&cat, &w],
            &[(&format!("dec{l}_a"), &[batch, sc, ss, ss])],
        );
        x = b.op(
            "Conv",
            &[&d1, &w],
            &[(&format!("dec{l}_b"), &[batch, sc, ss, ss])],
        );
    }
    let out = b.op("Conv", &[&x, &w], &[("logits", &[batch, 1, hw, hw])]);
    b.finish(&format!("unet_{levels}"), &[&out])
}

/// Training with gradient accumulation: `micro` micro-batches of an MLP forward and
/// backward pass; each weight gradient is added into an accumulator (in place after the
/// first micro-batch) that lives to the end as an external output.
pub fn train_grad_accum(layers: usize, micro: usize, batch: i64, dim: i64) -> GenNet {
    let mut b = Builder::default();
    let ws: Vec<String> = (0..layers).map(|l| b.param(&format!("fc{l}_w"))).collect();
    let bs: Vec<String> = (0..layers).map(|l| b.param(&format!("fc{l}_b"))).collect();
    let wdim = [dim, dim];
    let d = [batch, dim];
    for m in 0..micro {
        let data = b.param(&format!("data{m}"));
        let mut acts = vec![data.clone()];
        for l in 0..layers {
            let fc = b.op(
                "FC",
                &[&acts[l], &ws[l], &bs[l]],
                &[(&format!("m{m}_fc{l}"), &d)],
            );
            let r = b.op("Relu", &[&fc], &[(&format!("m{m}_relu{l}"), &d)]);
            acts.push(r);
        }
        let loss = b.op(
            "AveragedLoss",
            &[&acts[layers]],
            &[(&format!("m{m}_loss"), &[1])],
        );
        let mut g = b.op(
            "ConstantFill",
            &[&loss],
            &[(&format!("m{m}_loss_grad"), &[1])],
        );
        g = b.op(
            "AveragedLossGradient",
            &[&acts[layers], &g],
            &[(&format!("m{m}_top_grad"), &d)],
        );
        for l in (0..layers).rev() {
            let rg = b.op(
                "ReluGradient",
                &[&acts[l + 1], &g],
                &[(&format!("m{m}_fc{l}_grad"), &d)],
            );
            let wg = format!("m{m}_fc{l}_w_grad");
            let bg = format!("m{m}_fc{l}_b_grad");
            let xg = format!("m{m}_x{l}_grad");
            b.op(
                "FCGradient",
                &[&acts[l], &ws[l], &rg],
                &[(&wg, &wdim), (&bg, &[dim]), (&xg, &d)],
            );
            let acc = format!("fc{l}_w_grad_acc");
            if m == 0 {
                b.op("Copy", &[&wg], &[(&acc, &wdim)]);
            } else {
                b.op("Sum", &[&acc, &wg], &[(&acc, &wdim)]);
            }
            g = xg;
        }
    }
    let outs: Vec<String> = (0..layers).map(|l| format!("fc{l}_w_grad_acc")).collect();
    let out_refs: Vec<&str> = outs.iter().map(|s| s.as_str()).collect();
    b.finish(&format!("train_accum_{layers}x{micro}"), &out_refs)
}

/// xorshift64*: deterministic, no crate needed.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The random DAG nets of issue 17: each op reads one to three activations written by the
/// last 40 ops and writes one of 4 B to 16 KiB (float32, 1..4096 elements). Sum for
/// several inputs, Relu for one.
pub fn random_dag(ops: usize, seed: u64) -> GenNet {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut b = Builder::default();
    let data = b.param("data");
    let mut acts: Vec<String> = vec![data];
    for i in 0..ops {
        let k = 1 + rng.below(3) as usize;
        let window = acts.len().min(40) as u64;
        let ins: Vec<String> = (0..k)
            .map(|_| acts[acts.len() - 1 - rng.below(window) as usize].clone())
            .collect();
        let refs: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        let elems = 1 + rng.below(4096) as i64;
        let name = format!("a{i}");
        b.op(
            if k == 1 { "Relu" } else { "Sum" },
            &refs,
            &[(&name, &[elems])],
        );
        acts.push(name);
    }
    let last = acts[acts.len() - 1].clone();
    b.finish(&format!("random_dag_{ops}"), &[&last])
}

/// Every structured net (small and medium), for tests and the benchmark.
pub fn structured() -> Vec<GenNet> {
    vec![
        regnet_stem(32, 32, 112),
        convnext(&[(96, 56, 3), (192, 28, 3), (384, 14, 3)], 8),
        transformer(4, 8, 256, 512, 8),
        transformer(2, 4, 1024, 256, 4),
        unet(4, 4, 32, 128),
        train_grad_accum(6, 3, 64, 512),
    ]
}
