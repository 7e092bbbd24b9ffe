//! Newline-delimited frame reader for the stdio transport.
//!
//! MCP over stdio is one JSON value per line. The reader hands out raw lines
//! (bytes, so invalid UTF-8 can be reported as a parse error instead of an I/O
//! error) and enforces a size cap: a line longer than the cap is reported once
//! as [`Frame::TooLong`] and skipped up to its newline *without* being buffered
//! whole, so a runaway peer cannot make us allocate without bound.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Default cap on one incoming line (4 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// One unit read from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line over the cap; `len` bytes were discarded (newline excluded).
    TooLong { len: usize },
}

/// Reads [`Frame`]s from an [`AsyncBufRead`].
///
/// Cancel-safe: all progress lives in `self`, so dropping a pending
/// [`FrameReader::next_frame`] future (e.g. in `select!`) loses nothing.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    max_line_bytes: usize,
    buf: Vec<u8>,
    /// `Some(n)`: the current line went over the cap; `n` bytes were dropped.
    discarding: Option<usize>,
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        Self {
            inner,
            max_line_bytes,
            buf: Vec::new(),
            discarding: None,
        }
    }

    /// The next frame, or `None` at end of input. A last line without a
    /// trailing newline is still returned.
    pub async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if let Some(len) = self.discarding.take() {
                    return Ok(Some(Frame::TooLong { len }));
                }
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.finish_line()));
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    let frame = if let Some(dropped) = self.discarding.take() {
                        Frame::TooLong {
                            len: dropped + newline,
                        }
                    } else if self.buf.len() + newline > self.max_line_bytes {
                        let len = self.buf.len() + newline;
                        self.buf = Vec::new();
                        Frame::TooLong { len }
                    } else {
                        self.buf.extend_from_slice(&available[..newline]);
                        self.finish_line()
                    };
                    self.inner.consume(newline + 1);
                    return Ok(Some(frame));
                }
                None => {
                    let n = available.len();
                    if let Some(dropped) = self.discarding.as_mut() {
                        *dropped += n;
                    } else if self.buf.len() + n > self.max_line_bytes {
                        self.discarding = Some(self.buf.len() + n);
                        // Release the memory of the oversized prefix now.
                        self.buf = Vec::new();
                    } else {
                        self.buf.extend_from_slice(available);
                    }
                    self.inner.consume(n);
                }
            }
        }
    }

    fn finish_line(&mut self) -> Frame {
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Frame::Line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], cap: usize) -> Vec<Frame> {
        // A tiny BufReader capacity exercises lines split across reads.
        let reader = tokio::io::BufReader::with_capacity(3, input);
        let mut frames_reader = FrameReader::new(reader, cap);
        let mut out = Vec::new();
        while let Some(frame) = frames_reader.next_frame().await.unwrap() {
            out.push(frame);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn splits_lines_and_strips_cr() {
        let got = frames(b"{\"a\":1}\r\n\nabc\nlast", 100).await;
        assert_eq!(
            got,
            vec![line("{\"a\":1}"), line(""), line("abc"), line("last")]
        );
    }

    #[tokio::test]
    async fn oversized_line_is_reported_once_and_skipped() {
        let got = frames(b"ok\n0123456789abcdef\nnext\n", 10).await;
        assert_eq!(
            got,
            vec![line("ok"), Frame::TooLong { len: 16 }, line("next")]
        );
    }

    #[tokio::test]
    async fn line_exactly_at_cap_is_accepted() {
        let got = frames(b"0123456789\n01234567890\n", 10).await;
        assert_eq!(got, vec![line("0123456789"), Frame::TooLong { len: 11 }]);
    }

    #[tokio::test]
    async fn oversized_line_at_eof_is_reported() {
        let got = frames(b"ok\n0123456789abcdef", 10).await;
        assert_eq!(got, vec![line("ok"), Frame::TooLong { len: 16 }]);
    }

    #[tokio::test]
    async fn invalid_utf8_is_passed_through_as_bytes() {
        let got = frames(b"\xff\xfe\n", 10).await;
        assert_eq!(got, vec![Frame::Line(vec![0xff, 0xfe])]);
    }
}
