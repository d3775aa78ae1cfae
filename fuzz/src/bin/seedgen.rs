//! Writes the seed corpora of every fuzz target and the operator dictionary:
//! `seedgen OUT_DIR [--no-hostile]` makes `OUT_DIR/<target>/<seed>` and
//! `OUT_DIR/operator.dict`. Seeds come from tests/data/golden, tests/data/hostile (left out
//! with `--no-hostile`) and one or more valid OperatorDefs per registered operator.

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

fn run(out: &Path, hostile: bool) -> std::io::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    write(
        &out.join("tensor_proto"),
        &seeds::tensor_proto(&repo, hostile)?,
    )?;
    write(&out.join("memonger"), &seeds::memonger(&repo)?)?;
    write(&out.join("db_minidb"), &seeds::db_minidb(&repo, hostile)?)?;
    write(&out.join("db_lmdb"), &seeds::db_lmdb(&repo, hostile)?)?;
    let registered = seeds::registered_operators();
    if registered.is_empty() {
        return Err(std::io::Error::other(
            "the library lists no registered operator",
        ));
    }
    write(&out.join("operator"), &seeds::operator(&registered))?;
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
