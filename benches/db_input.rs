//! Batch assembly throughput for TensorProtosDBInput (issue 5 benchmark, Rust part).
//!
//! Scenarios (records already in memory, so only decode + batch assembly is timed):
//!   (a) image records: one BYTE tensor 3×224×224 in byte_data, plus an INT32 label;
//!   (b) float records: one FLOAT tensor of 2048 values, packed float_data.
//! Contenders, run back to back in one process:
//!   fast    — caffe2rs's scanner path (`BatchAssembler`), payload copied straight into the batch;
//!   pooled  — the same, batch buffers reused from a `BufferPool` (as the prefetcher does);
//!   via DB  — `BatchReader` without threads over the records in a minidb on tmpfs (mapped);
//!   via LMDB — the same over the records in an LMDB on tmpfs (written through heed);
//!   LMDB pf 1 — `BatchReader` with 1 worker thread over that LMDB;
//!   prefetch 1/2 — `BatchReader` with 1 and 2 worker threads, the consumer only takes batches;
//!   prost   — full prost decode of each record, then a copy into the batch;
//!   memcpy  — copying just the payload bytes of the same records into a batch buffer (the floor).
//! Prints records/s, GB/s of payload and the ratios fast/prost and fast/memcpy.
//! Run: `cargo bench --bench db_input`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use std::sync::Arc;

use caffe2rs::db::{BatchAssembler, BatchReader, DbReader, Mode, Record, decode_record, open_db};
use caffe2rs::proto::{TensorProto, TensorProtos};
use caffe2rs::tensor::BufferPool;
use caffe2rs::tensor::rows::stack_rows;
use prost::Message;

const BATCH: usize = 32;

fn image_record(i: usize) -> (Record, usize) {
    let pixels: Vec<u8> = (0..3 * 224 * 224)
        .map(|j| ((i * 31 + j) % 251) as u8)
        .collect();
    let image = TensorProto {
        dims: vec![3, 224, 224],
        data_type: Some(3),
        byte_data: Some(pixels),
        ..Default::default()
    };
    let label = TensorProto {
        dims: vec![],
        data_type: Some(2),
        int32_data: vec![i as i32 % 1000],
        ..Default::default()
    };
    let payload = 3 * 224 * 224 + 4;
    (
        (
            format!("{i:08}").into_bytes(),
            TensorProtos {
                protos: vec![image, label],
            }
            .encode_to_vec(),
        ),
        payload,
    )
}

fn float_record(i: usize) -> (Record, usize) {
    let values: Vec<f32> = (0..2048).map(|j| (i * 2048 + j) as f32 * 0.001).collect();
    let t = TensorProto {
        dims: vec![2048],
        data_type: Some(1),
        float_data: values,
        ..Default::default()
    };
    (
        (
            format!("{i:08}").into_bytes(),
            TensorProtos { protos: vec![t] }.encode_to_vec(),
        ),
        2048 * 4,
    )
}

/// Runs `f` once per batch until `budget` passes; returns batches per second.
fn rate(budget: Duration, mut f: impl FnMut(usize)) -> f64 {
    f(0); // warm-up
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        f(n);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn scenario(name: &str, make: fn(usize) -> (Record, usize), num_outputs: usize) {
    let pool: Vec<(Record, usize)> = (0..BATCH * 4).map(make).collect();
    let payload_per_record = pool[0].1;
    let batches: Vec<Vec<Record>> = pool
        .chunks(BATCH)
        .map(|c| c.iter().map(|(r, _)| r.clone()).collect())
        .collect();
    let assembler = BatchAssembler {
        batch_size: BATCH,
        num_outputs,
    };
    let budget = Duration::from_millis(1500);

    let fast = rate(budget, |n| {
        black_box(
            assembler
                .assemble(&batches[n % batches.len()])
                .expect("valid records"),
        );
    });
    let buffers = BufferPool::new(4 * num_outputs);
    let pooled = rate(budget, |n| {
        black_box(
            assembler
                .assemble_pooled(&batches[n % batches.len()], Some(&buffers))
                .expect("valid records"),
        );
    });
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir
        .join(format!("c2rs-bench-{}.minidb", std::process::id()))
        .to_string_lossy()
        .into_owned();
    let db = open_db("minidb", &path, Mode::New).expect("create minidb");
    let mut t = db.new_transaction().expect("transaction");
    for ((k, v), _) in &pool {
        t.put(k, v).expect("put");
    }
    drop(t);
    drop(db);
    let through_db = |db_type: &str, path: &str, threads: usize| {
        let reader = Arc::new(DbReader::open(db_type, path, 1, 0).expect("open DB"));
        let br = BatchReader::new(reader, assembler, 4, threads).expect("batch reader");
        rate(budget, |_| {
            black_box(br.next().expect("batch"));
        })
    };
    let (via_db, prefetch1, prefetch2) = (
        through_db("minidb", &path, 0),
        through_db("minidb", &path, 1),
        through_db("minidb", &path, 2),
    );
    let _ = std::fs::remove_file(&path);
    // The same records in an LMDB (a directory), values this size on overflow pages.
    let lmdb_path = dir
        .join(format!("c2rs-bench-{}.lmdb", std::process::id()))
        .to_string_lossy()
        .into_owned();
    let _ = std::fs::remove_dir_all(&lmdb_path);
    let db = open_db("lmdb", &lmdb_path, Mode::New).expect("create LMDB");
    let mut t = db.new_transaction().expect("transaction");
    for ((k, v), _) in &pool {
        t.put(k, v).expect("put");
    }
    t.commit().expect("commit");
    drop(t);
    drop(db);
    let (via_lmdb, lmdb_prefetch1) = (
        through_db("lmdb", &lmdb_path, 0),
        through_db("lmdb", &lmdb_path, 1),
    );
    let _ = std::fs::remove_dir_all(&lmdb_path);
    let prost = rate(budget, |n| {
        let decoded: Vec<Vec<_>> = batches[n % batches.len()]
            .iter()
            .map(|(k, v)| decode_record(k, v, num_outputs).expect("valid"))
            .collect();
        for o in 0..num_outputs {
            black_box(
                stack_rows(&decoded.iter().map(|r| &r[o]).collect::<Vec<_>>())
                    .expect("same shapes"),
            );
        }
    });
    // The floor: the payload bytes of each record (found once, outside the timing) copied into a batch.
    let payload_slices: Vec<Vec<(usize, usize)>> = batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|(_, v)| {
                    let start = v.len() - payload_per_record.min(v.len());
                    (start, v.len())
                })
                .collect()
        })
        .collect();
    let mut dst = vec![0u8; BATCH * payload_per_record];
    let memcpy = rate(budget, |n| {
        let i = n % batches.len();
        for (k, ((_, v), &(s, e))) in batches[i].iter().zip(&payload_slices[i]).enumerate() {
            dst[k * payload_per_record..k * payload_per_record + (e - s)].copy_from_slice(&v[s..e]);
        }
        black_box(&dst);
    });
    let gbps = |batches_per_s: f64| batches_per_s * (BATCH * payload_per_record) as f64 / 1e9;
    println!("{name}: batch {BATCH}, payload {payload_per_record} B/record");
    for (label, r) in [
        ("fast", fast),
        ("pooled", pooled),
        ("via DB", via_db),
        ("prefetch 1", prefetch1),
        ("prefetch 2", prefetch2),
        ("via LMDB", via_lmdb),
        ("LMDB pf 1", lmdb_prefetch1),
        ("prost", prost),
        ("memcpy", memcpy),
    ] {
        println!(
            "  {label:<10} {:>12.0} records/s  {:>7.2} GB/s",
            r * BATCH as f64,
            gbps(r)
        );
    }
    println!(
        "  ratio fast/prost = {:.2}x, fast/memcpy = {:.0}%, via DB/memcpy = {:.0}%, via LMDB/memcpy = {:.0}%, prefetch 2/1 = {:.2}x",
        fast / prost,
        100.0 * fast / memcpy,
        100.0 * via_db / memcpy,
        100.0 * via_lmdb / memcpy,
        prefetch2 / prefetch1
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    scenario("(a) image uint8 3x224x224 byte_data", image_record, 2);
    scenario("(b) float 2048 packed", float_record, 1);
}
