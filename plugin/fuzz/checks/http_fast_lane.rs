//! The `/inject` fast lane's request classifier, `http::fast_lane::classify`,
//! on any bytes. `{S}` in the input becomes the real secret and `{P}` the
//! port, so the fuzzer can reach authorized requests.
//!
//! Properties: no panic; a request taken (an inject, or an SSE stream with
//! no body) is exactly one head (ending in a blank line) and its declared
//! body, inside the input, taken
//! the same way whatever follows it; every shorter prefix of it is
//! `Partial` (the lane waits for more rather than handing over a request it
//! would have taken whole); what it takes names the listener in `Host` and
//! carries the secret.
//!
//! Shared by the fuzz target `fuzz_targets/http_fast_lane.rs` and the stable replay test
//! `plugin/tests/regressions_fuzz.rs` (seeds and every crash input, on every CI run).

use std::sync::OnceLock;

use channel_plugin::http::auth::Secret;
use channel_plugin::http::fast_lane::{classify, Request};

const PORT: u16 = 41234;

fn secret() -> &'static Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    SECRET.get_or_init(|| Secret::generate().expect("OS randomness"))
}

fn fill(data: &[u8], secret: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(b"{S}") {
            out.extend_from_slice(secret.as_bytes());
            i += 3;
        } else if data[i..].starts_with(b"{P}") {
            out.extend_from_slice(PORT.to_string().as_bytes());
            i += 3;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    let secret = secret();
    let buf = fill(data, secret.expose());
    let taken = classify(&buf, PORT, secret);
    let (len, body) = match taken {
        Request::Inject { len, body } => (len, body),
        Request::Sse { len, .. } => (len, &[][..]),
        Request::Partial { .. } | Request::Other => return,
    };
    assert!(len <= buf.len(), "took {len} bytes of {}", buf.len());
    let head_len = len - body.len();
    assert_eq!(
        &buf[head_len..len],
        body,
        "the body is not the end of the request"
    );
    // A blank line ends the head; `httparse` (so hyper too) also takes a
    // bare LF as a line end (regressions/http_fast_lane/bare_lf_blank_line).
    let before_blank = buf[..head_len]
        .strip_suffix(b"\n")
        .map(|h| h.strip_suffix(b"\r").unwrap_or(h));
    assert!(
        before_blank.is_some_and(|h| h.ends_with(b"\n")),
        "the head does not end with a blank line"
    );
    assert_eq!(
        classify(&buf[..len], PORT, secret),
        taken,
        "what follows the request changed how it was read"
    );
    for cut in 0..len {
        assert!(
            matches!(classify(&buf[..cut], PORT, secret), Request::Partial { .. }),
            "a {cut}-byte prefix of a request taken whole was not Partial"
        );
    }
    let head = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase();
    assert!(
        head.contains(&format!("127.0.0.1:{PORT}")) || head.contains(&format!("localhost:{PORT}"))
    );
    assert!(head.contains(secret.expose()), "taken without the secret");
}
