//! End to end against our own plugin, `channel-plugin http`, as a black box (no dependency on the
//! plugin crate: we run its binary). inject over HTTP → rendered turn → scripted reply → SSE
//! `reply` event; permission request → SSE `permission_request` → POST /permission → verdict.
//!
//! The binary is `$CHANNEL_PLUGIN_BIN`, else `<target dir>/debug/channel-plugin`; build it first
//! (`cargo build --workspace --bins`, as CI does). A missing binary fails the test loudly.

use std::path::PathBuf;
use std::time::Duration;

use mock_claude::{fixtures_dir, LaunchOptions, MockClaude, Profile, Script, Verdict};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);

fn plugin_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CHANNEL_PLUGIN_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/channel-plugin");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p channel-plugin` (or set CHANNEL_PLUGIN_BIN)",
        bin.display()
    );
    bin
}

async fn discovery(dir: &std::path::Path, session: &uuid::Uuid) -> Value {
    let path = dir.join(format!("{session}.json"));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                return v;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no discovery file {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Read `GET /sse` and forward `(event, data)` pairs.
fn sse(url: String, secret: String) -> mpsc::UnboundedReceiver<(String, Value)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut resp = client
            .get(url)
            .bearer_auth(secret)
            .send()
            .await
            .expect("GET /sse");
        assert!(resp.status().is_success(), "GET /sse: {}", resp.status());
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block = buf[..end].to_string();
                buf.drain(..end + 2);
                let mut event = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if let Ok(v) = serde_json::from_str(&data) {
                    let _ = tx.send((event, v));
                }
            }
        }
    });
    rx
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<(String, Value)>, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((e, v))) if e == kind => return v,
            Ok(Some(_)) => continue,
            other => panic!("no SSE {kind} event: {other:?}"),
        }
    }
}

#[tokio::test]
async fn channel_plugin_http_round_trip_under_every_profile() {
    let bin = plugin_bin();
    for profile in Profile::all(fixtures_dir()).unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let session_id = uuid::Uuid::new_v4();
        let argv = vec![
            bin.display().to_string(),
            "http".into(),
            "--discovery-dir".into(),
            dir.path().display().to_string(),
            "--session-id".into(),
            session_id.to_string(),
            "--name".into(),
            "bridge".into(),
            "--permission-relay".into(),
        ];
        let mut opts = LaunchOptions::dev("bridge", argv);
        opts.session_id = Some(session_id);
        let v = profile.version.clone();
        let mut s = MockClaude::spawn(&profile, opts).await.unwrap();
        let hs = s.handshake().await.unwrap();
        assert!(hs.gate.registered, "{v}: {:?}", hs.gate);
        assert!(hs.tool("reply").is_some(), "{v}: no reply tool");

        let disc = discovery(dir.path(), &session_id).await;
        let port = disc["port"].as_u64().unwrap();
        let secret = disc["secret"].as_str().unwrap().to_string();
        let base = format!("http://127.0.0.1:{port}");
        let mut events = sse(format!("{base}/sse"), secret.clone());
        tokio::time::sleep(Duration::from_millis(200)).await; // let the SSE subscription start

        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/inject"))
            .bearer_auth(&secret)
            .json(&json!({ "content": "ping </channel> & more", "chat_id": "c1" }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{v}: inject {}", r.status());

        let turn = s.next_turn(WAIT).await.unwrap();
        let event = &turn.events[0];
        assert_eq!(event.source, "bridge");
        assert_eq!(event.meta("chat_id"), Some("c1"), "{v}: {}", turn.text);
        assert_eq!(event.content, "ping </channel> & more");
        assert_eq!(turn.text, event.rendered);
        assert!(
            turn.text.starts_with("<channel source=\"bridge\""),
            "{v}: {}",
            turn.text
        );
        let calls = s
            .run_script_turn(&Script::echo_reply(), &turn)
            .await
            .unwrap();
        let result = calls[0]
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{v}: reply failed: {e}"));
        assert!(!result.is_error, "{v}: {:?}", result.raw);
        assert!(result.problems.is_empty(), "{v}: {:?}", result.problems);
        let reply = next_event(&mut events, "reply").await;
        assert_eq!(reply["chat_id"], "c1");
        assert_eq!(reply["text"], "echo: ping </channel> & more");

        if profile.permission.is_some() {
            let id = s
                .send_permission_request("Bash", "list files", "{\"command\":\"ls\"}")
                .await
                .unwrap();
            let req = next_event(&mut events, "permission_request").await;
            assert_eq!(req["request_id"], id.as_str());
            let r = http
                .post(format!("{base}/permission"))
                .bearer_auth(&secret)
                .json(&json!({ "request_id": id, "behavior": "deny" }))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{v}: /permission {}", r.status());
            assert_eq!(s.wait_verdict(&id, WAIT).await.unwrap(), Verdict::Denied);
        }

        let report = s.shutdown().await.unwrap();
        assert!(report.exited, "{v}: {report:?}");
        assert_eq!(report.via, Some(mock_claude::ExitVia::Sigint), "{v}");
        assert!(s.orphans().is_empty(), "{v}: {:?}", s.orphans());
        let t = s.transcript();
        assert_eq!(t.stray_stdout_bytes(), 0, "{v}: junk {:?}", t.junk_lines());
        assert_eq!(t.violations(), vec![], "{v}");
        assert!(
            !t.to_ndjson(true).contains(&secret),
            "{v}: secret leaked into the transcript"
        );
    }
}
