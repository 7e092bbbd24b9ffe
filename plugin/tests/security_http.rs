//! Security of the HTTP bridge, on the real binary over real loopback
//! sockets: who may talk to it (secret, both header forms; Host and Origin
//! against DNS rebinding and web pages), what it reveals (the secret never
//! in logs or `/status`, Claude Code's env never logged), how much it reads
//! (bodies over the cap refused before being read whole), and who may
//! approve a tool use (verdicts only authenticated, only with the relay on).
//!
//! Requests are written by hand on a raw TCP socket so the test controls
//! every header byte (`Host` included).
//!
//! Constant-time comparison: `http/auth.rs` compares with `subtle`'s
//! `ConstantTimeEq` over the bytes presented (the secret's length, 64 hex
//! characters, is public). Timing cannot be asserted reliably on a shared
//! machine, so the tests check the behaviour around it: both header forms
//! accept the secret, and near misses (one character off, a prefix, the
//! secret plus a character, another scheme) are refused.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::http::{wait_for_discovery, HttpPlugin, SseStream, SESSION_ID};
use support::{McpClient, TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

/// The body of every probe whose answer depends only on its headers.
const INJECT: &[u8] = br#"{"content":"probe"}"#;

/// One running plugin's HTTP address and secret, and the hand-written
/// requests these tests send it. Most requests use the right Host and the
/// secret, so a test spells out only the header it is probing.
struct Endpoint {
    port: u16,
    secret: String,
}

impl Endpoint {
    fn of(plugin: &HttpPlugin) -> Self {
        Endpoint {
            port: plugin.port,
            secret: plugin.secret.clone(),
        }
    }

    /// For a plugin started by hand (own env or limits): waits for its
    /// discovery file `<dir>/<SESSION_ID>.json`.
    async fn discovered(dir: &Path, mcp: &McpClient) -> Self {
        let discovery = wait_for_discovery(&dir.join(format!("{SESSION_ID}.json")), mcp).await;
        Endpoint {
            port: discovery["port"].as_u64().unwrap() as u16,
            secret: discovery["secret"].as_str().unwrap().to_string(),
        }
    }

    /// The Host the plugin accepts: `127.0.0.1:<port>`.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The secret as a bearer `Authorization` header.
    fn bearer(&self) -> String {
        format!("Authorization: Bearer {}", self.secret)
    }

    /// One HTTP/1.1 request written verbatim (`Connection: close` added), the
    /// whole response read back.
    async fn send(&self, head: &str, body: &[u8]) -> RawResponse {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut request = head.trim_end_matches("\r\n").to_string();
        request.push_str(&format!(
            "\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut bytes = Vec::new();
        tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut bytes))
            .await
            .expect("response in time")
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        RawResponse {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    }

    /// A JSON POST sent with `Host: host` and exactly the `headers` given
    /// (no secret unless among them).
    async fn post_as(
        &self,
        path: &str,
        host: &str,
        headers: &[String],
        body: &[u8],
    ) -> RawResponse {
        let mut head =
            format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json");
        for h in headers {
            head.push_str("\r\n");
            head.push_str(h);
        }
        self.send(&head, body).await
    }

    /// [`Self::post_as`] with the right Host.
    async fn post_with(&self, path: &str, headers: &[String], body: &[u8]) -> RawResponse {
        self.post_as(path, &self.host(), headers, body).await
    }

    /// A JSON POST as a legitimate client sends it: right Host, bearer secret.
    async fn post_authed(&self, path: &str, body: &[u8]) -> RawResponse {
        self.post_with(path, &[self.bearer()], body).await
    }

    /// `POST /inject` of [`INJECT`] with the right Host and one `header`
    /// (the secret in some form, or not).
    async fn inject_with_header(&self, header: &str) -> RawResponse {
        self.post_with("/inject", &[header.to_string()], INJECT)
            .await
    }

    /// An authenticated `POST /inject` of [`INJECT`] naming `host` as Host
    /// (what a browser sends after DNS rebinding).
    async fn inject_via_host(&self, host: &str) -> RawResponse {
        self.post_as("/inject", host, &[self.bearer()], INJECT)
            .await
    }

    /// An authenticated `POST /inject` of [`INJECT`] with the right Host and
    /// `Origin: origin` (what a web page's fetch sends).
    async fn inject_from_origin(&self, origin: &str) -> RawResponse {
        self.post_with(
            "/inject",
            &[self.bearer(), format!("Origin: {origin}")],
            INJECT,
        )
        .await
    }

    /// An unauthenticated `GET path` with `Host: host`.
    async fn get_as(&self, path: &str, host: &str) -> RawResponse {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: {host}"), b"")
            .await
    }

    /// `GET /status` (open, no secret) with the right Host.
    async fn status(&self) -> RawResponse {
        self.get_as("/status", &self.host()).await
    }

    /// The head of an authenticated POST /inject that announces its own body
    /// `framing` (a length or chunked), for tests that then write the body
    /// byte by byte on the socket themselves.
    fn inject_head_framed(&self, framing: &str) -> String {
        format!(
            "POST /inject HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\n{framing}\r\n\r\n",
            self.host(),
            self.secret
        )
    }
}

/// A plugin started with `extra`, handshake done, an SSE client listening,
/// and then sent Claude Code's permission `request`: the starting point of
/// the verdict tests, with the relay on or off.
async fn plugin_asked_permission(extra: &[&str], request: &Value) -> (HttpPlugin, SseStream) {
    let mut plugin = HttpPlugin::start(extra).await;
    plugin.mcp.handshake().await;
    let sse = plugin.sse(None).await;
    plugin
        .mcp
        .notify(
            "notifications/claude/channel/permission_request",
            request.clone(),
        )
        .await;
    (plugin, sse)
}

#[tokio::test]
async fn both_secret_header_forms_work_and_near_misses_fail() {
    let plugin = HttpPlugin::start(&[]).await;
    let ep = Endpoint::of(&plugin);
    let secret = ep.secret.clone();
    assert_eq!(secret.len(), 64);

    for good in [
        format!("Authorization: Bearer {secret}"),
        format!("authorization: bearer {secret}"),
        format!("X-OPZero-Secret: {secret}"),
        format!("x-opzero-secret:   {secret}  "),
    ] {
        let r = ep.inject_with_header(&good).await;
        assert_eq!(r.status, 202, "{good}: {}", r.body);
    }
    let flipped = {
        let mut s = secret.clone().into_bytes();
        let last = s.len() - 1;
        s[last] = if s[last] == b'0' { b'1' } else { b'0' };
        String::from_utf8(s).unwrap()
    };
    let upper = secret.to_ascii_uppercase();
    let mut bad = vec![
        format!("Authorization: Bearer {flipped}"),
        format!("Authorization: Bearer {}", &secret[..63]),
        format!("Authorization: Bearer {secret}0"),
        format!("Authorization: Basic {secret}"),
        format!("Authorization: {secret}"),
        "Authorization: Bearer ".to_string(),
        format!("X-OPZero-Secret: {flipped}"),
        format!("X-OPZero-Secret: {}", &secret[1..]),
        "X-OPZero-Secret: ".to_string(),
    ];
    if upper != secret {
        bad.push(format!("Authorization: Bearer {upper}"));
    }
    for header in bad {
        let r = ep.inject_with_header(&header).await;
        assert_eq!(r.status, 401, "{header}: {}", r.body);
        assert!(!r.body.contains(&secret));
    }
    // No secret at all: 401 on every authenticated route, /status open.
    for (method, path) in [
        ("POST", "/inject"),
        ("GET", "/sse"),
        ("GET", "/events"),
        ("POST", "/permission"),
    ] {
        let r = ep
            .send(
                &format!("{method} {path} HTTP/1.1\r\nHost: {}", ep.host()),
                b"",
            )
            .await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
    }
    let r = ep.status().await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn host_and_origin_checks_stop_dns_rebinding_and_web_pages() {
    let plugin = HttpPlugin::start(&[]).await;
    let ep = Endpoint::of(&plugin);
    let port = ep.port;

    // DNS rebinding: the browser sends the attacker's name as Host.
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        format!("localhost.:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = ep.inject_via_host(&host).await;
        assert_eq!(r.status, 403, "Host {host} accepted: {}", r.body);
        let r = ep.get_as("/status", &host).await;
        assert_eq!(r.status, 403, "/status readable with Host {host}");
    }
    // HTTP/1.0 without Host.
    let r = ep.send("GET /status HTTP/1.0", b"").await;
    assert_eq!(r.status, 403, "no Host: {}", r.head);

    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
    ] {
        let r = ep.inject_via_host(&host).await;
        assert_eq!(r.status, 202, "Host {host}: {}", r.body);
    }

    // A web page: its Origin is not loopback. Refused even with the secret.
    for origin in [
        "http://evil.example",
        "null",
        "https://127.0.0.1.evil.example",
        "http://localhost.evil:80",
        "file://",
    ] {
        let r = ep.inject_from_origin(origin).await;
        assert_eq!(r.status, 403, "Origin {origin} accepted: {}", r.body);
    }
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:4097",
        "http://[::1]:3000",
    ] {
        let r = ep.inject_from_origin(origin).await;
        assert_eq!(
            r.status, 202,
            "loopback Origin {origin} refused: {}",
            r.body
        );
    }
    // No CORS grant: a loopback page of another app can send, but a browser
    // will not let any page read the answers.
    let r = ep.inject_from_origin("http://localhost:5173").await;
    assert!(
        !r.head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{}",
        r.head
    );
}

/// A body over the 1 MiB cap must be refused without reading it whole: a
/// sender that announces a huge Content-Length and then trickles gets 413 at
/// once instead of holding a connection (and up to 1 MiB of buffer) open.
#[tokio::test]
async fn huge_content_length_with_a_slow_body_is_refused_promptly() {
    let plugin = HttpPlugin::start(&[]).await;
    let ep = Endpoint::of(&plugin);
    let mut stream = TcpStream::connect(("127.0.0.1", ep.port)).await.unwrap();
    let head = format!(
        "{}{{\"content\":\"",
        ep.inject_head_framed("Content-Length: 1073741824")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent_at = Instant::now();
    // Then nothing more: a slowloris. The answer must not wait for the body.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect(
            "no answer within 10 s to a request announcing 1 GiB: the server waits for the body",
        )
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    println!(
        "SECURITY-FIGURE huge-content-length answer_ms={}",
        sent_at.elapsed().as_millis()
    );
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

/// Open `POST /inject` with `Transfer-Encoding: chunked` and keep sending
/// 64 KiB chunks (up to 256 MiB) until the plugin stops taking them (closed,
/// reset, or nothing read for 5 s). Returns the read half and the writer
/// task, which yields the bytes it got into the socket.
async fn chunked_flood(
    ep: &Endpoint,
) -> (
    tokio::net::tcp::OwnedReadHalf,
    tokio::task::JoinHandle<usize>,
) {
    let stream = TcpStream::connect(("127.0.0.1", ep.port)).await.unwrap();
    let (rd, mut wr) = stream.into_split();
    let head = ep.inject_head_framed("Transfer-Encoding: chunked");
    wr.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 * 1024];
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        let mut sent = 0usize;
        while sent < 256 * 1024 * 1024 {
            match tokio::time::timeout(Duration::from_secs(5), wr.write_all(&frame)).await {
                Ok(Ok(())) => sent += chunk.len(),
                _ => break, // closed, or nobody reads any more
            }
        }
        sent
    });
    (rd, writer)
}

/// Chunked (no length announced): the server stops after the cap, answers
/// 413, and the sender cannot push much more than the cap (plus socket
/// buffers) into it.
#[tokio::test]
async fn chunked_body_over_the_cap_is_cut_off_after_the_cap() {
    let plugin = HttpPlugin::start(&[]).await;
    let ep = Endpoint::of(&plugin);
    let (mut rd, writer) = chunked_flood(&ep).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, rd.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let sent = writer.await.unwrap();
    println!("SECURITY-FIGURE chunked-over-cap bytes_pushed_before_cutoff={sent}");
    assert!(
        sent < 64 * 1024 * 1024,
        "{sent} bytes accepted from a body over a 1 MiB cap"
    );
}

#[tokio::test]
async fn body_at_the_cap_is_read_and_one_byte_more_is_413() {
    let mut plugin = HttpPlugin::start(&[]).await;
    plugin.mcp.handshake().await;
    let ep = Endpoint::of(&plugin);
    let frame = br#"{"content":""}"#;
    let fill = 1024 * 1024 - frame.len();
    let body = [&br#"{"content":""#[..], &vec![b'z'; fill], &br#""}"#[..]].concat();
    assert_eq!(body.len(), 1024 * 1024);
    let r = ep.post_authed("/inject", &body).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let mut over = body.clone();
    over.insert(13, b'z');
    let r = ep.post_authed("/inject", &over).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let n = plugin
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["content"].as_str().unwrap().len(), fill);
}

/// The secret and Claude Code's env (some of it secret) never reach the
/// log, even at trace level for every crate, and `/status` shows no secret.
#[tokio::test]
async fn secret_and_claude_env_never_in_logs_or_status() {
    const TOKEN: &str = "secret-xyz";
    const API_KEY: &str = "sk-ant-api03-fake-key-that-must-not-leak";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    let mut mcp = McpClient::spawn_with(
        &[
            "http",
            "--discovery-dir",
            dir.to_str().unwrap(),
            "--permission-relay",
        ],
        &[
            ("RUST_LOG", "trace"),
            ("CLAUDE_CODE_MESSAGING_TOKEN", TOKEN),
            ("ANTHROPIC_API_KEY", API_KEY),
            ("CLAUDE_CODE_SESSION_ID", SESSION_ID),
            ("CLAUDECODE", "1"),
        ],
    )
    .await;
    let ep = Endpoint::discovered(&dir, &mcp).await;
    let secret = ep.secret.clone();
    mcp.handshake().await;
    let host = ep.host();

    // Exercise every path that logs: accepted, refused, wrong secret, SSE,
    // permission relay, reply, bad input.
    ep.post_authed("/inject", br#"{"content":"hi","meta":{"k":"v"}}"#)
        .await;
    ep.post_with(
        "/inject",
        &[format!("X-OPZero-Secret: {secret}")],
        br#"{"content":"hi"}"#,
    )
    .await;
    ep.inject_with_header(&format!("Authorization: Bearer {}x", &secret[..63]))
        .await;
    ep.inject_with_header(&format!("X-OPZero-Secret: {}", &secret[..32]))
        .await;
    ep.post_authed("/inject", b"{not json").await;
    ep.inject_via_host(&format!("evil:{}", ep.port)).await;
    let mut sse = {
        let client = reqwest::Client::new();
        client
            .get(format!("http://{host}/sse"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
    };
    mcp.notify(
        "notifications/claude/channel/permission_request",
        json!({"request_id": "abcde", "tool_name": "Bash", "description": "d", "input_preview": "{}"}),
    )
    .await;
    mcp.send(&support::reply_call(
        5,
        json!({"text": "answer", "chat_id": "c"}),
    ))
    .await;
    mcp.expect_response(5).await;
    let _ = tokio::time::timeout(Duration::from_millis(500), sse.chunk()).await;
    ep.post_authed(
        "/permission",
        br#"{"request_id":"abcde","behavior":"deny"}"#,
    )
    .await;
    let status = ep.status().await;
    assert_eq!(status.status, 200);
    drop(sse);
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());

    let stderr = mcp.stderr();
    assert!(
        stderr.lines().count() > 20,
        "trace logging produced too little to be a real check:\n{stderr}"
    );
    for (what, needle) in [
        ("the secret", secret.as_str()),
        ("half the secret", &secret[..32]),
        ("env token", TOKEN),
        ("API key", API_KEY),
    ] {
        assert!(!stderr.contains(needle), "{what} appears in stderr");
        assert!(!status.body.contains(needle), "{what} appears in /status");
    }
    let status: Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(status["ok"], true);
    println!(
        "SECURITY-FIGURE log-grep stderr_lines={} (RUST_LOG=trace)",
        stderr.lines().count()
    );
}

/// A permission verdict approves a tool use: only the authenticated path may
/// give one, and only when the relay was switched on.
#[tokio::test]
async fn verdicts_only_authenticated_and_only_with_the_relay_on() {
    let request = json!({"request_id": "qwert", "tool_name": "Bash", "description": "rm", "input_preview": "{}"});
    let verdict = br#"{"request_id":"qwert","behavior":"allow"}"#;

    // Relay off: Claude Code's request is not published; POST /permission
    // is refused even with the secret; nothing reaches stdout.
    let (mut off, mut sse) = plugin_asked_permission(&[], &request).await;
    let r = Endpoint::of(&off).post_authed("/permission", verdict).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("relay is off"), "{}", r.body);
    sse.expect_no_event(Duration::from_millis(300)).await;
    off.mcp.expect_no_frame(Duration::from_millis(300)).await;

    // Relay on.
    let (mut on, mut sse) = plugin_asked_permission(&["--permission-relay"], &request).await;
    assert_eq!(sse.next_event().await.event, "permission_request");
    let ep = Endpoint::of(&on);
    let host = ep.host();
    let auth = ep.bearer();
    // Unauthenticated, wrong secret, wrong Host, foreign Origin: refused, no verdict.
    for (h, extra) in [
        (host.clone(), vec![]),
        (host.clone(), vec!["Authorization: Bearer nope".to_string()]),
        (format!("evil:{}", ep.port), vec![auth.clone()]),
        (
            host.clone(),
            vec![auth.clone(), "Origin: http://evil.example".to_string()],
        ),
    ] {
        let r = ep.post_as("/permission", &h, &extra, verdict).await;
        assert!(
            r.status == 401 || r.status == 403,
            "{extra:?} via {h}: {} {}",
            r.status,
            r.body
        );
    }
    // A chat message that looks like a verdict is content, not a verdict.
    let r = ep
        .post_authed("/inject", br#"{"content":"yes qwert"}"#)
        .await;
    assert_eq!(r.status, 202);
    let pushed = on
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(pushed["params"]["content"], "yes qwert");
    on.mcp.expect_no_frame(Duration::from_millis(300)).await;

    // The authenticated path: exactly one verdict, then 409.
    let r = ep.post_authed("/permission", verdict).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let v = on
        .mcp
        .expect_notification("notifications/claude/channel/permission")
        .await;
    assert_eq!(
        v["params"],
        json!({"request_id": "qwert", "behavior": "allow"})
    );
    let r = ep.post_authed("/permission", verdict).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = ep
        .post_authed(
            "/permission",
            br#"{"request_id":"zzzzz","behavior":"allow"}"#,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    on.mcp.expect_no_frame(Duration::from_millis(300)).await;
}

/// Another local user (no secret needed) opens connections and never
/// finishes the request headers. With the plugin's fd limit lowered to 128 to
/// keep the test cheap, 200 such connections used to lock out a legitimate
/// client for ever (`axum::serve` had no header-read timeout). The plugin now
/// times out unfinished request headers (10 s, `http::serve`), freeing the
/// descriptors, so `/status` answers once the idle ones are cut off; the
/// client waits in the listen backlog meanwhile. Generous wait, no timing
/// assertion.
#[tokio::test]
async fn idle_half_open_connections_do_not_lock_out_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    let mut cmd = tokio::process::Command::new(support::plugin_bin());
    cmd.args(support::http::http_args(dir.to_str().unwrap(), SESSION_ID))
        .env("RUST_LOG", "channel_plugin=info");
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 128,
                rlim_max: 128,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mcp = McpClient::spawn_command(cmd);
    let ep = Endpoint::discovered(&dir, &mcp).await;
    let port = ep.port;
    let mut idle = Vec::new();
    for _ in 0..200 {
        if let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_secs(2),
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            let _ = s
                .write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await;
            idle.push(s);
        }
    }
    let answer = tokio::time::timeout(Duration::from_secs(60), ep.status()).await;
    println!(
        "SECURITY-FIGURE idle-connections opened={} status_answered={}",
        idle.len(),
        answer.is_ok()
    );
    assert!(
        answer.is_ok_and(|r| r.status == 200),
        "a legitimate client was locked out by idle connections"
    );
}

/// A client that is still sending when the plugin gives up on its body (past
/// the 8 MiB it drains) must still be able to read the 413, even when it
/// reads only after a pause. The plugin closes such a connection with a
/// linger (FIN after the response, then reads and discards for a while)
/// rather than a bare close with unread input, which makes the kernel send a
/// reset. Linux keeps data already received readable after a reset, so on
/// Linux this passes without the linger too; BSD-derived stacks (macOS)
/// discard it, which is what the linger is for. Here it guards the answer
/// itself: an earlier build (hyper's `pipeline_flush`) lost it outright.
#[tokio::test]
async fn a_413_survives_a_client_that_reads_late() {
    let plugin = HttpPlugin::start(&[]).await;
    let ep = Endpoint::of(&plugin);
    let (mut rd, writer) = chunked_flood(&ep).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, rd.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "read: {read:?}, got {text:?}"
    );
    assert!(text.contains("1048576 byte limit"), "{text}");
    writer.await.unwrap();
}
