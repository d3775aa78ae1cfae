//! Small builders for the protobuf messages the harness and the seed generator write.

use caffe2rs::proto::{Argument, NetDef, OperatorDef};
use prost::Message;

pub fn op(ty: &str, inputs: &[&str], outputs: &[&str], args: Vec<Argument>) -> OperatorDef {
    OperatorDef {
        r#type: Some(ty.to_string()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        arg: args,
        ..Default::default()
    }
}

fn named(name: &str) -> Argument {
    Argument {
        name: Some(name.to_string()),
        ..Default::default()
    }
}

pub fn int(name: &str, v: i64) -> Argument {
    Argument {
        i: Some(v),
        ..named(name)
    }
}

pub fn float(name: &str, v: f32) -> Argument {
    Argument {
        f: Some(v),
        ..named(name)
    }
}

pub fn string(name: &str, v: &str) -> Argument {
    Argument {
        s: Some(v.as_bytes().to_vec()),
        ..named(name)
    }
}

pub fn ints(name: &str, v: &[i64]) -> Argument {
    Argument {
        ints: v.to_vec(),
        ..named(name)
    }
}

pub fn floats(name: &str, v: &[f32]) -> Argument {
    Argument {
        floats: v.to_vec(),
        ..named(name)
    }
}

pub fn strings(name: &str, v: &[&str]) -> Argument {
    Argument {
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..named(name)
    }
}

pub fn net(name: &str, ops: Vec<OperatorDef>) -> NetDef {
    NetDef {
        name: Some(name.to_string()),
        op: ops,
        ..Default::default()
    }
}

pub fn bytes<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}
