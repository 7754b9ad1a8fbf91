//! Line and column of a byte offset in a document that is read once, as a stream.

use std::io::{self, BufRead, Read};

/// A `BufRead` that remembers where the lines it has passed start, so that a byte offset
/// reported by the XML parser can be turned into a line and a column without keeping
/// the document.
///
/// Only the newlines after the last [`forget_before`](Self::forget_before) mark are kept
/// one by one; the ones before are folded into a count. Callers mark the start of each
/// parser event, so memory stays bounded by the newlines of a single event.
pub struct LineTrackingReader<R> {
    inner: R,
    consumed: u64,
    lines_before_mark: u64,
    line_start_before_mark: u64,
    newlines_after_mark: Vec<u64>,
}

impl<R: BufRead> LineTrackingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            consumed: 0,
            lines_before_mark: 0,
            line_start_before_mark: 0,
            newlines_after_mark: Vec::new(),
        }
    }

    /// Folds every newline before `offset` into the running count; offsets asked about
    /// later must not be smaller than `offset`.
    pub fn forget_before(&mut self, offset: u64) {
        let passed = self.newlines_after_mark.partition_point(|&n| n < offset);
        if passed > 0 {
            self.lines_before_mark += passed as u64;
            self.line_start_before_mark = self.newlines_after_mark[passed - 1] + 1;
            self.newlines_after_mark.drain(..passed);
        }
    }

    /// The 1-based line and 1-based byte column of `offset`.
    pub fn line_column(&self, offset: u64) -> (u64, u64) {
        let passed = self.newlines_after_mark.partition_point(|&n| n < offset);
        let line_start = match passed {
            0 => self.line_start_before_mark,
            _ => self.newlines_after_mark[passed - 1] + 1,
        };
        let line = self.lines_before_mark + passed as u64 + 1;
        (line, offset.saturating_sub(line_start) + 1)
    }

    /// Bytes consumed from the inner reader so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }
}

impl<R: BufRead> Read for LineTrackingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineTrackingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buffered) = self.inner.fill_buf() {
            let base = self.consumed;
            let scanned = &buffered[..amount.min(buffered.len())];
            self.newlines_after_mark
                .extend(memchr::memchr_iter(b'\n', scanned).map(|i| base + i as u64));
        }
        self.inner.consume(amount);
        self.consumed += amount as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<R: BufRead>(reader: &mut LineTrackingReader<R>) {
        loop {
            let n = reader.fill_buf().unwrap().len().min(3);
            if n == 0 {
                break;
            }
            reader.consume(n);
        }
    }

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let text = b"ab\ncd\n\nefg";
        let mut reader = LineTrackingReader::new(&text[..]);
        drain(&mut reader);
        assert_eq!(reader.line_column(0), (1, 1));
        assert_eq!(reader.line_column(2), (1, 3));
        assert_eq!(reader.line_column(3), (2, 1));
        assert_eq!(reader.line_column(6), (3, 1));
        assert_eq!(reader.line_column(9), (4, 3));
        reader.forget_before(7);
        assert_eq!(reader.line_column(7), (4, 1));
        assert_eq!(reader.line_column(9), (4, 3));
    }
}
