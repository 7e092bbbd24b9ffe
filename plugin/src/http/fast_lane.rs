//! The fast lane: the two hot requests answered without hyper.
//!
//! `POST /inject` is what every event pays for, and `GET /sse` carries every
//! reply; on them hyper's general machinery (header map, body channel, boxed
//! service future, dispatcher, encoder) was about a third of the plugin's
//! work per event and most of its code footprint, which is what a CPU woken
//! for each event has to fetch again. So each connection starts here:
//! requests are parsed with `httparse` (the parser hyper uses, same
//! configuration). An ordinary, complete, authorized `POST /inject` with a
//! valid body is pushed and answered `202` in the very bytes hyper would have
//! written; an ordinary `GET /sse` (or `/events`) is streamed in hyper's
//! response head and chunked framing around the same hub stream.
//!
//! Everything else, at the first byte that is not ordinary, goes to hyper
//! with the connection and every byte read so far ([`FastLane::HandOver`]):
//! other routes, other methods (`HEAD` too), HTTP/1.0, any `Origin`,
//! `Expect`, `Transfer-Encoding`, `Upgrade` or `Connection` other than
//! `keep-alive`, a repeated `Host`, secret, `Content-Length` or
//! `Last-Event-ID`, a `Last-Event-ID` that is not a number, a `GET` with a
//! body, a body over the cap, a wrong secret or Host, a body the shortcut
//! does not accept, a push the core refuses. hyper then answers exactly as
//! if it had read the connection from the start, including every refusal and
//! its log line: the fast lane never refuses anything itself, so there is
//! one place that says no. (A connection handed over stays with hyper.)
//!
//! The header-read timeout holds here too: a request that has not sent its
//! headers within [`HEADER_READ_TIMEOUT`] of the lane starting to wait for it
//! closes the connection, as hyper does. A complete header whose body is slow
//! is handed over when the time is up (hyper then gives the body its own
//! time and answers 408 if it never comes).

use std::pin::pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::auth::{host_names_listener, Secret};
use super::decimal::Decimal;
use super::routes::{Api, MAX_BODY_BYTES};
use super::serve::HEADER_READ_TIMEOUT;

/// Headers an ordinary request carries (curl sends 5, browsers ~15); more
/// goes to hyper, which allows 100.
const MAX_HEADERS: usize = 32;
/// Request head size the lane reads before handing over.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// What one request at the start of a buffer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// An ordinary `POST /inject`, complete: `len` bytes, ending with `body`.
    Inject { len: usize, body: &'a [u8] },
    /// An ordinary `GET /sse` (or `/events`), complete: `len` bytes.
    Sse {
        len: usize,
        last_event_id: Option<u64>,
    },
    /// Ordinary so far, incomplete: read more. `head_done` once the whole
    /// head is in (only the body is missing).
    Partial { head_done: bool },
    /// Not for the lane: hyper answers it.
    Other,
}

/// The two request lines the lane takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Inject,
    Sse,
}

fn route_of(method: Option<&str>, path: Option<&str>) -> Option<Route> {
    match (method?, path?) {
        ("POST", "/inject") => Some(Route::Inject),
        ("GET", "/sse" | "/events") => Some(Route::Sse),
        _ => None,
    }
}

/// Whether a partial request line can still become one the lane takes.
fn may_become_ordinary(method: Option<&str>, path: Option<&str>, version: Option<u8>) -> bool {
    match (method, path) {
        (None, _) => true,
        (Some(m), None) => m == "POST" || m == "GET",
        (m, p) => route_of(m, p).is_some() && version.is_none_or(|v| v == 1),
    }
}

/// Read the request at the start of `buf` (see the module doc for what is
/// ordinary). Pure, so it is unit-tested and fuzzed on its own.
pub fn classify<'a>(buf: &'a [u8], port: u16, secret: &Secret) -> Request<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        // Decide as early as the request line allows.
        Ok(httparse::Status::Partial)
            if buf.len() < MAX_HEAD_BYTES
                && may_become_ordinary(request.method, request.path, request.version) =>
        {
            return Request::Partial { head_done: false };
        }
        _ => return Request::Other,
    };
    let Some(route) = route_of(request.method, request.path) else {
        return Request::Other;
    };
    if head_len > MAX_HEAD_BYTES || request.version != Some(1) {
        return Request::Other;
    }
    let (mut host, mut authorized, mut secrets) = (0, false, 0);
    let (mut length, mut last_event_id, mut last_event_ids) = (None, None, 0);
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        let value = header.value;
        if name.eq_ignore_ascii_case(b"host") {
            host += 1;
            if !host_names_listener(value, port) {
                return Request::Other;
            }
        } else if name.eq_ignore_ascii_case(b"authorization") {
            secrets += 1;
            authorized = secret.matches_authorization(value);
        } else if name.eq_ignore_ascii_case(super::auth::SECRET_HEADER.as_bytes()) {
            secrets += 1;
            authorized = secret.matches_secret_header(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // A GET with a body is hyper's to frame.
            if length.is_some() || route == Route::Sse {
                return Request::Other;
            }
            length = Some(match content_length(value) {
                Some(len) => len,
                None => return Request::Other,
            });
        } else if name.eq_ignore_ascii_case(b"last-event-id") {
            last_event_ids += 1;
            // Not a number: hyper's route answers the 400.
            last_event_id = match std::str::from_utf8(value).ok().map(str::trim) {
                Some(id) => match id.parse::<u64>() {
                    Ok(id) => Some(id),
                    Err(_) => return Request::Other,
                },
                None => return Request::Other,
            };
        } else if name.eq_ignore_ascii_case(b"connection") {
            if !value.trim_ascii().eq_ignore_ascii_case(b"keep-alive") {
                return Request::Other;
            }
        } else if name.eq_ignore_ascii_case(b"origin")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Request::Other;
        }
    }
    if host != 1 || secrets != 1 || !authorized || last_event_ids > 1 {
        return Request::Other;
    }
    if route == Route::Sse {
        return Request::Sse {
            len: head_len,
            last_event_id,
        };
    }
    let Some(length) = length.filter(|&length| length <= MAX_BODY_BYTES) else {
        return Request::Other;
    };
    let len = head_len + length;
    if buf.len() < len {
        return Request::Partial { head_done: true };
    }
    Request::Inject {
        len,
        body: &buf[head_len..len],
    }
}

/// 1 to 7 ASCII digits (the cap has 7), nothing else.
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 7 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')))
}

/// How the lane left a connection.
pub enum FastLane {
    /// The client closed it between requests (or went silent past the
    /// header-read timeout, or the socket failed): nothing more to answer.
    Closed,
    /// hyper takes over; these bytes were read and not answered.
    HandOver(Bytes),
}

/// Serve the connection's ordinary injects until it closes or something else
/// arrives.
pub async fn serve(stream: &mut TcpStream, api: &Api) -> FastLane {
    let st = api.state();
    let mut buf: Vec<u8> = Vec::with_capacity(MAX_HEAD_BYTES);
    let mut answers: Vec<u8> = Vec::new();
    let mut date = HttpDate::default();
    // The header-read clock starts when the lane starts waiting for a request.
    let mut deadline = Instant::now() + HEADER_READ_TIMEOUT;
    // One timer per connection, moved lazily: when it fires before the
    // current deadline it is set again. Setting a timer per request would
    // re-register it with the runtime's timer wheel each time, which also
    // wakes the runtime (an eventfd write and an extra epoll round) per event.
    let mut timer = pin!(tokio::time::sleep_until(deadline));
    loop {
        // Answer every complete ordinary inject in the buffer (pipelined
        // ones together), up to the first request that is not one.
        let mut used = 0;
        let mut hand_over = false;
        let mut head_done = false;
        let mut tried = None;
        let mut sse = None;
        loop {
            match classify(&buf[used..], st.port, &st.secret) {
                Request::Sse { len, last_event_id } => {
                    used += len;
                    sse = Some(last_event_id);
                    break;
                }
                Request::Inject { len, body } => match api.push_inject(body) {
                    Some((id, signal)) => {
                        answer_202(&mut answers, id, date.now());
                        used += len;
                        // The writer goes in order: the last event's signal
                        // covers the batch.
                        tried = signal;
                    }
                    None => {
                        hand_over = true;
                        break;
                    }
                },
                Request::Partial { head_done: done } => {
                    head_done = done;
                    break;
                }
                Request::Other => {
                    hand_over = true;
                    break;
                }
            }
        }
        if used > 0 {
            // The notifications first: the caller waits for the notification,
            // and on one thread it would queue behind the answers. So wait
            // until the stdout writer (woken by the pushes) has tried to write
            // them; it signals even when stdout is full, so a slow reader
            // does not hold the answers. Held events (session not ready yet)
            // have nothing to wait for.
            if let Some(tried) = tried {
                let _ = tried.await;
            }
            if let Err(err) = stream.write_all(&answers).await {
                tracing::debug!("HTTP connection ended while answering: {err}");
                return FastLane::Closed;
            }
            answers.clear();
            buf.drain(..used);
            deadline = Instant::now() + HEADER_READ_TIMEOUT;
        }
        if let Some(last_event_id) = sse {
            // The stream never ends, so nothing after it is ever answered
            // (as with hyper).
            return stream_sse(stream, api, last_event_id, date.now()).await;
        }
        if hand_over {
            return FastLane::HandOver(Bytes::from(buf));
        }
        if buf.capacity() == buf.len() {
            buf.reserve(MAX_HEAD_BYTES);
        }
        let read = tokio::select! {
            biased;
            read = stream.read_buf(&mut buf) => read,
            () = &mut timer => {
                if Instant::now() < deadline {
                    timer.as_mut().reset(deadline);
                    continue;
                }
                // A complete head with a slow body: hyper times the body.
                if head_done {
                    return FastLane::HandOver(Bytes::from(buf));
                }
                tracing::debug!(
                    buffered = buf.len(),
                    "HTTP connection closed: no complete request headers within {HEADER_READ_TIMEOUT:?}"
                );
                return FastLane::Closed;
            }
        };
        match read {
            // The client is done sending. A truncated request goes to hyper,
            // which sees the same bytes and the same end and answers as it
            // always does.
            Ok(0) if buf.is_empty() => return FastLane::Closed,
            Ok(0) => return FastLane::HandOver(Bytes::from(buf)),
            Ok(_) => {}
            Err(err) => {
                tracing::debug!("HTTP connection ended with an error: {err}");
                return FastLane::Closed;
            }
        }
    }
}

/// Bytes a client may send on an SSE connection before it is closed (it
/// should send none: the stream never ends, so nothing more is answered).
const SSE_INPUT_LIMIT: usize = 64 * 1024;

/// Serve `GET /sse` on this connection until the client goes away: hyper's
/// response head and chunked framing, byte for byte (the `date` aside), and
/// the same hub stream as `routes::sse`.
async fn stream_sse(
    stream: &mut TcpStream,
    api: &Api,
    last_event_id: Option<u64>,
    date: &[u8],
) -> FastLane {
    let st = api.state();
    tracing::info!(?last_event_id, "SSE client connected");
    tracing::debug!("SSE stream served by the fast lane");
    let mut events = pin!(st.hub.subscribe(last_event_id, st.keepalive));
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
          x-accel-buffering: no\r\ntransfer-encoding: chunked\r\ndate: ",
    );
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n\r\n");
    let mut ignored = 0usize;
    let mut sink = [0u8; 1024];
    loop {
        if !out.is_empty() {
            if let Err(err) = stream.write_all(&out).await {
                tracing::debug!("SSE connection ended while writing: {err}");
                return FastLane::Closed;
            }
            out.clear();
        }
        tokio::select! {
            biased;
            chunk = events.next() => {
                let Some(Ok(chunk)) = chunk else { return FastLane::Closed };
                frame_chunk(&mut out, &chunk);
            }
            read = stream.read(&mut sink) => match read {
                // The client went away: drop the stream at once, so the hub
                // stops counting it (a reply then waits for the next client
                // instead of going to a dead one).
                Ok(0) | Err(_) => return FastLane::Closed,
                Ok(n) => {
                    ignored += n;
                    if ignored > SSE_INPUT_LIMIT {
                        tracing::warn!(ignored, "SSE client kept sending after GET /sse; connection closed");
                        return FastLane::Closed;
                    }
                }
            },
        }
    }
}

/// One HTTP/1.1 chunk as hyper writes it: size in upper-case hex, CRLF, the
/// data, CRLF.
fn frame_chunk(out: &mut Vec<u8>, data: &[u8]) {
    use std::io::Write;
    let _ = write!(out, "{:X}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// hyper's answer to an accepted inject, byte for byte (the `date` aside).
fn answer_202(out: &mut Vec<u8>, id: u64, date: &[u8]) {
    let id = Decimal::of(id);
    let body_len = Decimal::of(9 + id.as_bytes().len() as u64); // {"id":"<id>"}
    out.extend_from_slice(
        b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: ",
    );
    out.extend_from_slice(body_len.as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n\r\n{\"id\":\"");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\"}");
}

/// The `date` header value, formatted once per second (as hyper caches it).
#[derive(Default)]
struct HttpDate {
    second: u64,
    text: String,
}

impl HttpDate {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        self.text.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 4097;

    fn secret() -> Secret {
        Secret::from_text("s3cret".into())
    }

    fn request(extra: &str, body: &str) -> String {
        format!(
            "POST /inject HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nAuthorization: Bearer s3cret\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn an_ordinary_inject_is_taken_whole() {
        let body = r#"{"content":"hi"}"#;
        for extra in [
            "",
            "Content-Type: application/json\r\n",
            "Connection: keep-alive\r\nAccept: */*\r\nUser-Agent: curl/8\r\n",
        ] {
            let text = request(extra, body);
            assert_eq!(
                classify(text.as_bytes(), PORT, &secret()),
                Request::Inject {
                    len: text.len(),
                    body: body.as_bytes()
                },
                "{text}"
            );
        }
        // The X-OPZero-Secret form, and localhost in any case.
        let text = format!(
            "POST /inject HTTP/1.1\r\nhost: LocalHost:{PORT}\r\nx-opzero-secret:  s3cret \r\ncontent-length: 2\r\n\r\n{{}}"
        );
        assert!(matches!(
            classify(text.as_bytes(), PORT, &secret()),
            Request::Inject { .. }
        ));
        // A pipelined second request is not part of the first.
        let two = request("", body) + &request("", body);
        assert_eq!(
            classify(two.as_bytes(), PORT, &secret()),
            Request::Inject {
                len: two.len() / 2,
                body: body.as_bytes()
            }
        );
    }

    #[test]
    fn incomplete_requests_wait_and_say_whether_the_head_is_in() {
        let text = request("", r#"{"content":"hi"}"#);
        let head = text.find("\r\n\r\n").unwrap() + 4;
        for cut in 0..head {
            assert_eq!(
                classify(&text.as_bytes()[..cut], PORT, &secret()),
                Request::Partial { head_done: false },
                "cut at {cut}"
            );
        }
        for cut in head..text.len() {
            assert_eq!(
                classify(&text.as_bytes()[..cut], PORT, &secret()),
                Request::Partial { head_done: true },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn anything_unusual_goes_to_hyper() {
        let body = r#"{"content":"hi"}"#;
        let ok = request("", body);
        let cases: Vec<String> = vec![
            ok.replace("POST /inject", "GET /inject"),
            ok.replace("POST /inject", "post /inject"),
            ok.replace("/inject", "/inject?x=1"),
            ok.replace("/inject", "/inject/"),
            ok.replace("/inject", "http://127.0.0.1:4097/inject"),
            ok.replace("/inject", "/permission"),
            ok.replace("HTTP/1.1", "HTTP/1.0"),
            ok.replace("Bearer s3cret", "Bearer s3creT"),
            ok.replace("Bearer s3cret", "Basic s3cret"),
            ok.replace("Authorization: Bearer s3cret\r\n", ""),
            ok.replace("127.0.0.1:4097", "127.0.0.1:4098"),
            ok.replace("127.0.0.1:4097", "evil.example:4097"),
            ok.replace("Host: 127.0.0.1:4097\r\n", ""),
            request("Host: 127.0.0.1:4097\r\n", body),
            request("Authorization: Bearer s3cret\r\n", body),
            request("X-OPZero-Secret: s3cret\r\n", body),
            request("Origin: http://127.0.0.1:3000\r\n", body),
            request("Expect: 100-continue\r\n", body),
            request("Transfer-Encoding: chunked\r\n", body),
            request("Upgrade: websocket\r\n", body),
            request("Connection: close\r\n", body),
            request("Connection: keep-alive, Upgrade\r\n", body),
            request(&format!("Content-Length: {}\r\n", body.len()), body),
            ok.replace("Content-Length: 16", "Content-Length: +16"),
            ok.replace("Content-Length: 16", "Content-Length: 1 6"),
            ok.replace("Content-Length: 16\r\n", ""),
            ok.replace("Content-Length: 16", "Content-Length: 1048577"),
            ok.replace("Content-Length: 16", "Content-Length: 99999999"),
            ok.replace("\r\n\r\n", "\r\nBad Header: x\r\n\r\n"),
            ok.replace("Authorization", " Authorization"),
            format!("\u{0}{ok}"),
        ];
        for text in &cases {
            assert_eq!(
                classify(text.as_bytes(), PORT, &secret()),
                Request::Other,
                "{text:?}"
            );
        }
        // Too many headers, or a head over 8 KiB even while incomplete.
        let many = request(&"X-A: 1\r\n".repeat(MAX_HEADERS), body);
        assert_eq!(classify(many.as_bytes(), PORT, &secret()), Request::Other);
        let long = request(&format!("X-Long: {}\r\n", "a".repeat(MAX_HEAD_BYTES)), body);
        assert_eq!(classify(long.as_bytes(), PORT, &secret()), Request::Other);
        assert_eq!(
            classify(&long.as_bytes()[..MAX_HEAD_BYTES + 10], PORT, &secret()),
            Request::Other
        );
        // A request line that already says "not ordinary" does not wait.
        for line in [
            &b"GET /status HTTP/1.1\r\n"[..],
            b"PUT ",
            b"POST /sse HTTP/1.1\r\n",
            b"GET /inject HTTP/1.1\r\n",
            b"GET /sse HTTP/1.0\r\n",
        ] {
            assert_eq!(classify(line, PORT, &secret()), Request::Other, "{line:?}");
        }
        for line in [&b"GET "[..], b"GET /sse HTTP/1.1\r\n", b"POST "] {
            assert_eq!(
                classify(line, PORT, &secret()),
                Request::Partial { head_done: false },
                "{line:?}"
            );
        }
    }

    fn sse(extra: &str) -> String {
        format!(
            "GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nAuthorization: Bearer s3cret\r\n{extra}\r\n"
        )
    }

    #[test]
    fn an_ordinary_sse_request_is_taken_with_its_last_event_id() {
        let text = sse("Accept: text/event-stream\r\n");
        assert_eq!(
            classify(text.as_bytes(), PORT, &secret()),
            Request::Sse {
                len: text.len(),
                last_event_id: None
            }
        );
        let text = sse("Last-Event-ID:  42 \r\n").replace("/sse", "/events");
        assert_eq!(
            classify(text.as_bytes(), PORT, &secret()),
            Request::Sse {
                len: text.len(),
                last_event_id: Some(42)
            }
        );
        // What follows is not part of it.
        let two = sse("") + &sse("");
        assert_eq!(
            classify(two.as_bytes(), PORT, &secret()),
            Request::Sse {
                len: two.len() / 2,
                last_event_id: None
            }
        );
        for cut in 0..text.len() {
            assert_eq!(
                classify(&text.as_bytes()[..cut], PORT, &secret()),
                Request::Partial { head_done: false },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_unusual_sse_request_goes_to_hyper() {
        for text in [
            sse("Last-Event-ID: x\r\n"),
            sse("Last-Event-ID: -1\r\n"),
            sse("Last-Event-ID: 1\r\nLast-Event-ID: 2\r\n"),
            sse("Content-Length: 0\r\n"),
            sse("Transfer-Encoding: chunked\r\n"),
            sse("Origin: http://localhost\r\n"),
            sse("Connection: close\r\n"),
            sse("").replace("Bearer s3cret", "Bearer nope"),
            sse("").replace("GET", "HEAD"),
            sse("").replace("/sse", "/sse?x"),
        ] {
            assert_eq!(
                classify(text.as_bytes(), PORT, &secret()),
                Request::Other,
                "{text:?}"
            );
        }
    }

    #[test]
    fn chunks_are_framed_as_hyper_frames_them() {
        let mut out = Vec::new();
        frame_chunk(&mut out, b": connected\n\n");
        assert_eq!(out, b"D\r\n: connected\n\n\r\n");
        out.clear();
        frame_chunk(&mut out, &[b'x'; 300]);
        assert!(out.starts_with(b"12C\r\nxxx") && out.ends_with(b"x\r\n"));
    }

    #[test]
    fn the_202_is_what_hyper_writes() {
        let mut out = Vec::new();
        answer_202(&mut out, 1, b"Sun, 22 Nov 2026 01:58:30 GMT");
        assert_eq!(
            out,
            b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 10\r\ndate: Sun, 22 Nov 2026 01:58:30 GMT\r\n\r\n{\"id\":\"1\"}"
        );
        out.clear();
        answer_202(&mut out, u64::MAX, b"D");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("{\"id\":\"18446744073709551615\"}"),
            "{text}"
        );
        assert!(text.contains("content-length: 29\r\n"), "{text}");
        let mut date = HttpDate::default();
        let first = date.now().to_vec();
        assert!(first.ends_with(b" GMT") && first.len() == 29);
    }
}
