//! The `/inject` fast lane answers exactly as hyper does: two real plugins,
//! one with the lane and one without (`--no-fast-lane`), get the same raw
//! requests over real sockets (ordinary injects, pipelined ones, truncated,
//! refused and unusual ones, and thousands of byte-level mutations of them),
//! and must write the same responses (the `date` header aside) and the same
//! notifications to Claude Code.

mod support;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::http::HttpPlugin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Appended to every case: answered, it makes the plugin close the
/// connection, which ends the exchange. A case that leaves a request open
/// (a body shorter than its length, a cut head) swallows it; those exchanges
/// end after [`OPEN_CASE_WAIT`] with whatever was answered by then.
const SENTINEL: &str =
    "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nConnection: close\r\n\r\n";
const OPEN_CASE_WAIT: Duration = Duration::from_millis(1500);

/// Send `bytes` on a fresh connection and read until the plugin closes it
/// (or [`OPEN_CASE_WAIT`]). Our side is never shut down first: hyper drops
/// what it has not answered when a client half-closes, the lane answers it.
/// Blanked: `date:` values, `/status`'s pid, event ids and SSE client
/// counts (cases run concurrently, so both depend on timing) and the
/// answer's length that follows from the id, and the port.
async fn exchange(port: u16, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(OPEN_CASE_WAIT, stream.read_to_end(&mut out))
        .await
        .is_ok();
    // Error messages name the port (both are 5-digit ephemeral ports).
    let mut text = String::from_utf8_lossy(&out).replace(&port.to_string(), "{PORT}");
    for (key, stop) in [
        ("date: ", '\r'),
        ("\"pid\":", ','),
        ("{\"id\":\"", '"'),
        ("\"sseClients\":", ','),
    ] {
        text = blank_values(&text, key, stop);
    }
    // ...and so the length of an accepted inject's answer.
    for n in 10..30 {
        let answer = format!("content-length: {n}\r\ndate: _\r\n\r\n{{\"id\":\"_\"}}");
        text = text.replace(
            &answer,
            "content-length: _\r\ndate: _\r\n\r\n{\"id\":\"_\"}",
        );
    }
    if !closed {
        text.push_str("<still open>");
    }
    text
}

/// Every value after `key`, up to `stop`, replaced by `_`.
fn blank_values(text: &str, key: &str, stop: char) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split(key).enumerate() {
        if i > 0 {
            out.push_str(key);
            out.push('_');
            out.push_str(&part[part.find(stop).unwrap_or(part.len())..]);
        } else {
            out.push_str(part);
        }
    }
    out
}

/// `template` with `{PORT}` and `{SECRET}` filled in for `plugin` (the
/// secrets of both plugins have the same length, so lengths agree).
fn fill(template: &[u8], plugin: &HttpPlugin) -> Vec<u8> {
    String::from_utf8_lossy(template)
        .replace("{PORT}", &plugin.port.to_string())
        .replace("{SECRET}", &plugin.secret)
        .into_bytes()
}

fn inject(extra: &str, body: &str) -> String {
    format!(
        "POST /inject HTTP/1.1\r\nHost: 127.0.0.1:{{PORT}}\r\nAuthorization: Bearer {{SECRET}}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn templates() -> Vec<Vec<u8>> {
    let ok = r#"{"content":"hello","chat_id":"c1","meta":{"user":"ana"}}"#;
    let mut t: Vec<String> = vec![
        inject("", ok),
        inject("Content-Type: application/json\r\nConnection: keep-alive\r\n", ok),
        inject("", r#"{"content":"no chat id"}"#),
        inject("", r#"{"content":"m","meta":{"chat_id":"from-meta","n":7,"b":true}}"#),
        inject("", r#"{"content":"esc \"q\" \u00e9 \n","meta":{"k":"v\\"}}"#),
        inject("", ok) + &inject("", r#"{"content":"second"}"#) + &inject("", ok),
        inject("", ok) + "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n\r\n" + &inject("", ok),
        inject("", ok) + &inject("Origin: http://localhost:3000\r\n", ok),
        inject("", ok) + &inject("", "{not json}") + &inject("", ok),
        inject("", "{not json}"),
        inject("", r#"{"content":""}"#),
        inject("", r#"{"content":"x","meta":{"bad-key":"v","ok":"1"}}"#),
        inject("", r#"{"content":"x","meta":[]}"#),
        inject("", r#"{"content":"x","content":"y"}"#),
        inject("", "[]"),
        inject("", ""),
        inject("Expect: 100-continue\r\n", ok),
        inject("Connection: close\r\n", ok) + &inject("", ok),
        inject("Origin: http://evil.example\r\n", ok),
        inject("", ok).replace("Bearer {SECRET}", "Bearer wrong"),
        inject("", ok).replace("Authorization", "X-OPZero-Secret").replace("Bearer ", ""),
        inject("", ok).replace("{PORT}", "1"),
        inject("", ok).replace("HTTP/1.1", "HTTP/1.0"),
        // Bare LF line ends (httparse, so hyper and the lane, take them).
        inject("", ok).replace("\r\n", "\n"),
        inject("", ok).replacen("\r\n\r\n", "\r\n\n", 1),
        inject("", ok).replace("/inject", "/inject?x=1"),
        inject("", ok).replace("/inject", "/nope"),
        inject("", ok).replace("POST", "GET"),
        inject(&format!("Content-Length: {}\r\n", ok.len()), ok),
        inject("Transfer-Encoding: chunked\r\n", ok),
        "POST /inject HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nAuthorization: Bearer {SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"content\":\"ch\"}\r\n0\r\n\r\n".into(),
        // Truncated: the head, part of the body, part of the head.
        inject("", ok)[..inject("", ok).len() - 5].to_string(),
        inject("", ok)[..40].to_string(),
        inject("", ok) + &inject("", ok)[..60],
        inject("", ok).replace("Content-Length: 56", "Content-Length: 2000000"),
        String::new(),
    ];
    // Pipelined ordinary ones, many at once.
    t.push(
        (0..20)
            .map(|i| inject("", &format!(r#"{{"content":"p{i}"}}"#)))
            .collect(),
    );
    t.into_iter().map(String::into_bytes).collect()
}

fn sse_templates() -> Vec<Vec<u8>> {
    let get = |extra: &str| {
        format!("GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{{PORT}}\r\nAuthorization: Bearer {{SECRET}}\r\n{extra}\r\n")
    };
    let ok = r#"{"content":"before the stream"}"#;
    [
        get(""),
        get("Accept: text/event-stream\r\nCache-Control: no-cache\r\n"),
        get("Last-Event-ID: 0\r\n"),
        get("Last-Event-ID: 99999\r\n"),
        get("Last-Event-ID: x\r\n"),
        get("").replace("/sse", "/events"),
        get("").replace("GET", "HEAD"),
        get("Origin: http://localhost:3000\r\n"),
        get("").replace("Bearer {SECRET}", "Bearer nope"),
        inject("", ok) + &get(""),
        get("") + &inject("", ok),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// Byte-level mutations: flip, insert, delete, duplicate a span.
fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        if out.is_empty() {
            out.push(b'x');
        }
        let at = rng.random_range(0..out.len());
        match rng.random_range(0..5) {
            0 => out[at] = rng.random(),
            1 => out[at] = b" \r\n:/{}\"0aA\t"[rng.random_range(0..12)],
            2 => {
                out.remove(at);
            }
            3 => out.insert(at, b"\r\n: ,\"{"[rng.random_range(0..7)]),
            _ => {
                let end = (at + rng.random_range(1..16)).min(out.len());
                let span = out[at..end].to_vec();
                out.splice(at..at, span);
            }
        }
    }
    out
}

/// The `count` notifications the plugin wrote (and then no more), sorted:
/// cases run concurrently, so only the set is the same on both sides.
async fn notifications(plugin: &mut HttpPlugin, count: usize) -> Vec<String> {
    let mut all = Vec::with_capacity(count);
    for _ in 0..count {
        let frame = plugin
            .mcp
            .expect_notification("notifications/claude/channel")
            .await;
        all.push(frame["params"].to_string());
    }
    plugin.mcp.expect_no_frame(Duration::from_millis(300)).await;
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_lane_answers_every_request_as_hyper_does() {
    let mut lane = HttpPlugin::start_with_env(&[], &[("RUST_LOG", "channel_plugin=debug")]).await;
    let mut hyper_only = HttpPlugin::start(&["--no-fast-lane"]).await;
    lane.mcp.handshake().await;
    hyper_only.mcp.handshake().await;
    assert_eq!(lane.secret.len(), hyper_only.secret.len());

    let mut cases = templates();
    let mut rng = StdRng::seed_from_u64(0x1a7e);
    let seeds = cases.clone();
    // SSE requests, as they are (an open stream keeps its exchange waiting
    // for OPEN_CASE_WAIT, so they are not mutated by the thousand; the fuzz
    // target and the unit tests cover their parsing).
    cases.extend(sse_templates());
    for _ in 0..1500 {
        let seed = &seeds[rng.random_range(0..seeds.len())];
        cases.push(mutate(&mut rng, seed));
    }
    let mut accepted = 0;
    let mut open = 0;
    for (batch_at, batch) in cases.chunks(64).enumerate() {
        let exchanges = batch.iter().map(|case| {
            let case = [case.as_slice(), SENTINEL.as_bytes()].concat();
            let (to_lane, to_hyper) = (fill(&case, &lane), fill(&case, &hyper_only));
            let (lane_port, hyper_port) = (lane.port, hyper_only.port);
            async move {
                tokio::join!(
                    exchange(lane_port, &to_lane),
                    exchange(hyper_port, &to_hyper)
                )
            }
        });
        for (i, (a, b)) in futures_util::future::join_all(exchanges)
            .await
            .into_iter()
            .enumerate()
        {
            let n = batch_at * 64 + i;
            assert_eq!(
                a,
                b,
                "case {n} {:?}: the fast lane (left) and hyper (right) answered differently",
                String::from_utf8_lossy(&cases[n])
            );
            accepted += a.matches("202 Accepted").count();
            open += usize::from(a.ends_with("<still open>"));
        }
    }
    // The ordinary requests (and many mutants) were accepted; the lane did
    // real work here, not only hand-overs.
    assert!(accepted > 100, "only {accepted} injects accepted");
    // One notification per 202, the same on both sides.
    let (a, b) = (
        notifications(&mut lane, accepted).await,
        notifications(&mut hyper_only, accepted).await,
    );
    assert_eq!(a, b, "the notifications differ");
    let log = lane.mcp.stderr();
    assert!(!log.contains("panicked"), "{log}");
    let fast = log.matches("event injected (fast lane)").count();
    let streams = log.matches("SSE stream served by the fast lane").count();
    println!(
        "{} cases ({open} left a request open), {accepted} injects accepted, {fast} by the fast lane, {streams} SSE streams by the fast lane",
        cases.len()
    );
    assert!(
        streams >= 6,
        "the lane served {streams} of the ordinary SSE requests"
    );
    assert!(
        fast > 100 && fast < accepted,
        "the lane took {fast} of {accepted} accepted injects; it should take the ordinary ones and leave the rest to hyper"
    );
}
