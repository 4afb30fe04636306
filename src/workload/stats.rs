//! Latency histograms, counters and the live progress line.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The largest latency recorded exactly; slower operations are clamped to it.
const MAX_LATENCY_MICROS: u64 = 60_000_000;

/// Latencies and counters of one worker, read by the progress printer every second.
#[derive(Debug)]
pub struct Recorder {
    inner: Mutex<Counts>,
}

/// What a recorder has seen: over the whole run and since the last progress line.
#[derive(Clone, Debug)]
pub struct Counts {
    /// Latencies of successful operations in microseconds, since the run started.
    pub total: Histogram<u64>,
    /// Latencies since the last progress line.
    pub interval: Histogram<u64>,
    /// Operations that failed (after retries, or with a non-retryable error).
    pub errors: u64,
    /// Retries of operations that hit a serialization failure or deadlock.
    pub retries: u64,
    /// The first error message seen, to tell the user what went wrong.
    pub first_error: Option<String>,
}

impl Counts {
    /// Empty counts.
    pub fn new() -> Counts {
        Counts {
            total: new_histogram(),
            interval: new_histogram(),
            errors: 0,
            retries: 0,
            first_error: None,
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = self.total.add(&other.total);
        let _ = self.interval.add(&other.interval);
        self.errors += other.errors;
        self.retries += other.retries;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

impl Default for Counts {
    fn default() -> Self {
        Counts::new()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).expect("valid histogram bounds")
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            inner: Mutex::new(Counts::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panicking worker leaves plain counters behind; they are still meaningful.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a successful operation that took `latency`.
    pub fn record(&self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_MICROS);
        let mut counts = self.lock();
        counts.total.saturating_record(micros);
        counts.interval.saturating_record(micros);
    }

    /// Records a failed operation.
    pub fn error(&self, message: String) {
        let mut counts = self.lock();
        counts.errors += 1;
        if counts.first_error.is_none() {
            counts.first_error = Some(message);
        }
    }

    /// Records one retry.
    pub fn retry(&self) {
        self.lock().retries += 1;
    }

    /// Copies the counts out and resets the interval histogram.
    pub fn take_interval(&self) -> Counts {
        let mut counts = self.lock();
        let snapshot = counts.clone();
        counts.interval.reset();
        snapshot
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// Merges the counts of all recorders, resetting their interval histograms.
pub fn collect(recorders: &[Arc<Recorder>]) -> Counts {
    let mut all = Counts::new();
    for recorder in recorders {
        all.merge(&recorder.take_interval());
    }
    all
}

/// A quantile of a microsecond histogram in milliseconds.
pub fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    if histogram.is_empty() {
        return 0.0;
    }
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// Prints one progress line per second on stderr until `deadline`.
pub async fn progress(recorders: Vec<Arc<Recorder>>, start: Instant, deadline: Instant) {
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::from_std(start) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last = start;
    eprintln!(
        "{:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "elapsed", "ops/s", "p50(ms)", "p95(ms)", "p99(ms)", "errors", "retries"
    );
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if now > deadline + Duration::from_millis(500) {
            return;
        }
        let counts = collect(&recorders);
        let secs = now.duration_since(last).as_secs_f64();
        last = now;
        let h = &counts.interval;
        eprintln!(
            "{:>7.1}s {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>8}",
            now.duration_since(start).as_secs_f64(),
            h.len() as f64 / secs,
            quantile_ms(h, 0.50),
            quantile_ms(h, 0.95),
            quantile_ms(h, 0.99),
            counts.errors,
            counts.retries,
        );
        let _ = std::io::stderr().flush();
    }
}
