//! Workspace lookup, sharing, mapping and naming. Ported from Caffe2's
//! `caffe2/core/workspace_test.cc` (BlobAccess, Sharing, BlobMapping) plus the project's
//! added cases from spec/workspace.md. Changes: Caffe2's `GetBlob` pointers are compared
//! through `Arc::ptr_eq`; `GetMutable<int>` is a native test type.

use std::sync::Arc;

use caffe2rs::ErrorKind;
use caffe2rs::tensor::{DataType, Tensor};
use caffe2rs::workspace::{BlobNative, Workspace};

struct Int(i32);
impl BlobNative for Int {
    const TYPE_NAME: &'static str = "int";
}

#[test]
fn blob_access() {
    let ws = Workspace::new();
    assert!(!ws.has_blob("nonexisting"));
    assert!(ws.get_blob("nonexisting").is_none());
    assert!(ws.get_blob("newblob").is_none());
    assert!(ws.create_blob("newblob").is_some());
    assert!(ws.get_blob("newblob").is_some());
    assert!(ws.has_blob("newblob"));
    assert!(!ws.has_blob("nonexisting"));
    assert!(ws.get_blob("nonexisting").is_none());

    let blob = ws.get_blob("newblob").unwrap();
    let (v, fresh) = blob.get_or_insert_native(|| Int(10));
    assert!(fresh);
    assert_eq!(v.0, 10);
    assert!(blob.native::<Int>().is_ok());
    assert!(blob.tensor().is_err());

    // Re-creating (locally or not) returns the same blob and keeps the int.
    let again = ws.create_blob("newblob").unwrap();
    assert!(Arc::ptr_eq(&again, &blob));
    assert_eq!(again.native::<Int>().unwrap().0, 10);
    let local = ws.create_local_blob("newblob");
    assert!(Arc::ptr_eq(&local, &blob));
    assert_eq!(local.native::<Int>().unwrap().0, 10);

    assert!(!ws.remove_blob("nonexisting"));
    assert!(ws.remove_blob("newblob"));
    assert!(!ws.has_blob("newblob"));
    assert!(ws.get_blob("newblob").is_none());
}

#[test]
fn root_folders_and_parents_are_kept_as_given() {
    let root = Workspace::new();
    assert_eq!(root.root_folder(), ".");
    assert!(root.parent().is_none());
    let rooted = Workspace::with_root("/data/run7");
    assert_eq!(rooted.root_folder(), "/data/run7");
    let child = Workspace::new_child(&rooted);
    assert_eq!(
        child.root_folder(),
        ".",
        "a child does not inherit the root folder"
    );
    assert!(Arc::ptr_eq(child.parent().expect("a parent"), &rooted));
    let rooted_child = Workspace::new_child_with_root("out", &root);
    assert_eq!(rooted_child.root_folder(), "out");
    assert!(Arc::ptr_eq(rooted_child.parent().expect("a parent"), &root));
    rooted.create_blob("a");
    rooted.create_blob("b");
    assert_eq!(
        format!("{rooted:?}"),
        r#"Workspace { root_folder: "/data/run7", has_parent: false, local_blobs: 2, nets: 0 }"#
    );
    assert_eq!(
        format!("{child:?}"),
        r#"Workspace { root_folder: ".", has_parent: true, local_blobs: 0, nets: 0 }"#
    );
}

#[test]
fn sharing_between_parent_and_child() {
    let parent = Workspace::new();
    let child = Workspace::new_child(&parent);
    assert!(parent.create_blob("a").is_some());
    assert!(child.has_blob("a"));
    assert!(Arc::ptr_eq(
        &child.get_blob("a").unwrap(),
        &parent.get_blob("a").unwrap()
    ));

    assert!(child.create_blob("b").is_some());
    assert!(!parent.has_blob("b"));
    // The parent creating the same name later: the child keeps its own.
    parent.create_blob("b");
    assert!(!Arc::ptr_eq(
        &child.get_blob("b").unwrap(),
        &parent.get_blob("b").unwrap()
    ));

    // create_blob in the child returns the parent's blob; create_local_blob shadows it.
    let pa = parent.get_blob("a").unwrap();
    assert!(Arc::ptr_eq(&child.create_blob("a").unwrap(), &pa));
    let shadow = child.create_local_blob("a");
    assert!(!Arc::ptr_eq(&shadow, &pa));
    assert!(Arc::ptr_eq(&child.get_blob("a").unwrap(), &shadow));
}

#[test]
fn child_keeps_parent_alive() {
    let parent = Workspace::new();
    parent
        .create_blob("p")
        .unwrap()
        .set_tensor(Tensor::from_slice(DataType::Int32, &[1], &[5i32]).unwrap());
    let child = Workspace::new_child(&parent);
    drop(parent);
    assert_eq!(
        child
            .get_blob("p")
            .unwrap()
            .tensor()
            .unwrap()
            .typed::<i32>()
            .unwrap(),
        &[5]
    );
}

#[test]
fn blob_mapping() {
    let parent = Workspace::new();
    parent.create_blob("a");
    let child =
        Workspace::new_with_mapping(Some(&parent), &[("inner_a".into(), "a".into())]).unwrap();
    assert!(!child.has_blob("a"));
    assert!(child.has_blob("inner_a"));
    assert!(child.get_blob("inner_a").is_some());
    assert!(Arc::ptr_eq(
        &child.get_blob("inner_a").unwrap(),
        &parent.get_blob("a").unwrap()
    ));

    let other = Workspace::new();
    other.create_blob("b");
    child
        .add_blob_mapping(&other, &[("inner_b".into(), "b".into())], false)
        .unwrap();
    assert!(child.has_blob("inner_b"));
    assert!(!child.has_blob("b"));
    assert!(child.has_blob("inner_a"));

    // Mapping errors.
    let e = Workspace::new_with_mapping(None, &[]).unwrap_err();
    assert_eq!(e.message(), "Parent workspace must be specified");
    let e =
        Workspace::new_with_mapping(Some(&parent), &[("x".into(), "missing".into())]).unwrap_err();
    assert_eq!(e.message(), "Invalid parent workspace blob missing");
}

#[test]
fn mapping_redefinition_idempotence_and_skip_defined() {
    let p = Workspace::new();
    p.create_blob("a");
    p.create_blob("b");
    let c = Workspace::new_with_mapping(Some(&p), &[("x".into(), "a".into())]).unwrap();
    // Same mapping again: no-op.
    c.add_blob_mapping(&p, &[("x".into(), "a".into())], false)
        .unwrap();
    // Different target for a forwarded name: redefinition.
    let e = c
        .add_blob_mapping(&p, &[("x".into(), "b".into())], false)
        .unwrap_err();
    assert_eq!(e.message(), "Redefinition of blob x");
    // A local name: refused unless skip_defined.
    c.create_local_blob("y");
    assert!(
        c.add_blob_mapping(&p, &[("y".into(), "b".into())], false)
            .is_err()
    );
    c.add_blob_mapping(&p, &[("y".into(), "b".into())], true)
        .unwrap();
    assert!(!Arc::ptr_eq(
        &c.get_blob("y").unwrap(),
        &p.get_blob("b").unwrap()
    ));
    // A forwarded name whose source is removed resolves to nothing.
    assert!(p.remove_blob("a"));
    assert!(!c.has_blob("x"));
    assert!(c.create_blob("x").is_none());
    assert_eq!(c.blobs(), vec!["y".to_string()]);
}

#[test]
fn rename_keeps_identity_and_checks_names() {
    let p = Workspace::new();
    p.create_blob("shared");
    let ws = Workspace::new_child(&p);
    let blob = ws.create_blob("old").unwrap();
    let e = ws.rename_blob("missing", "x").unwrap_err();
    assert_eq!(e.message(), "Blob missing is not in the local blob list");
    let e = ws.rename_blob("old", "shared").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.message().contains("shared"));
    // A parent blob cannot be renamed from the child.
    assert!(ws.rename_blob("shared", "y").is_err());
    ws.rename_blob("old", "new").unwrap();
    assert!(!ws.has_blob("old"));
    assert!(Arc::ptr_eq(&ws.get_blob("new").unwrap(), &blob));
}

#[test]
fn blobs_order_locals_forwarded_then_parent_with_duplicates() {
    let root = Workspace::new();
    root.create_blob("z");
    root.create_blob("a");
    let src = Workspace::new();
    src.create_blob("s");
    let child = Workspace::new_child(&root);
    child.create_local_blob("z");
    child.create_blob("m");
    child.create_blob("b");
    child
        .add_blob_mapping(
            &src,
            &[("f2".into(), "s".into()), ("f1".into(), "s".into())],
            false,
        )
        .unwrap();
    assert_eq!(child.local_blobs(), ["b", "m", "z"]);
    assert_eq!(child.blobs(), ["b", "m", "z", "f1", "f2", "a", "z"]);
}

#[test]
fn names_sort_bytewise_and_allow_empty_and_unicode() {
    let ws = Workspace::new();
    for n in ["é", "Z", "", "a", "日本"] {
        ws.create_blob(n);
    }
    assert_eq!(ws.local_blobs(), ["", "Z", "a", "é", "日本"]);
    assert!(ws.has_blob(""));
}

#[test]
fn copy_forwarded_tensors_makes_local_copies() {
    let p = Workspace::new();
    p.create_blob("t")
        .unwrap()
        .set_tensor(Tensor::from_slice(DataType::Float, &[2], &[1.0f32, 2.0]).unwrap());
    p.create_blob("s").unwrap().set_string(b"x".to_vec());
    let c = Workspace::new_with_mapping(
        Some(&p),
        &[("t".into(), "t".into()), ("s".into(), "s".into())],
    )
    .unwrap();
    c.copy_forwarded_tensors(&["t".into(), "not_forwarded".into()])
        .unwrap();
    let local = c.get_blob("t").unwrap();
    assert!(!Arc::ptr_eq(&local, &p.get_blob("t").unwrap()));
    assert_eq!(c.local_blobs(), ["t"]);
    // The copy is independent.
    p.get_blob("t")
        .unwrap()
        .set_tensor(Tensor::from_slice(DataType::Float, &[1], &[9.0f32]).unwrap());
    assert_eq!(local.tensor().unwrap().typed::<f32>().unwrap(), &[1.0, 2.0]);
    // A forwarded non-tensor is an error.
    assert!(c.copy_forwarded_tensors(&["s".into()]).is_err());
}

#[test]
fn removed_blob_stays_alive_for_holders() {
    let ws = Workspace::new();
    let b = ws.create_blob("x").unwrap();
    b.set_string(b"kept".to_vec());
    assert!(ws.remove_blob("x"));
    assert_eq!(b.string().unwrap(), b"kept");
    let fresh = ws.create_blob("x").unwrap();
    assert!(!Arc::ptr_eq(&fresh, &b));
    assert!(fresh.is_empty());
}

#[test]
fn a_local_blob_over_a_forwarded_name_shadows_it_until_removed() {
    let src = Workspace::new();
    let target = src.create_blob("s").unwrap();
    let ws = Workspace::new_with_mapping(Some(&src), &[("f".into(), "s".into())]).unwrap();
    let local = ws.create_local_blob("f");
    assert!(!Arc::ptr_eq(&local, &target));
    assert!(Arc::ptr_eq(&ws.get_blob("f").unwrap(), &local));
    assert_eq!(ws.local_blobs(), ["f"]);
    assert!(ws.remove_blob("f"));
    // The forward is visible again, as with Caffe2's separate blob and forwarding maps.
    assert!(Arc::ptr_eq(&ws.get_blob("f").unwrap(), &target));
    assert!(ws.local_blobs().is_empty());
    assert_eq!(ws.blobs(), ["f"]);
}

#[test]
fn lookups_by_bytes_match_utf8_names_and_nothing_else() {
    let parent = Workspace::new();
    parent.create_blob("p\u{e9}");
    let ws = Workspace::new_child(&parent);
    ws.create_blob("a\0b");
    assert!(ws.has_blob_by_bytes(b"a\0b"));
    assert!(
        ws.has_blob_by_bytes("p\u{e9}".as_bytes()),
        "found in the parent"
    );
    assert!(ws.get_blob_by_bytes(b"a\0b").is_some());
    // Latin-1 é (not UTF-8) is another name, and no blob's.
    assert!(!ws.has_blob_by_bytes(b"p\xe9"));
    assert!(ws.get_blob_by_bytes(b"\xff\xfe").is_none());
}

/// Readers look names up while writers create, remove and rename others and feed tensors:
/// every stable name stays visible with its own blob, absent names are never found, a renamed
/// blob is listed under exactly one of its two names in every listing, and a fetched tensor
/// is never a mix of two feeds (in-place feeds copy under the blob's lock).
#[test]
fn concurrent_lookups_and_updates_stay_consistent() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let ws = Workspace::new();
    let stable: Vec<(String, Arc<caffe2rs::workspace::Blob>)> = (0..200)
        .map(|i| {
            let n = format!("stable{i}");
            let b = ws.create_blob(&n).unwrap();
            (n, b)
        })
        .collect();
    let fed = ws.create_blob("fed").unwrap();
    fed.set_tensor(Tensor::from_slice(DataType::Int64, &[64], &[0i64; 64]).unwrap());
    let writers = 2;
    for w in 0..writers {
        ws.create_blob(&format!("ren{w}_a"));
    }
    let stop = AtomicBool::new(false);
    let rounds = if cfg!(miri) { 20 } else { 3000 };
    std::thread::scope(|s| {
        let mut writer_threads = Vec::new();
        for w in 0..writers {
            let ws = &ws;
            writer_threads.push(s.spawn(move || {
                let (a, b) = (format!("ren{w}_a"), format!("ren{w}_b"));
                let moving = ws.get_blob(&a).unwrap();
                for k in 0..rounds {
                    let t = format!("tmp{w}_{}", k % 50);
                    ws.create_blob(&t);
                    let (from, to) = if k % 2 == 0 { (&a, &b) } else { (&b, &a) };
                    ws.rename_blob(from, to).unwrap();
                    assert!(Arc::ptr_eq(&ws.get_blob(to).unwrap(), &moving));
                    assert!(ws.remove_blob(&t));
                    let v = k as i64;
                    let t = Tensor::from_slice(DataType::Int64, &[64], &[v; 64]).unwrap();
                    ws.get_blob("fed").unwrap().set_tensor_copy(&t).unwrap();
                }
            }));
        }
        for r in 0..2 {
            let (ws, stable, stop) = (&ws, &stable, &stop);
            s.spawn(move || {
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    let (n, b) = &stable[i % stable.len()];
                    assert!(ws.has_blob(n));
                    assert!(Arc::ptr_eq(&ws.get_blob(n).unwrap(), b));
                    assert!(!ws.has_blob(&format!("never{i}")));
                    let t = ws.get_blob("fed").unwrap().copy_tensor().unwrap();
                    let v = t.typed::<i64>().unwrap();
                    assert!(v.iter().all(|x| *x == v[0]), "torn feed: {v:?}");
                    if i % 64 == 0 {
                        let names = ws.local_blobs();
                        for w in 0..writers {
                            let a = names.contains(&format!("ren{w}_a"));
                            let b = names.contains(&format!("ren{w}_b"));
                            assert!(a != b, "renamed blob listed under {a}/{b}");
                        }
                        assert!(names.len() >= stable.len() + 1 + writers);
                    }
                    i += 2;
                }
            });
        }
        // Writers finish first (a failed assert there fails the test); then the readers stop.
        let results: Vec<_> = writer_threads.into_iter().map(|t| t.join()).collect();
        stop.store(true, Ordering::Relaxed);
        for r in results {
            r.unwrap();
        }
    });
    assert_eq!(ws.local_blobs().len(), stable.len() + 1 + writers);
}
