//! `http-discovery:<dir>`: the plugin writes `<dir>/<session>.json` =
//! `{port, secret, pid, sessionId, version, createdAt}`; the outside POSTs
//! `/inject`, reads `GET /sse` and answers `POST /permission`.
//!
//! Each session gets its own sub-directory (`<dir>/<label>`), handed to the
//! plugin as `{dir}` in the plugin command and as `OPZERO_CHANNEL_DIR`, so
//! sessions running in parallel never read each other's discovery files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Kind, Outside, OutsideEvent, OutsidePermission, OutsideReply, Prepared};

pub(crate) struct HttpOutside {
    dir: PathBuf,
    endpoint: Option<Endpoint>,
    client: reqwest::Client,
}

struct Endpoint {
    base: String,
    secret: String,
}

pub(super) async fn prepare(base: &Path, label: &str) -> anyhow::Result<Prepared> {
    let dir = base.join(label);
    if dir.exists() {
        // Stale discovery files from an earlier run would point at dead ports.
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let shown = dir.display().to_string();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    Ok(Prepared {
        env: vec![("OPZERO_CHANNEL_DIR".into(), shown.clone())],
        placeholders: vec![("dir", shown)],
        outside: Outside::new(Kind::Http(HttpOutside {
            dir,
            endpoint: None,
            client,
        })),
    })
}

impl HttpOutside {
    pub(super) fn secret(&self) -> Option<String> {
        self.endpoint.as_ref().map(|e| e.secret.clone())
    }

    /// Waits for the discovery file, then subscribes to `/sse`.
    pub(super) async fn connect(
        &mut self,
        pid: Option<u32>,
        timeout: Duration,
    ) -> anyhow::Result<(
        mpsc::UnboundedReceiver<OutsideReply>,
        mpsc::UnboundedReceiver<OutsidePermission>,
    )> {
        let started = Instant::now();
        let doc = loop {
            if let Some(doc) = find_discovery(&self.dir, pid)? {
                break doc;
            }
            if started.elapsed() > timeout {
                bail!(
                    "no discovery file appeared in {} within {:?} (does the plugin command use {{dir}} or honour OPZERO_CHANNEL_DIR?)",
                    self.dir.display(),
                    timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let port = doc["port"]
            .as_u64()
            .context("discovery file has no numeric port")?;
        let secret = doc["secret"]
            .as_str()
            .context("discovery file has no secret")?
            .to_string();
        let base = format!("http://127.0.0.1:{port}");
        let response = self
            .client
            .get(format!("{base}/sse"))
            .bearer_auth(&secret)
            .header("accept", "text/event-stream")
            .send()
            .await
            .with_context(|| format!("GET {base}/sse"))?;
        if !response.status().is_success() {
            bail!("GET {base}/sse answered {}", response.status());
        }
        let (reply_tx, reply_rx) = mpsc::unbounded_channel();
        let (perm_tx, perm_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                // Normalise CRLF so the frame splitter only looks for "\n\n".
                if buffer.contains('\r') {
                    buffer = buffer.replace("\r\n", "\n");
                }
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let (event, data) = parse_sse(&frame);
                    let Ok(value) = serde_json::from_str::<Value>(&data) else {
                        continue;
                    };
                    match event.as_str() {
                        "reply" => {
                            let _ = reply_tx.send(OutsideReply {
                                text: value["text"].as_str().unwrap_or_default().to_string(),
                                chat_id: value["chat_id"].as_str().map(str::to_string),
                                is_final: value["final"].as_bool().unwrap_or(true),
                            });
                        }
                        "permission_request" => {
                            let _ = perm_tx.send(OutsidePermission {
                                request_id: value["request_id"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                                raw: value,
                            });
                        }
                        other => tracing::debug!(event = other, "ignoring SSE event"),
                    }
                }
            }
        });
        self.endpoint = Some(Endpoint { base, secret });
        Ok((reply_rx, perm_rx))
    }

    fn endpoint(&self) -> anyhow::Result<&Endpoint> {
        self.endpoint
            .as_ref()
            .context("the HTTP outside is not connected yet")
    }

    pub(super) async fn inject(&self, event: &OutsideEvent) -> anyhow::Result<()> {
        let ep = self.endpoint()?;
        let meta: serde_json::Map<String, Value> = event
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut body = json!({ "content": event.content });
        if !meta.is_empty() {
            body["meta"] = Value::Object(meta);
        }
        if let Some(chat) = &event.chat_id {
            body["chat_id"] = json!(chat);
        }
        let response = self
            .client
            .post(format!("{}/inject", ep.base))
            .bearer_auth(&ep.secret)
            .json(&body)
            .send()
            .await
            .context("POST /inject")?;
        let status = response.status();
        if status.as_u16() != 202 && !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST /inject answered {status}: {text}");
        }
        Ok(())
    }

    pub(super) async fn verdict(&self, request_id: &str, behavior: &str) -> anyhow::Result<()> {
        let ep = self.endpoint()?;
        let response = self
            .client
            .post(format!("{}/permission", ep.base))
            .bearer_auth(&ep.secret)
            .json(&json!({ "request_id": request_id, "behavior": behavior }))
            .send()
            .await
            .context("POST /permission")?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            bail!("POST /permission answered {status}: {text}");
        }
        Ok(())
    }
}

/// The discovery document of this session's plugin: the one whose `pid`
/// matches, else the newest complete one.
fn find_discovery(dir: &Path, pid: Option<u32>) -> anyhow::Result<Option<Value>> {
    let mut candidates = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return Ok(None),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        // A half-written file does not parse yet; the next poll sees it whole.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if doc["port"].is_u64() && doc["secret"].is_string() {
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            candidates.push((modified, doc));
        }
    }
    if let Some(pid) = pid {
        if let Some((_, doc)) = candidates
            .iter()
            .find(|(_, d)| d["pid"].as_u64() == Some(pid as u64))
        {
            return Ok(Some(doc.clone()));
        }
    }
    candidates.sort_by_key(|(m, _)| *m);
    Ok(candidates.pop().map(|(_, d)| d))
}

fn parse_sse(frame: &str) -> (String, String) {
    let mut event = String::from("message");
    let mut data = Vec::new();
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
        }
    }
    (event, data.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_parse() {
        let (e, d) = parse_sse("event: reply\ndata: {\"text\":\"hi\"}\n\n");
        assert_eq!(e, "reply");
        assert_eq!(d, "{\"text\":\"hi\"}");
        let (e, _) = parse_sse(": keepalive\n\n");
        assert_eq!(e, "message");
    }

    #[test]
    fn discovery_prefers_the_matching_pid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"port":1,"secret":"s","pid":10}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"port":2,"secret":"s","pid":20}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("c.json"), r#"{"port":3,"sec"#).unwrap();
        let doc = find_discovery(dir.path(), Some(10)).unwrap().unwrap();
        assert_eq!(doc["port"], 1);
        assert!(find_discovery(dir.path(), None).unwrap().is_some());
    }
}
