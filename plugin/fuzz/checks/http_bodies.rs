//! `/inject` and `/permission` body handling through the real HTTP API of
//! the bridge, in process (no socket): the same `routes::Api` the binary
//! serves, with a real core behind it.
//!
//! Input: up to 8 requests separated by 0xFF; the first byte of each picks
//! the route, the auth form and the Origin; the rest is the body.
//!
//! Properties: no panic; every answer is a status the API documents, with a
//! JSON body; 202 only with the right secret; `/permission` answers 202 only
//! for a pending id, once; the secret never appears in any response.
//!
//! Shared by the fuzz target `fuzz_targets/http_bodies.rs` and the stable replay test
//! `plugin/tests/regressions_fuzz.rs` (seeds and every crash input, on every CI run).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channel_plugin::http::auth::Secret;
use channel_plugin::http::bridge::HttpBridge;
use channel_plugin::http::routes::{Api, AppState};
use channel_plugin::http::sse::Hub;
use channel_plugin::mcp::{Core, CoreConfig, PERMISSION_REQUEST_METHOD};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 40999;

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = CoreConfig::new("fuzz");
        config.permission_relay = true;
        config.max_held = 3; // so some injects meet 503 + Retry-After
        let (core, handle) = Core::new(config);
        let hub = Arc::new(Hub::new(16));
        let secret = Secret::generate().unwrap();
        let secret_text = secret.expose().to_string();

        // The core runs on an in-memory stdio; Claude Code asks for one permission.
        let (server, client) = tokio::io::duplex(1 << 20);
        let (server_in, server_out) = tokio::io::split(server);
        let (mut client_in, mut client_out) = tokio::io::split(client);
        let serve = tokio::spawn(core.serve(
            server_in,
            server_out,
            Arc::new(HttpBridge::new(hub.clone())),
            std::future::pending(),
        ));
        let request = json!({"jsonrpc": "2.0", "method": PERMISSION_REQUEST_METHOD, "params": {
            "request_id": "abcde", "tool_name": "Bash", "description": "d", "input_preview": "{}"}});
        client_out.write_all(format!("{request}\n").as_bytes()).await.unwrap();
        while handle.status().pending_permissions == 0 {
            tokio::task::yield_now().await;
        }
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = client_in.read_to_end(&mut sink).await;
        });

        let api = Api::new(Arc::new(AppState {
            core: handle.clone(),
            hub,
            secret,
            port: PORT,
            session_id: "8c0c3a5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f".into(),
            keepalive: Duration::from_secs(60),
        }));

        let mut verdicts_accepted = 0;
        for chunk in data.split(|&b| b == 0xff).take(8) {
            let Some((&flags, body)) = chunk.split_first() else { continue };
            let route = match flags & 3 {
                0 | 1 => "/inject",
                2 => "/permission",
                _ => "/status",
            };
            let mut builder = Request::builder()
                .method(if route == "/status" { "GET" } else { "POST" })
                .uri(route)
                .header("host", format!("127.0.0.1:{PORT}"))
                .header("content-type", "application/json");
            let good_secret = match (flags >> 2) & 3 {
                0 => {
                    builder = builder.header("authorization", format!("Bearer {secret_text}"));
                    true
                }
                1 => {
                    builder = builder.header("x-opzero-secret", &secret_text);
                    true
                }
                2 => {
                    builder = builder.header("authorization", "Bearer 0000");
                    false
                }
                _ => false,
            };
            let foreign_origin = flags & 0x10 != 0;
            if foreign_origin {
                builder = builder.header("origin", "http://evil.example");
            }
            let request = builder.body(Full::new(Bytes::from(body.to_vec()))).unwrap();
            let response = api.handle(request).await;
            let status = response.status();
            let retry_after = response.headers().contains_key("retry-after");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8(bytes.to_vec()).expect("response body is UTF-8");
            assert!(!text.contains(&secret_text), "the secret leaked in a response: {text}");
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{route} answered non-JSON {text:?}: {e}"));

            if foreign_origin {
                assert_eq!(status, StatusCode::FORBIDDEN, "{route} {text}");
                continue;
            }
            if route == "/status" {
                assert_eq!(status, StatusCode::OK);
                continue;
            }
            if !good_secret {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{route} {text}");
                continue;
            }
            let allowed: &[u16] = match route {
                "/inject" => &[202, 400, 413, 503],
                _ => &[202, 400, 404, 409, 413],
            };
            assert!(allowed.contains(&status.as_u16()), "{route} answered {status}: {text}");
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert!(retry_after, "503 without Retry-After");
            }
            if status == StatusCode::ACCEPTED && route == "/inject" {
                assert!(value["id"].as_str().is_some_and(|id| id.parse::<u64>().is_ok()), "{text}");
            } else if status == StatusCode::ACCEPTED {
                verdicts_accepted += 1;
            } else {
                assert!(value["error"].is_string(), "refusal without an error message: {text}");
            }
        }
        assert!(verdicts_accepted <= 1, "one pending permission answered {verdicts_accepted} times");
        serve.abort();
        drain.abort();
    });
}
