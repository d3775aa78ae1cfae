//! docs/operators.md is the registry's schemas rendered (caffe2rs::operator::catalog): this
//! test fails when the committed file is stale, when a registered operator lacks a documented
//! schema, or when an operator reads an argument its schema does not document.
//!
//! Regenerate the file with: C2RS_UPDATE_CATALOG=1 cargo test --test operator_catalog

use std::collections::BTreeSet;
use std::path::PathBuf;

use caffe2rs::operator::{Registry, catalog, register_builtin_ops};
use caffe2rs::ops;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn builtin() -> Registry {
    let mut r = Registry::new();
    register_builtin_ops(&mut r).expect("built-in registration");
    r
}

#[test]
fn committed_catalog_matches_the_registry() {
    let path = root().join("docs/operators.md");
    let fresh = catalog::markdown(&builtin());
    if std::env::var_os("C2RS_UPDATE_CATALOG").is_some() {
        std::fs::create_dir_all(root().join("docs")).unwrap();
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or(committed.lines().count().min(fresh.lines().count()), |i| i);
        panic!(
            "docs/operators.md is stale (first difference at line {}: committed {:?}, registry \
             {:?}); regenerate with C2RS_UPDATE_CATALOG=1 cargo test --test operator_catalog",
            line + 1,
            committed.lines().nth(line),
            fresh.lines().nth(line)
        );
    }
}

#[test]
fn every_registered_operator_has_a_documented_schema() {
    let reg = builtin();
    let committed = std::fs::read_to_string(root().join("docs/operators.md")).unwrap_or_default();
    let types = catalog::operator_types(&reg);
    assert!(types.len() > 40, "{types:?}");
    let mut problems = Vec::new();
    for t in &types {
        if !committed.contains(&format!("\n## {t}\n")) {
            problems.push(format!("{t}: missing from docs/operators.md"));
        }
        let Some(s) = reg.schema(t) else {
            problems.push(format!("{t}: no schema"));
            continue;
        };
        if s.doc().trim().is_empty() {
            problems.push(format!("{t}: no doc"));
        }
        let mut seen = BTreeSet::new();
        for a in s.arg_docs() {
            if !seen.insert(a.name.as_str()) {
                problems.push(format!("{t}: argument {} documented twice", a.name));
            }
            if a.arg_type.is_empty() || a.default.is_empty() || a.doc.trim().is_empty() {
                problems.push(format!(
                    "{t}: argument {} lacks a type, a default or a meaning",
                    a.name
                ));
            }
            if !committed.contains(&format!("| `{}` |", a.name)) {
                problems.push(format!("{t}: argument {} missing from the file", a.name));
            }
        }
        // Every slot a def must or may fill is documented: all of them when the count is
        // bounded, the required ones (the first `min`) when it is not.
        for (min, max, docs, what) in [
            (s.min_input(), s.max_input(), s.input_docs(), "input"),
            (s.min_output(), s.max_output(), s.output_docs(), "output"),
        ] {
            let slots = if max == usize::MAX { min } else { max };
            for i in 0..slots {
                if !docs.iter().any(|(k, _)| *k == i) {
                    problems.push(format!("{t}: {what} {i} undocumented"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The argument names an operator source file reads (`single_arg`, `repeated_arg`,
/// `has_argument`, `has_single_argument_of_type` with a string literal).
fn arguments_read(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for call in [
        "single_arg",
        "repeated_arg",
        "has_argument",
        "has_single_argument_of_type",
    ] {
        let mut rest = source;
        while let Some(at) = rest.find(call) {
            let mut tail = &rest[at + call.len()..];
            rest = tail;
            if let Some(t) = tail.strip_prefix("::<") {
                let Some(end) = t.find(">(") else { continue };
                tail = &t[end + 1..];
            }
            let Some(t) = tail.strip_prefix('(') else {
                continue;
            };
            let Some(t) = t.trim_start().strip_prefix('"') else {
                continue;
            };
            if let Some(end) = t.find('"') {
                out.insert(t[..end].to_string());
            }
        }
    }
    out
}

#[test]
fn every_argument_an_operator_reads_is_documented_by_its_family() {
    type Register = fn(&mut Registry) -> caffe2rs::Result<()>;
    let families: [(&str, Register); 13] = [
        ("basic_ops.rs", ops::basic_ops::register),
        ("copy_ops.rs", ops::copy_ops::register),
        ("counter_ops.rs", ops::counter_ops::register),
        ("db_ops.rs", ops::db_ops::register),
        ("given_fill_ops.rs", ops::given_fill_ops::register),
        ("iter_ops.rs", ops::iter_ops::register),
        ("load_save_ops.rs", ops::load_save_ops::register),
        // Documentation only (joined to the queue families' schemas by name).
        ("queue_docs.rs", |_| Ok(())),
        ("queue_ops.rs", ops::queue_ops::register),
        ("rebatching_ops.rs", ops::rebatching_ops::register),
        ("timer_ops.rs", ops::timer_ops::register),
        ("utility_ops.rs", ops::utility_ops::register),
        ("workspace_ops.rs", ops::workspace_ops::register),
    ];
    // Every operator source file is listed (a new family cannot be skipped).
    let dir = root().join("src/ops");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".rs") && f != "mod.rs")
        .collect();
    files.sort();
    let listed: Vec<String> = families.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        files, listed,
        "src/ops files and the families of this test differ"
    );

    let mut problems = Vec::new();
    for (file, register) in families {
        let source = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut reg = Registry::new();
        // queue_ops registers the rebatching family too; a second registration is fine here.
        let _ = register(&mut reg);
        let documented: BTreeSet<String> = reg
            .schemas()
            .iter()
            .flat_map(|s| {
                s.arg_docs()
                    .iter()
                    .map(|a| a.name.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        for arg in arguments_read(&source) {
            if !documented.contains(&arg) {
                problems.push(format!(
                    "src/ops/{file} reads argument `{arg}`, which no schema of that file documents"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_argument_scanner_finds_literal_reads() {
    let src = r#"b.single_arg::<i64>("capacity", 1)?; b.repeated_arg::<String>( "field_names")?;
        b.has_argument("x") && b.has_single_argument_of_type::<f32>("value"); b.single_arg(name, 0)"#;
    let got: Vec<String> = arguments_read(src).into_iter().collect();
    assert_eq!(got, ["capacity", "field_names", "value", "x"]);
}
