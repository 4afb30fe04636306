//! Throughput and latency of single-key `Set` and `Get` calls of the KV gRPC API.
//!
//! ```text
//! cargo run --release -p txn --example kv_bench -- 127.0.0.1:50051 [concurrency] [seconds] [value bytes]
//! ```
//!
//! Runs a Set phase (each client writes its own keys) then a Get phase (each client reads keys
//! written in the Set phase), each for the given number of seconds with `concurrency` clients,
//! one gRPC connection each, and prints calls per second and latency percentiles.

use std::time::{Duration, Instant};

use txn::kvapi::Client;

/// Keys per client; the Set phase cycles through them.
const KEYS_PER_CLIENT: usize = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Set,
    Get,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().cloned().unwrap_or("127.0.0.1:50051".into());
    let concurrency: usize = args.get(1).map_or(Ok(16), |a| a.parse())?;
    let seconds: u64 = args.get(2).map_or(Ok(10), |a| a.parse())?;
    let value_bytes: usize = args.get(3).map_or(Ok(100), |a| a.parse())?;
    let tenant = format!("bench-{}", std::process::id());
    println!(
        "kv_bench: {addr}, {concurrency} clients, {seconds} s per phase, {value_bytes}-byte values"
    );
    for phase in [Phase::Set, Phase::Get] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            let client = Client::connect(&addr).await?.with_tenant(&tenant);
            tasks.push(tokio::spawn(run(client, c, phase, deadline, value_bytes)));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            latencies.extend(l);
            errors += e;
        }
        report(phase, &mut latencies, errors, seconds);
    }
    Ok(())
}

async fn run(
    client: Client,
    c: usize,
    phase: Phase,
    deadline: Instant,
    value_bytes: usize,
) -> (Vec<Duration>, usize) {
    let value = vec![b'v'; value_bytes];
    let (mut latencies, mut errors) = (Vec::new(), 0);
    let mut i = 0;
    while Instant::now() < deadline {
        let key = format!("c{c:04}-k{:06}", i % KEYS_PER_CLIENT);
        let start = Instant::now();
        let ok = match phase {
            Phase::Set => client.set(key.as_bytes(), &value).await.is_ok(),
            Phase::Get => client.get(key.as_bytes()).await.is_ok(),
        };
        latencies.push(start.elapsed());
        errors += usize::from(!ok);
        i += 1;
    }
    (latencies, errors)
}

fn report(phase: Phase, latencies: &mut [Duration], errors: usize, seconds: u64) {
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(i).copied().unwrap_or_default()
    };
    let name = match phase {
        Phase::Set => "Set",
        Phase::Get => "Get",
    };
    println!(
        "{name}: {} calls, {:.0}/s, errors {errors}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / seconds as f64,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3,
    );
}
