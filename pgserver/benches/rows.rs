//! Micro-benchmark of result encoding: 1,000 rows of (int, text, float) into DataRow messages,
//! in text format (what psql and simple-protocol clients get) and in binary format (what drivers
//! using the extended protocol usually ask for).
//!
//! Run with `cargo bench -p pgserver --bench rows`; BENCHMARKS.md records the results.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sql::{DataType, Value};

/// Rows per encoded result.
const ROWS: usize = 1_000;

fn rows() -> Vec<Vec<Value>> {
    (0..ROWS as i64)
        .map(|i| {
            vec![
                Value::Int(i * 7919),
                Value::Text(format!("customer-{i:06}")),
                Value::Float(i as f64 * 1.25 + 0.1),
            ]
        })
        .collect()
}

fn encode_rows(c: &mut Criterion) {
    let rows = rows();
    let types = [DataType::Int8, DataType::Text, DataType::Float8];
    let mut g = c.benchmark_group("data_rows_1000");
    g.throughput(Throughput::Elements(ROWS as u64));
    for (name, binary) in [("text", false), ("binary", true)] {
        let mut out = BytesMut::with_capacity(64 * ROWS);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                pgserver::encode_data_rows(black_box(&rows), &types, binary, &mut out)
                    .expect("encode rows")
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = encode_rows
}
criterion_main!(benches);
