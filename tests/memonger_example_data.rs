//! Builds the small CNN bundled with the memonger example host (examples/data/small_cnn.pb
//! and small_cnn.shapes.pb) and checks the committed files are exactly what it builds.
//! `C2RS_REGENERATE_EXAMPLE_DATA=1 cargo test --test memonger_example_data` rewrites them.

use caffe2rs::memonger::planner::{PlanOptions, plan};
use caffe2rs::memonger::{shapes, verify};
use caffe2rs::proto::{NetDef, OperatorDef, TensorShape, TensorShapes};
use prost::Message;
use std::path::PathBuf;

mod common;
use common::op;

#[derive(Default)]
struct Builder {
    ops: Vec<OperatorDef>,
    shapes: Vec<(String, Vec<i64>)>,
    params: Vec<String>,
}

impl Builder {
    fn add(&mut self, ty: &str, i: &[&str], o: &str, dims: &[i64]) {
        self.ops.push(op(ty, i, &[o]));
        self.shapes.push((o.to_string(), dims.to_vec()));
    }
    fn conv(&mut self, x: &str, y: &str, dims: &[i64]) {
        let (w, b) = (format!("{y}_w"), format!("{y}_b"));
        self.add("Conv", &[x, &w, &b], y, dims);
        self.params.push(w);
        self.params.push(b);
    }
}

/// A 10-layer CNN, batch 8, 3×32×32 input: conv/relu/pool stages, a residual branch joined
/// by Sum, then FC → Softmax. Activations (NCHW, FLOAT) shrink with depth, so sharing names
/// by size matters.
fn small_cnn() -> (NetDef, TensorShapes) {
    let mut b = Builder::default();
    b.params.push("data".into());
    b.conv("data", "conv1", &[8, 32, 32, 32]);
    b.add("Relu", &["conv1"], "relu1", &[8, 32, 32, 32]);
    b.add("MaxPool", &["relu1"], "pool1", &[8, 32, 16, 16]);
    b.conv("pool1", "conv2", &[8, 64, 16, 16]);
    b.add("Relu", &["conv2"], "relu2", &[8, 64, 16, 16]);
    b.conv("relu2", "conv3", &[8, 64, 16, 16]);
    b.add("Relu", &["conv3"], "relu3", &[8, 64, 16, 16]);
    b.add("Sum", &["relu3", "relu2"], "res3", &[8, 64, 16, 16]);
    b.add("MaxPool", &["res3"], "pool3", &[8, 64, 8, 8]);
    b.conv("pool3", "conv4", &[8, 128, 8, 8]);
    b.add("Relu", &["conv4"], "relu4", &[8, 128, 8, 8]);
    b.add("AveragePool", &["relu4"], "pool4", &[8, 128, 1, 1]);
    b.add("FC", &["pool4", "fc_w", "fc_b"], "fc", &[8, 10]);
    b.params.push("fc_w".into());
    b.params.push("fc_b".into());
    b.add("Softmax", &["fc"], "softmax", &[8, 10]);
    let Builder {
        ops,
        shapes,
        params,
    } = b;
    let net = NetDef {
        name: Some("small_cnn".into()),
        op: ops,
        external_input: params,
        external_output: vec!["softmax".into()],
        ..Default::default()
    };
    let shapes = TensorShapes {
        shapes: shapes
            .into_iter()
            .map(|(n, d)| TensorShape {
                name: Some(n.into_bytes()),
                dims: d,
                data_type: Some(1),
                ..Default::default()
            })
            .collect(),
    };
    (net, shapes)
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data")
}

#[test]
fn bundled_small_cnn_is_what_the_generator_builds_and_plans_cleanly() {
    let (net, shp) = small_cnn();
    let (nb, sb) = (net.encode_to_vec(), shp.encode_to_vec());
    let (np, sp) = (
        data_dir().join("small_cnn.pb"),
        data_dir().join("small_cnn.shapes.pb"),
    );
    if std::env::var_os("C2RS_REGENERATE_EXAMPLE_DATA").is_some() {
        std::fs::write(&np, &nb).unwrap();
        std::fs::write(&sp, &sb).unwrap();
    }
    assert_eq!(std::fs::read(&np).expect("examples/data/small_cnn.pb"), nb);
    assert_eq!(
        std::fs::read(&sp).expect("examples/data/small_cnn.shapes.pb"),
        sb
    );
    // The figures the example host prints (its ctest regex pins them too).
    let p = plan(
        &net,
        Some(&shapes::parse_shapes(&sb).unwrap()),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(verify::verify(&net, &p.net, &[]).is_empty());
    let r = p.report_json();
    println!("{r}");
    assert!(r.contains("\"ops\":14"), "{r}");
    assert!(r.contains("\"lb_bytes\":2097152,\"lb_count\":3"), "{r}");
    // The external output keeps its own name (and its 320 bytes).
    assert!(
        r.contains("\"names\":4,\"name_bytes\":2621760,\"arena_bytes\":2097152"),
        "{r}"
    );
}
