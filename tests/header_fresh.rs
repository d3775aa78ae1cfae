//! The committed C header is exactly what cbindgen generates from the current sources with the
//! project's cbindgen.toml (build.rs writes it, CI checks git for drift; this catches a stale
//! header even where build.rs did not run, e.g. a cached build).

use std::path::PathBuf;

#[test]
fn committed_header_matches_the_sources() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("the ffi module parses");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let committed =
        std::fs::read(root.join("include/caffe2rs.h")).expect("include/caffe2rs.h exists");
    assert!(
        generated == committed,
        "include/caffe2rs.h is stale: run `cargo build` and commit the regenerated header"
    );
}

#[test]
fn header_declares_every_documented_export_with_its_contract() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/caffe2rs.h")).expect("header");
    // Each declaration of a c2rs_ function is preceded by its doc block.
    let mut checked = 0;
    for (pos, _) in header
        .match_indices(" c2rs_")
        .chain(header.match_indices("*c2rs_"))
    {
        let line_start = header[..pos].rfind('\n').map_or(0, |i| i + 1);
        let line = &header[line_start..];
        let decl_end = line.find(';').unwrap_or(line.len());
        let decl = &line[..decl_end];
        let trimmed = line.trim_start();
        if !decl.contains('(')
            || trimmed.starts_with('*')
            || trimmed.starts_with("typedef")
            || trimmed.starts_with('}')
        {
            continue;
        }
        let doc_end = header[..line_start]
            .rfind("*/")
            .expect("every declaration has a doc comment");
        let doc_start = header[..doc_end].rfind("/**").expect("doc comment start");
        let doc = &header[doc_start..doc_end];
        assert!(
            doc.contains("Thread safety:"),
            "no `Thread safety:` in the doc of {decl}"
        );
        assert!(
            doc.contains("Returns:"),
            "no `Returns:` in the doc of {decl}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "found only {checked} declarations");
}
