//! A minimal HTTP/1.1 client: exactly what the benches need (keep-alive POSTs,
//! pipelining, one long GET for SSE) and nothing that costs time per request.
//! The parser is sans-I/O so the blocking ([`Conn`]) and async
//! ([`crate::aio`]) connections share it.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context};

/// `POST /inject` with a bearer secret, ready to write.
pub fn inject_request(port: u16, secret: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST /inject HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {secret}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// `GET /sse` with a bearer secret.
pub fn sse_request(port: u16, secret: &str) -> Vec<u8> {
    format!(
        "GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {secret}\r\n\
         Accept: text/event-stream\r\n\r\n"
    )
    .into_bytes()
}

/// The head of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// `None` with `chunked` false: no body length (a stream to EOF).
    pub content_length: Option<usize>,
    pub chunked: bool,
}

/// Parse a response head at the start of `buf`: `(head, bytes consumed)`.
pub fn parse_head(buf: &[u8]) -> anyhow::Result<Option<(Head, usize)>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("response head over 64 KiB");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut head = Head {
        status,
        content_length: None,
        chunked: false,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(value.parse().context("bad content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    Ok(Some((head, end + 4)))
}

/// Parse one complete response (head and body) at the start of `buf`:
/// `(status, bytes consumed)`. Bodies must be sized (content-length or
/// chunked); the responses to `/inject` always are.
pub fn parse_response(buf: &[u8]) -> anyhow::Result<Option<(u16, usize)>> {
    let Some((head, head_len)) = parse_head(buf)? else {
        return Ok(None);
    };
    if head.chunked {
        let mut pos = head_len;
        loop {
            let Some(nl) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
                return Ok(None);
            };
            let size_text = std::str::from_utf8(&buf[pos..pos + nl])?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("bad chunk size {size_text:?}"))?;
            pos += nl + 2;
            if buf.len() < pos + size + 2 {
                return Ok(None);
            }
            pos += size + 2;
            if size == 0 {
                return Ok(Some((head.status, pos)));
            }
        }
    }
    let len = head.content_length.unwrap_or(0);
    if buf.len() < head_len + len {
        return Ok(None);
    }
    Ok(Some((head.status, head_len + len)))
}

/// A blocking keep-alive connection (TCP_NODELAY) that reads whole responses.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).context("writing the request")
    }

    /// Block until one whole response arrived; its status.
    pub fn read_response(&mut self) -> anyhow::Result<u16> {
        loop {
            if let Some((status, used)) = parse_response(&self.buf)? {
                self.buf.drain(..used);
                return Ok(status);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .context("reading the response")?;
            if n == 0 {
                bail!("connection closed before a whole response arrived");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Read whatever arrived and count the complete responses in it
    /// (pipelining): `(accepted 2xx, other)`.
    pub fn read_some_responses(&mut self) -> anyhow::Result<(u64, u64)> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).context("reading responses")?;
        if n == 0 {
            bail!("connection closed with responses outstanding");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        let (mut ok, mut other) = (0, 0);
        let mut pos = 0;
        while let Some((status, used)) = parse_response(&self.buf[pos..])? {
            pos += used;
            if (200..300).contains(&status) {
                ok += 1;
            } else {
                other += 1;
            }
        }
        self.buf.drain(..pos);
        Ok((ok, other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sized_and_chunked_responses() {
        let a = b"HTTP/1.1 202 Accepted\r\ncontent-length: 10\r\n\r\n{\"id\":\"1\"}HTTP/1.1";
        assert_eq!(parse_response(a).unwrap(), Some((202, a.len() - 8)));
        let b = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse_response(b).unwrap(), Some((200, b.len())));
        assert_eq!(parse_response(&b[..b.len() - 1]).unwrap(), None);
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
    }
}
