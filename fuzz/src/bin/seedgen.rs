//! Writes the seed corpora of every fuzz target and the operator dictionary:
//! `seedgen OUT_DIR [--no-hostile]` makes `OUT_DIR/<target>/<seed>` and
//! `OUT_DIR/operator.dict`. Seeds come from tests/data/golden, one or more valid
//! OperatorDefs per registered operator, and the reproducers of tests/data/hostile (left out
//! with `--no-hostile`): each target gets those of its own folder
//! (`tests/data/hostile/<target>/`), the in-memory format targets also those of the
//! end-to-end target that shares their format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caffe2rs_fuzz::seeds::{self, Seed};

fn write(dir: &Path, seeds: &[Seed]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for s in seeds {
        std::fs::write(dir.join(format!("seed-{}", s.name)), &s.bytes)?;
    }
    println!("seedgen: {} seeds in {}", seeds.len(), dir.display());
    Ok(())
}

/// Folders of tests/data/hostile whose inputs seed each target besides its own.
const SHARED_FORMATS: [(&str, &str); 2] =
    [("minidb_format", "db_minidb"), ("lmdb_format", "db_lmdb")];

fn run(out: &Path, hostile: bool) -> std::io::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let registered = seeds::registered_operators();
    if registered.is_empty() {
        return Err(std::io::Error::other(
            "the library lists no registered operator",
        ));
    }
    let targets: Vec<(&str, Vec<Seed>)> = vec![
        ("tensor_proto", seeds::tensor_proto(&repo)?),
        ("memonger", seeds::memonger(&repo)?),
        ("db_minidb", seeds::db_minidb(&repo, hostile)?),
        ("db_lmdb", seeds::db_lmdb(&repo, hostile)?),
        ("db_leveldb", seeds::db_leveldb(&repo)?),
        ("minidb_format", seeds::minidb_format(&repo, hostile)?),
        ("lmdb_format", seeds::lmdb_format(&repo, hostile)?),
        ("leveldb_format", seeds::leveldb_format(&repo)?),
        ("operator", seeds::operator(&registered)),
        ("plan", seeds::plan(&registered)),
    ];
    for (target, mut found) in targets {
        if hostile {
            found.extend(seeds::hostile(&repo, target)?);
            for (shared, folder) in SHARED_FORMATS {
                if shared == target {
                    found.extend(seeds::hostile(&repo, folder)?);
                }
            }
        }
        write(&out.join(target), &found)?;
    }
    std::fs::write(
        out.join("operator.dict"),
        seeds::operator_dictionary(&registered),
    )?;
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: seedgen OUT_DIR [--no-hostile]");
        return ExitCode::from(2);
    };
    let hostile = !args.any(|a| a == "--no-hostile");
    match run(&out, hostile) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seedgen: {e}");
            ExitCode::FAILURE
        }
    }
}
