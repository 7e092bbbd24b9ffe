//! Helpers for the `http` bridge: start the plugin with a private discovery
//! directory, read its discovery file, make authenticated requests, and read
//! SSE with a plain streaming GET.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use super::{McpClient, TIMEOUT};

/// A fixed, valid session id for tests that do not care.
pub const SESSION_ID: &str = "8c0c3a5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f";

/// `channel-plugin http --discovery-dir DIR --session-id SESSION`, the
/// arguments every test that starts the http bridge by hand begins with.
pub fn http_args<'a>(dir: &'a str, session: &'a str) -> [&'a str; 5] {
    ["http", "--discovery-dir", dir, "--session-id", session]
}

/// `channel-plugin http` running with its own temp discovery dir.
pub struct HttpPlugin {
    pub mcp: McpClient,
    /// Keeps the discovery directory alive for the test.
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub session_id: String,
    pub port: u16,
    pub secret: String,
    pub discovery: Value,
    pub client: reqwest::Client,
}

/// Poll until `path` holds a discovery record (written atomically, so a
/// present file is complete); the failure message includes `mcp`'s stderr.
pub async fn wait_for_discovery(path: &Path, mcp: &McpClient) -> Value {
    wait_for_discovery_with(path, || format!("stderr:\n{}", mcp.stderr())).await
}

/// [`wait_for_discovery`] for a plugin not spawned by [`McpClient`];
/// `context` supplies text for the failure message.
pub async fn wait_for_discovery_with(path: &Path, context: impl Fn() -> String) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            return serde_json::from_slice(&bytes).expect("discovery file is JSON");
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "no discovery file at {} within {TIMEOUT:?}\n{}",
                path.display(),
                context()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl HttpPlugin {
    /// Start `channel-plugin http --discovery-dir <tmp>/channels --session-id
    /// SESSION_ID EXTRA...` and wait for its discovery file.
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[]).await
    }

    /// [`HttpPlugin::start`] with extra environment variables.
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("channels");
        let mut args = http_args(dir.to_str().unwrap(), SESSION_ID).to_vec();
        args.extend_from_slice(extra);
        let mcp = McpClient::spawn_with(&args, env).await;
        let discovery = wait_for_discovery(&dir.join(format!("{SESSION_ID}.json")), &mcp).await;
        let port = discovery["port"].as_u64().unwrap() as u16;
        let secret = discovery["secret"].as_str().unwrap().to_string();
        HttpPlugin {
            mcp,
            tmp,
            dir,
            session_id: SESSION_ID.to_string(),
            port,
            secret,
            discovery,
            client: reqwest::Client::builder().timeout(TIMEOUT).build().unwrap(),
        }
    }

    pub fn discovery_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.session_id))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A request with the bearer secret.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.secret)
    }

    /// `GET /status` (no secret), parsed.
    pub async fn status(&self) -> Value {
        let response = self.client.get(self.url("/status")).send().await;
        response
            .expect("GET /status")
            .json()
            .await
            .expect("/status is JSON")
    }

    /// POST /inject with a JSON body, authenticated.
    pub async fn inject(&self, body: Value) -> reqwest::Response {
        self.authed(reqwest::Method::POST, "/inject")
            .json(&body)
            .send()
            .await
            .expect("POST /inject")
    }

    /// POST /inject and assert 202; returns the event id.
    pub async fn inject_ok(&self, body: Value) -> String {
        let response = self.inject(body).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 202, "inject refused: {body}");
        body["id"].as_str().expect("id is a string").to_string()
    }

    /// Open GET /sse (optionally resuming after `last_event_id`).
    pub async fn sse(&self, last_event_id: Option<u64>) -> SseStream {
        SseStream::connect(&self.url("/sse"), &self.secret, last_event_id).await
    }
}

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

/// A minimal `text/event-stream` reader over a streaming GET.
pub struct SseStream {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

/// One raw block: either comment lines or an event.
#[derive(Debug, Clone, PartialEq)]
pub enum SseBlock {
    Comment(String),
    Event(SseEvent),
}

impl SseStream {
    /// A plain streaming GET of `url` with the bearer `secret`; asserts 200
    /// and `text/event-stream`.
    pub async fn connect(url: &str, secret: &str, last_event_id: Option<u64>) -> SseStream {
        // No overall timeout on a stream that lives for the whole test.
        let mut request = reqwest::Client::new().get(url).bearer_auth(secret);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("GET /sse");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseStream {
            body: Box::pin(response.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next block (events and comments), waiting up to `timeout`.
    pub async fn next_block(&mut self, timeout: Duration) -> SseBlock {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                return parse_block(block.trim_end_matches('\n'));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.body.next()).await {
                Err(_) => panic!("no SSE block within {timeout:?} (buffer {:?})", self.buf),
                Ok(None) => panic!("SSE stream ended (buffer {:?})", self.buf),
                Ok(Some(Err(e))) => panic!("SSE stream error: {e}"),
                Ok(Some(Ok(chunk))) => self
                    .buf
                    .push_str(std::str::from_utf8(&chunk).expect("UTF-8 SSE")),
            }
        }
    }

    /// The next event, skipping comments.
    pub async fn next_event(&mut self) -> SseEvent {
        loop {
            if let SseBlock::Event(event) = self.next_block(TIMEOUT).await {
                return event;
            }
        }
    }

    /// Assert no *event* arrives within `window` (comments are fine).
    pub async fn expect_no_event(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let SseBlock::Event(e) = parse_block(block.trim_end_matches('\n')) {
                    panic!("unexpected SSE event {e:?}");
                }
                continue;
            }
            match tokio::time::timeout(left, self.body.next()).await {
                Err(_) => return,
                Ok(Some(Ok(chunk))) => self.buf.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(other) => panic!("SSE stream ended: {other:?}"),
            }
        }
    }
}

fn parse_block(block: &str) -> SseBlock {
    let mut id = None;
    let mut event = String::from("message");
    let mut data = Vec::new();
    let mut comments = Vec::new();
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            comments.push(c.trim().to_string());
        } else if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.parse().expect("numeric SSE id")),
                "event" => event = value.to_string(),
                "data" => data.push(value.to_string()),
                _ => {}
            }
        }
    }
    if data.is_empty() && id.is_none() {
        return SseBlock::Comment(comments.join("\n"));
    }
    let data = serde_json::from_str(&data.join("\n")).expect("SSE data is JSON");
    SseBlock::Event(SseEvent { id, event, data })
}
