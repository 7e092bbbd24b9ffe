//! The HTTP bridge end to end: the real binary, a scripted MCP client on its
//! stdio, and a real HTTP client on loopback.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::http::HttpPlugin;
use support::{reply_call, tool_text, TIMEOUT};

#[tokio::test]
async fn inject_becomes_a_channel_notification_with_the_right_params() {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    let id = p
        .inject_ok(json!({"content": "hello <b>", "chat_id": "c42", "meta": {"user": "ana", "n": 7, "ok": true}}))
        .await;
    assert_eq!(id, "1");
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(
        n["params"],
        json!({"content": "hello <b>", "meta": {"chat_id": "c42", "user": "ana", "n": "7", "ok": "true"}})
    );
    // chat_id defaults to "inject"; meta.chat_id is used when no top-level one.
    assert_eq!(p.inject_ok(json!({"content": "two"})).await, "2");
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(
        n["params"],
        json!({"content": "two", "meta": {"chat_id": "inject"}})
    );
    p.inject_ok(json!({"content": "three", "meta": {"x": "1", "chat_id": "m"}}))
        .await;
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["meta"], json!({"chat_id": "m", "x": "1"}));
    // The X-OPZero-Secret header works too.
    let r = p
        .client
        .post(p.url("/inject"))
        .header("X-OPZero-Secret", &p.secret)
        .json(&json!({"content": "four"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["content"], "four");
}

#[tokio::test]
async fn reply_reaches_sse_and_buffers_while_no_client_listens() {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    // No SSE client yet: the reply is buffered and the model is told so.
    p.mcp
        .send(&reply_call(2, json!({"text": "early", "chat_id": "c1"})))
        .await;
    let r = p.mcp.expect_response(2).await;
    assert!(r["result"].get("isError").is_none(), "{r}");
    assert!(tool_text(&r).contains("buffered"), "{r}");

    let mut sse = p.sse(None).await;
    let e = sse.next_event().await;
    assert_eq!((e.id, e.event.as_str()), (Some(1), "reply"));
    assert_eq!(e.data["text"], "early");
    assert_eq!(e.data["chat_id"], "c1");
    assert_eq!(e.data["final"], true);
    assert!(e.data["ts"].as_u64().unwrap() > 1_600_000_000_000);

    p.mcp
        .send(&reply_call(3, json!({"text": "live", "final": false})))
        .await;
    let r = p.mcp.expect_response(3).await;
    assert!(tool_text(&r).contains("1 connected client"), "{r}");
    let e = sse.next_event().await;
    assert_eq!(e.id, Some(2));
    assert_eq!(e.data["text"], "live");
    assert_eq!(e.data["final"], false);
    assert_eq!(e.data["chat_id"], Value::Null);

    // The events route is the same stream.
    let status = p
        .authed(Method::GET, "/events")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);

    // Bad reply arguments: isError result, nothing published.
    p.mcp.send(&reply_call(4, json!({"chat_id": "c1"}))).await;
    let r = p.mcp.expect_response(4).await;
    assert_eq!(r["result"]["isError"], true);
    sse.expect_no_event(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn an_sse_client_that_goes_away_is_dropped_at_once_and_misses_nothing() {
    // Keep-alives far apart: only noticing the close itself can drop it.
    let mut p = HttpPlugin::start(&["--sse-keepalive-secs", "600"]).await;
    p.mcp.handshake().await;
    let sse = p.sse(None).await;
    assert_eq!(p.status().await["sseClients"], 1);
    drop(sse);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while p.status().await["sseClients"] != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed SSE connection still counts as a client: replies would go to it and be lost"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // So a reply now is buffered for the next client, not sent into the void.
    p.mcp
        .send(&reply_call(2, json!({"text": "after the drop"})))
        .await;
    let r = p.mcp.expect_response(2).await;
    assert!(tool_text(&r).contains("buffered"), "{r}");
    let mut again = p.sse(None).await;
    assert_eq!(again.next_event().await.data["text"], "after the drop");
}

#[tokio::test]
async fn an_sse_client_that_keeps_sending_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = HttpPlugin::start(&[]).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", p.port))
        .await
        .unwrap();
    let get = format!(
        "GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\r\n",
        p.port, p.secret
    );
    stream.write_all(get.as_bytes()).await.unwrap();
    // The stream opens...
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(": connected") {
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
            .await
            .expect("the SSE stream opens")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK\r\n"));
    // ...nothing after GET /sse is ever answered, and 100 KiB more must not
    // be read forever: the plugin closes (a reset, with input unread, is
    // fine for a client that misbehaves).
    let _ = stream.write_all(&vec![b'x'; 100 * 1024]).await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest))
        .await
        .expect("the plugin closes the connection");
    // The cut is logged (stderr is collected by another thread: wait for it).
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !p.mcp.stderr().contains("SSE client kept sending") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut is not logged: {}",
            p.mcp.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn last_event_id_replays_what_the_client_missed() {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    let mut first = p.sse(None).await;
    for (i, text) in ["a", "b", "c", "d"].iter().enumerate() {
        p.mcp
            .send(&reply_call(10 + i as i64, json!({"text": text})))
            .await;
        p.mcp.expect_response(10 + i as i64).await;
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(first.next_event().await.id.unwrap());
    }
    assert_eq!(seen, vec![1, 2, 3, 4]);
    drop(first);
    // Reconnect having seen only event 2: events 3 and 4 come again, in order.
    let mut again = p.sse(Some(2)).await;
    let e3 = again.next_event().await;
    let e4 = again.next_event().await;
    assert_eq!((e3.id, e3.data["text"].clone()), (Some(3), json!("c")));
    assert_eq!((e4.id, e4.data["text"].clone()), (Some(4), json!("d")));
    // A fresh client without Last-Event-ID does not get delivered events again.
    let mut fresh = p.sse(None).await;
    fresh.expect_no_event(Duration::from_millis(500)).await;
    // A malformed Last-Event-ID is refused.
    let r = p
        .authed(Method::GET, "/sse")
        .header("Last-Event-ID", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn keepalive_comments_flow_on_an_idle_stream() {
    let mut p = HttpPlugin::start(&["--sse-keepalive-secs", "1"]).await;
    p.mcp.handshake().await;
    let mut sse = p.sse(None).await;
    assert_eq!(
        sse.next_block(TIMEOUT).await,
        support::http::SseBlock::Comment("connected".into())
    );
    assert_eq!(
        sse.next_block(TIMEOUT).await,
        support::http::SseBlock::Comment("keep-alive".into())
    );
}

#[tokio::test]
async fn auth_is_required_on_every_route_but_status() {
    let p = HttpPlugin::start(&[]).await;
    for (method, path) in [
        (Method::POST, "/inject"),
        (Method::GET, "/sse"),
        (Method::GET, "/events"),
        (Method::POST, "/permission"),
    ] {
        let none = p
            .client
            .request(method.clone(), p.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            none.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without secret"
        );
        let body: Value = none.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("missing secret"),
            "{body}"
        );
        let wrong = p
            .client
            .request(method.clone(), p.url(path))
            .bearer_auth("0".repeat(64))
            .send()
            .await
            .unwrap();
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong secret"
        );
        let wrong = p
            .client
            .request(method, p.url(path))
            .header("X-OPZero-Secret", "nope")
            .send()
            .await
            .unwrap();
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong X-OPZero-Secret"
        );
    }
    let status = p.client.get(p.url("/status")).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    let body: Value = status.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["sessionId"], p.session_id);
    assert_eq!(body["pid"], p.mcp.pid());
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["initialized"], false);
    assert!(
        !body.to_string().contains(&p.secret),
        "secret leaked in /status"
    );
    let r = p.authed(Method::GET, "/nope").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn routing_is_exact_and_a_wrong_method_is_405_with_allow() {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    // A wrong method on a route: 405 naming the allowed ones, secret or not.
    for (method, path, allow) in [
        (Method::GET, "/inject", "POST"),
        (Method::PUT, "/inject", "POST"),
        (Method::GET, "/permission", "POST"),
        (Method::POST, "/sse", "GET, HEAD"),
        (Method::DELETE, "/events", "GET, HEAD"),
        (Method::POST, "/status", "GET, HEAD"),
    ] {
        for authed in [false, true] {
            let request = if authed {
                p.authed(method.clone(), path)
            } else {
                p.client.request(method.clone(), p.url(path))
            };
            let r = request.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(r.headers()["allow"], allow, "{method} {path}");
            assert_eq!(r.headers()["content-type"], "application/json");
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains(allow),
                "{method} {path}: {body}"
            );
        }
    }
    // Paths match exactly; a query string does not matter.
    for path in ["/inject/", "/Inject", "//inject", "/inject/x", "/"] {
        let r = p.authed(Method::POST, path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("try POST /inject"),
            "{body}"
        );
    }
    let r = p
        .authed(Method::POST, "/inject?via=query")
        .json(&json!({"content": "with a query"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"id": "1"}));
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["content"], "with a query");
    // HEAD: the headers of GET, no body; HEAD /sse subscribes nothing.
    let head = p.client.head(p.url("/status")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-type"], "application/json");
    assert!(head.bytes().await.unwrap().is_empty());
    let head = p.authed(Method::HEAD, "/sse").send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-type"], "text/event-stream");
    assert!(head.bytes().await.unwrap().is_empty());
    let status = p.status().await;
    assert_eq!(status["sseClients"], 0, "HEAD /sse left a client: {status}");
}

#[tokio::test]
async fn foreign_host_or_origin_is_forbidden() {
    let p = HttpPlugin::start(&[]).await;
    let evil_host = format!("evil.example:{}", p.port);
    let other_port = format!("127.0.0.1:{}", p.port.wrapping_add(1));
    for host in [evil_host.as_str(), other_port.as_str(), "127.0.0.1"] {
        for path in ["/status", "/inject"] {
            let r = p
                .authed(Method::POST, path)
                .header("Host", host)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "Host {host} {path}");
        }
    }
    let localhost = format!("localhost:{}", p.port);
    let r = p
        .client
        .get(p.url("/status"))
        .header("Host", localhost)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example:80",
    ] {
        let r = p
            .authed(Method::POST, "/inject")
            .header("Origin", origin)
            .json(&json!({"content":"x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "Origin {origin}");
    }
    let r = p
        .authed(Method::POST, "/inject")
        .header("Origin", "http://127.0.0.1:4097")
        .json(&json!({"content": "from the web UI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn bad_bodies_and_meta_are_refused_with_reasons() {
    let p = HttpPlugin::start(&[]).await;
    let cases = [
        ("not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ("{}", "missing \"content\""),
        ("{\"content\": 5}", "\"content\" must be a string"),
        ("{\"content\": \"\"}", "\"content\" is empty"),
        (
            "{\"content\": \"x\", \"chat_id\": 1}",
            "\"chat_id\" must be a string",
        ),
        (
            "{\"content\": \"x\", \"meta\": [1]}",
            "meta must be a JSON object",
        ),
    ];
    for (body, needle) in cases {
        let r = p
            .authed(Method::POST, "/inject")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = r.json().await.unwrap();
        assert!(
            err["error"].as_str().unwrap().contains(needle),
            "{body}: {err}"
        );
    }
    let r = p
        .inject(json!({"content": "x", "meta": {"good": "1", "bad-key": "v", "nested": {"a": 1}, "list": [1], "2x": "v"}}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["keys"], json!(["bad-key", "nested", "list", "2x"]));
    let text = err["error"].as_str().unwrap();
    assert!(text.contains("\"nested\": value is an object"), "{text}");
    assert!(text.contains("\"bad-key\": key must match"), "{text}");
}

#[tokio::test]
async fn bodies_over_one_mib_are_refused_with_413() {
    let p = HttpPlugin::start(&[]).await;
    // Declared too large: refused from the headers, before any body is sent,
    // when the client waits for `100 Continue` or declares more than the
    // drain limit (8 MiB).
    for extra in [
        "Expect: 100-continue\r\nContent-Length: 2000000",
        "Content-Length: 100000000",
    ] {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        write!(
            stream,
            "POST /inject HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n{extra}\r\n\r\n",
            p.port, p.secret
        )
        .unwrap();
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.starts_with("HTTP/1.1 413"), "{extra}: {head}");
    }

    // Declared just over the cap and sent at once (as curl does for small
    // bodies): the body is drained, so the client reads a 413, not a reset.
    let over = vec![b' '; 1024 * 1024 + 1];
    let r = reqwest::Client::new()
        .post(p.url("/inject"))
        .bearer_auth(&p.secret)
        .body(over)
        .send()
        .await
        .expect("a 413 response, not a broken connection");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Streamed (chunked) past the limit: refused once it crosses 1 MiB.
    let chunk = vec![b' '; 64 * 1024];
    let chunks =
        futures_util::stream::iter((0..20).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    // A client of its own: the server closes this connection after refusing,
    // and a pooled connection must not be reused by the next request.
    let r = reqwest::Client::new()
        .post(p.url("/inject"))
        .bearer_auth(&p.secret)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    let r = r.expect("a 413 response: the refused body is drained");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("1048576 byte limit"),
        "{err}"
    );
    // Just under the limit is fine.
    let content = "y".repeat(1024 * 1024 - 100);
    let r = p.inject(json!({ "content": content })).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn permission_relay_end_to_end() {
    let mut p = HttpPlugin::start(&["--permission-relay"]).await;
    let init = p.mcp.handshake().await;
    assert_eq!(
        init["capabilities"]["experimental"]["claude/channel/permission"],
        json!({})
    );
    let mut sse = p.sse(None).await;
    p.mcp
        .notify(
            "notifications/claude/channel/permission_request",
            json!({"request_id": "abcde", "tool_name": "Bash", "description": "List files",
                   "input_preview": "{\"command\":\"ls\"}", "tool_kind": "shell"}),
        )
        .await;
    let e = sse.next_event().await;
    assert_eq!(e.event, "permission_request");
    assert_eq!(e.data["request_id"], "abcde");
    assert_eq!(e.data["tool_name"], "Bash");
    assert_eq!(e.data["input_preview"], "{\"command\":\"ls\"}");
    let (client, url, secret) = (p.client.clone(), p.url("/permission"), p.secret.clone());
    let verdict = |id: &str, behavior: &str| {
        client
            .post(&url)
            .bearer_auth(&secret)
            .json(&json!({"request_id": id, "behavior": behavior}))
            .send()
    };
    assert_eq!(
        verdict("zzzzz", "allow").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        verdict("abcde", "maybe").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        verdict("ABCDE", "allow").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel/permission")
        .await;
    assert_eq!(
        n["params"],
        json!({"request_id": "abcde", "behavior": "allow"})
    );
    let e = sse.next_event().await;
    assert_eq!(
        (e.event.as_str(), e.data.clone()),
        (
            "permission_resolved",
            json!({"request_id": "abcde", "behavior": "allow"})
        )
    );
    assert_eq!(
        verdict("abcde", "deny").await.unwrap().status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn permission_route_is_off_without_the_flag() {
    let mut p = HttpPlugin::start(&[]).await;
    let init = p.mcp.handshake().await;
    assert!(init["capabilities"]["experimental"]
        .get("claude/channel/permission")
        .is_none());
    let r = p
        .authed(Method::POST, "/permission")
        .json(&json!({"request_id": "abcde", "behavior": "allow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("--permission-relay"),
        "{err}"
    );
}

#[tokio::test]
async fn discovery_file_is_private_complete_and_secret_stays_out_of_logs() {
    let mut p = HttpPlugin::start(&[]).await;
    let meta = std::fs::metadata(p.discovery_path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(&p.dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let d = &p.discovery;
    assert_eq!(d["pid"], p.mcp.pid());
    assert_eq!(d["sessionId"], p.session_id);
    assert_eq!(d["version"], env!("CARGO_PKG_VERSION"));
    assert!(d["createdAt"].as_str().unwrap().starts_with("20"));
    assert_eq!(p.secret.len(), 64);
    assert!(p.secret.bytes().all(|b| b.is_ascii_hexdigit()));
    p.mcp.handshake().await;
    p.inject_ok(json!({"content": "x"})).await;
    p.mcp.close_stdin();
    assert!(p.mcp.wait_exit(TIMEOUT).await.success());
    let log = p.mcp.stderr();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains(&p.secret), "secret appears in the log");
}

/// A client may pipeline: write many requests before reading any answer (the
/// bench driver does, 32 deep). Every answer must arrive, in order, and every
/// event become a notification in the same order.
#[tokio::test]
async fn pipelined_injects_all_get_answers_and_notifications_in_order() {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    const N: usize = 200;
    let mut batch = Vec::new();
    for i in 0..N {
        let body = json!({"content": format!("pipelined {i}")}).to_string();
        batch.extend_from_slice(
            format!(
                "POST /inject HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                p.port,
                p.secret,
                body.len()
            )
            .as_bytes(),
        );
    }
    let port = p.port;
    let answers = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(TIMEOUT)).unwrap();
        conn.write_all(&batch).unwrap();
        // Read until N complete responses (each JSON body is `{"id":"K"}`).
        let mut text = String::new();
        let mut buf = [0u8; 16 * 1024];
        while text.matches("HTTP/1.1 202").count() < N || !text.ends_with('}') {
            let n = conn.read(&mut buf).expect("reading pipelined answers");
            assert!(n > 0, "connection closed after {text:?}");
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        text
    })
    .await
    .unwrap();
    let ids: Vec<u64> = answers
        .match_indices("{\"id\":\"")
        .map(|(at, _)| {
            let rest = &answers[at + 7..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        (1..=N as u64).collect::<Vec<_>>(),
        "answers in request order"
    );
    for i in 0..N {
        let n = p
            .mcp
            .expect_notification("notifications/claude/channel")
            .await;
        assert_eq!(n["params"]["content"], format!("pipelined {i}"));
    }
}
