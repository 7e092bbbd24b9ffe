//! A sans-I/O Server-Sent Events parser that also undoes HTTP chunked
//! transfer encoding (axum streams SSE chunked; Node, Bun and the floor may not).

use anyhow::{bail, Context};

use crate::http::parse_head;

/// One event: its `event:` name (default `message`) and joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Parser {
    raw: Vec<u8>,
    /// `None` until the response head was read.
    chunked: Option<bool>,
    /// Decoded body bytes not yet split into events.
    text: Vec<u8>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes from the socket.
    pub fn feed(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.raw.extend_from_slice(bytes);
        if self.chunked.is_none() {
            let Some((head, used)) = parse_head(&self.raw)? else {
                return Ok(());
            };
            if head.status != 200 {
                bail!("GET /sse answered {}", head.status);
            }
            self.chunked = Some(head.chunked);
            self.raw.drain(..used);
        }
        if self.chunked == Some(true) {
            let mut pos = 0;
            while let Some(nl) = self.raw[pos..].windows(2).position(|w| w == b"\r\n") {
                let size_text = std::str::from_utf8(&self.raw[pos..pos + nl])?;
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .with_context(|| format!("bad chunk size {size_text:?}"))?;
                if self.raw.len() < pos + nl + 2 + size + 2 {
                    break;
                }
                let start = pos + nl + 2;
                self.text.extend_from_slice(&self.raw[start..start + size]);
                pos = start + size + 2;
            }
            self.raw.drain(..pos);
        } else {
            self.text.append(&mut self.raw);
        }
        Ok(())
    }

    /// The head was read (the stream is open).
    pub fn connected(&self) -> bool {
        self.chunked.is_some()
    }

    /// The next complete event, skipping comments (keep-alives).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let end = self.text.windows(2).position(|w| w == b"\n\n")?;
            let block: Vec<u8> = self.text.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let mut event = Event {
                name: "message".into(),
                data: String::new(),
            };
            let mut any = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event.name = v.trim_start().to_string();
                    any = true;
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    any = true;
                }
            }
            if any {
                return Some(event);
            }
        }
    }
}

/// A blocking SSE stream.
pub struct Stream {
    pub conn: std::net::TcpStream,
    parser: Parser,
}

impl Stream {
    pub fn open(port: u16, secret: &str) -> anyhow::Result<Stream> {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))?;
        conn.set_nodelay(true)?;
        conn.write_all(&crate::http::sse_request(port, secret))?;
        let mut s = Stream {
            conn,
            parser: Parser::new(),
        };
        while !s.parser.connected() {
            s.fill()?;
        }
        Ok(s)
    }

    fn fill(&mut self) -> anyhow::Result<()> {
        use std::io::Read;
        let mut chunk = [0u8; 16 * 1024];
        let n = self.conn.read(&mut chunk)?;
        if n == 0 {
            bail!("SSE stream closed");
        }
        self.parser.feed(&chunk[..n])
    }

    /// Block until the next event named `name`.
    pub fn next_named(&mut self, name: &str) -> anyhow::Result<Event> {
        loop {
            while let Some(ev) = self.parser.next_event() {
                if ev.name == name {
                    return Ok(ev);
                }
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_plain_streams() {
        let mut p = Parser::new();
        p.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .unwrap();
        assert!(p.connected());
        p.feed(b"1d\r\nid: 1\nevent: reply\ndata: {}\n\n\r\n4\r\n: k\n\r\n")
            .unwrap();
        assert_eq!(
            p.next_event(),
            Some(Event {
                name: "reply".into(),
                data: "{}".into()
            })
        );
        assert_eq!(p.next_event(), None);
        let mut p = Parser::new();
        p.feed(b"HTTP/1.1 200 OK\r\n\r\n: hi\n\nevent: x\ndata: a\ndata: b\n\n")
            .unwrap();
        assert_eq!(
            p.next_event(),
            Some(Event {
                name: "x".into(),
                data: "a\nb".into()
            })
        );
    }
}
