//! The `/inject` fast lane: ordinary inject requests answered without hyper.
//!
//! `/inject` is what every event pays for, and on it hyper's general
//! machinery (header map, body channel, boxed service future, response
//! encoder) was about a third of the plugin's work per event and most of its
//! code footprint, which is what a CPU woken for each event has to fetch
//! again. So each connection starts here: requests are parsed with
//! `httparse` (the parser hyper uses, same configuration), and one that is
//! an ordinary, complete, authorized `POST /inject` with a valid body is
//! pushed and answered `202` in the very bytes hyper would have written.
//!
//! Everything else, at the first byte that is not ordinary, goes to hyper
//! with the connection and every byte read so far ([`FastLane::HandOver`]):
//! other routes, other methods, HTTP/1.0, any `Origin`, `Expect`,
//! `Transfer-Encoding`, `Upgrade` or `Connection` other than `keep-alive`, a
//! repeated `Host`, secret or `Content-Length`, a body over the cap, a wrong
//! secret or Host, a body the shortcut does not accept, a push the core
//! refuses. hyper then answers exactly as if it had read the connection from
//! the start, including every refusal and its log line: the fast lane never
//! refuses anything itself, so there is one place that says no.
//!
//! The header-read timeout holds here too: a request that has not sent its
//! headers within [`HEADER_READ_TIMEOUT`] of the lane starting to wait for it
//! closes the connection, as hyper does. A complete header whose body is slow
//! is handed over when the time is up (hyper then gives the body its own
//! time and answers 408 if it never comes).

use std::pin::pin;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::auth::{host_names_listener, Secret};
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
    /// Ordinary so far, incomplete: read more. `head_done` once the whole
    /// head is in (only the body is missing).
    Partial { head_done: bool },
    /// Not for the lane: hyper answers it.
    Other,
}

/// Read the request at the start of `buf` (see the module doc for what is
/// ordinary). Pure, so it is unit-tested and fuzzed on its own.
pub fn classify<'a>(buf: &'a [u8], port: u16, secret: &Secret) -> Request<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {
            // Decide as early as the request line allows.
            return match (request.method, request.path, request.version) {
                (Some(m), _, _) if m != "POST" => Request::Other,
                (_, Some(p), _) if p != "/inject" => Request::Other,
                (_, _, Some(v)) if v != 1 => Request::Other,
                _ => Request::Partial { head_done: false },
            };
        }
        _ => return Request::Other,
    };
    if head_len > MAX_HEAD_BYTES
        || request.method != Some("POST")
        || request.path != Some("/inject")
        || request.version != Some(1)
    {
        return Request::Other;
    }
    let (mut host, mut authorized, mut secrets, mut length) = (0, false, 0, None);
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
            authorized = value.len() > 7
                && value[..7].eq_ignore_ascii_case(b"bearer ")
                && secret.matches(value[7..].trim_ascii());
        } else if name.eq_ignore_ascii_case(super::auth::SECRET_HEADER.as_bytes()) {
            secrets += 1;
            authorized = secret.matches(value.trim_ascii());
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return Request::Other;
            }
            length = Some(match content_length(value) {
                Some(len) => len,
                None => return Request::Other,
            });
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
    let Some(length) = length else {
        return Request::Other;
    };
    if host != 1 || secrets != 1 || !authorized || length > MAX_BODY_BYTES {
        return Request::Other;
    }
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
        loop {
            match classify(&buf[used..], st.port, &st.secret) {
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

/// hyper's answer to an accepted inject, byte for byte (the `date` aside).
fn answer_202(out: &mut Vec<u8>, id: u64, date: &[u8]) {
    let mut digits = itoa_buf();
    let id = fmt_u64(&mut digits, id);
    let body_len = 9 + id.len(); // {"id":"<id>"}
    let mut len_digits = itoa_buf();
    let body_len = fmt_u64(&mut len_digits, body_len as u64);
    out.extend_from_slice(
        b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: ",
    );
    out.extend_from_slice(body_len);
    out.extend_from_slice(b"\r\ndate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n\r\n{\"id\":\"");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\"}");
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `n` in decimal, written at the end of `buf`.
fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
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
        assert_eq!(
            classify(b"GET /sse HTTP/1.1\r\n", PORT, &secret()),
            Request::Other
        );
        assert_eq!(classify(b"GET ", PORT, &secret()), Request::Other);
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
