//! Build script: compiles the project's wire schema with prost (fed by the pure-Rust
//! `protox` compiler, so no `protoc` is needed), regenerates the C header with cbindgen
//! (written only when its content changes, so the committed file is the reference), sets
//! the shared library's SONAME and records the git revision for `c2rs_version_string`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    compile_proto(&manifest_dir);
    generate_header(&manifest_dir);
    record_git_revision(&manifest_dir);
    // The ABI major version is the SONAME suffix (ARCHITECTURE.md: libcaffe2rs.so.0).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcaffe2rs.so.0");
}

fn compile_proto(manifest_dir: &Path) {
    let proto_dir = manifest_dir.join("proto");
    let proto = proto_dir.join("caffe2.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&proto_dir])
        .unwrap_or_else(|e| panic!("proto/caffe2.proto does not compile: {e}"));
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("prost-build failed on proto/caffe2.proto: {e}"));
}

fn generate_header(manifest_dir: &Path) {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(manifest_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    // Only src/ffi/ is the C surface: parsing from its mod.rs (cbindgen follows the `mod`
    // declarations) keeps area types out of the header.
    let ffi_root = manifest_dir.join("src").join("ffi").join("mod.rs");
    let bindings = match cbindgen::Builder::new()
        .with_config(config)
        .with_src(ffi_root)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            // A syntax error in src/ is reported better by rustc itself; keep the old header.
            println!(
                "cargo:warning=cbindgen could not parse the crate, include/caffe2rs.h not regenerated: {e}"
            );
            return;
        }
    };
    let header = manifest_dir.join("include").join("caffe2rs.h");
    // `write_to_file` only touches the file when the content differs.
    bindings.write_to_file(&header);
}

fn record_git_revision(manifest_dir: &Path) {
    let git_dir = manifest_dir.join(".git");
    if git_dir.join("HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Ok(head) = fs::read_to_string(git_dir.join("HEAD")) {
            if let Some(reference) = head.strip_prefix("ref: ") {
                println!("cargo:rerun-if-changed=.git/{}", reference.trim());
            }
        }
    }
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(manifest_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=C2RS_GIT_REVISION={revision}");
}
