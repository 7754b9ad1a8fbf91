//! How a flow tells of its progress without drawing anything: the binary turns these
//! calls into progress bars, benchmarks and tests pass [`Quiet`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Hears of the long steps of a flow (uploads, downloads, waits).
pub trait Observer: Send + Sync {
    /// A step begins: `total` bytes will pass through it, or `None` for a wait of unknown
    /// length. The step ends when the returned handle is dropped.
    fn step(&self, label: &str, total: Option<u64>) -> Box<dyn Step>;
}

/// One step in progress; dropping it ends the step.
pub trait Step: Send + Sync {
    /// `bytes` more bytes of the step are done.
    fn advance(&self, bytes: u64);
}

/// Hears nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn step(&self, _label: &str, _total: Option<u64>) -> Box<dyn Step> {
        Box::new(Quiet)
    }
}

impl Step for Quiet {
    fn advance(&self, _bytes: u64) {}
}

/// A reader that tells `step` of every byte read through it.
pub(crate) struct Observed<R> {
    inner: R,
    step: Box<dyn Step>,
}

impl<R> Observed<R> {
    pub(crate) fn new(inner: R, step: Box<dyn Step>) -> Self {
        Self { inner, step }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Observed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.step.advance((buf.filled().len() - before) as u64);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::AsyncReadExt;

    struct Counter(Arc<AtomicU64>);

    impl Step for Counter {
        fn advance(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn observed_reads_count_every_byte() {
        let seen = Arc::new(AtomicU64::new(0));
        let mut reader = Observed::new(&b"twelve bytes"[..], Box::new(Counter(seen.clone())));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"twelve bytes");
        assert_eq!(seen.load(Ordering::Relaxed), 12);
    }
}
