//! Counters and latency histograms in Prometheus' text format, served over plain HTTP
//! on a loopback address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the histogram buckets: relay overhead sits in the
/// sub-millisecond to millisecond range, end-to-end latency in seconds.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A latency histogram in seconds, with Prometheus's buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    inner: Mutex<HistogramData>,
}

#[derive(Debug, Default, Clone)]
struct HistogramData {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    max: f64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let mut data = self.inner.lock().expect("histogram lock");
        for (bound, count) in BUCKETS.iter().zip(data.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        data.count += 1;
        data.sum += seconds;
        data.max = data.max.max(seconds);
    }

    /// Observations so far, their mean and their maximum.
    pub fn summary(&self) -> (u64, Duration, Duration) {
        let data = self.inner.lock().expect("histogram lock");
        let mean = if data.count == 0 {
            0.0
        } else {
            data.sum / data.count as f64
        };
        (
            data.count,
            Duration::from_secs_f64(mean),
            Duration::from_secs_f64(data.max),
        )
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let data = self.inner.lock().expect("histogram lock").clone();
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (bound, count) in BUCKETS.iter().zip(data.counts.iter()) {
            out.push_str(&format!("{name}_bucket{{le=\"{bound}\"}} {count}\n"));
        }
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {}\n", data.count));
        out.push_str(&format!(
            "{name}_sum {}\n{name}_count {}\n",
            data.sum, data.count
        ));
    }
}

/// Everything the relay counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests admitted from the hospital channels.
    pub received: AtomicU64,
    /// Requests served on Ethereum and completed on their channel.
    pub served: AtomicU64,
    /// Requests answered with FailRecovery.
    pub failed: AtomicU64,
    /// Messages refused (failed proof, or a frozen chain).
    pub refused: AtomicU64,
    /// Chains frozen.
    pub frozen: AtomicU64,
    /// Events whose index was already admitted (read again), ignored.
    pub duplicates: AtomicU64,
    /// The relay's own time per request: verification and bookkeeping, no chain waits.
    pub overhead: Histogram,
    /// From admitting a request to its answer being committed on the channel.
    pub end_to_end: Histogram,
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "medcert_relay_received_total",
                "Requests admitted from hospital channels.",
                &self.received,
            ),
            (
                "medcert_relay_served_total",
                "Requests served on Ethereum and completed on their channel.",
                &self.served,
            ),
            (
                "medcert_relay_failed_total",
                "Requests answered with FailRecovery.",
                &self.failed,
            ),
            (
                "medcert_relay_refused_total",
                "Messages refused (failed proof or frozen chain).",
                &self.refused,
            ),
            ("medcert_relay_frozen_total", "Chains frozen.", &self.frozen),
            (
                "medcert_relay_duplicates_total",
                "Events with an already admitted index, ignored.",
                &self.duplicates,
            ),
        ];
        for (name, help, counter) in counters {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        self.overhead.render(
            "medcert_relay_overhead_seconds",
            "Relay's own verification and bookkeeping time per request, excluding chain waits.",
            &mut out,
        );
        self.end_to_end.render(
            "medcert_relay_end_to_end_seconds",
            "From admitting a request to its answer committed on the channel.",
            &mut out,
        );
        out
    }
}

/// Serves `metrics` at every path of `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request itself does not matter; read what arrived so the client sees
            // an orderly close.
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
            let body = metrics.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = stream.write_all(response.as_bytes()).await {
                tracing::debug!(%peer, error = %e, "metrics client went away");
            }
        });
    }
}

/// Only loopback addresses may serve metrics (the project's network rule).
pub fn check_loopback(addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "metrics address {addr} is not a loopback address; use 127.0.0.1:PORT"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_has_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        Metrics::count(&metrics.received);
        Metrics::count(&metrics.received);
        metrics.overhead.observe(Duration::from_micros(300));
        metrics.overhead.observe(Duration::from_millis(3));
        let text = metrics.render();
        assert!(text.contains("medcert_relay_received_total 2\n"), "{text}");
        assert!(text.contains("medcert_relay_overhead_seconds_bucket{le=\"0.00025\"} 0\n"));
        assert!(text.contains("medcert_relay_overhead_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("medcert_relay_overhead_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("medcert_relay_overhead_seconds_count 2\n"));
        let (count, mean, max) = metrics.overhead.summary();
        assert_eq!(count, 2);
        assert_eq!(mean, Duration::from_micros(1650));
        assert_eq!(max, Duration::from_millis(3));
    }

    #[test]
    fn only_loopback_serves_metrics() {
        assert!(check_loopback("127.0.0.1:9100".parse().unwrap()).is_ok());
        assert!(check_loopback("[::1]:9100".parse().unwrap()).is_ok());
        assert!(check_loopback("0.0.0.0:9100".parse().unwrap()).is_err());
    }

    #[tokio::test]
    async fn serves_the_text_over_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        Metrics::count(&metrics.frozen);
        let server = tokio::spawn(serve(listener, metrics));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains("medcert_relay_frozen_total 1"));
        server.abort();
    }
}
