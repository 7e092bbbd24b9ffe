//! The one place that talks to `mock_claude`: a thin adapter giving the
//! scenarios exactly the views they need. When mock-claude's API moves, only
//! this file changes.

use std::time::Duration;

use serde_json::Value;

/// How to start the plugin for one session.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Shell command line, placeholders already filled.
    pub command: String,
    pub env: Vec<(String, String)>,
    pub server_name: String,
}

/// What the `server/discover` probe got.
#[derive(Debug, Clone, PartialEq)]
pub enum Discover {
    /// The profile does not probe.
    NotSent,
    Error {
        code: i64,
        message: String,
    },
    Result(Value),
    Unanswered {
        waited: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct Gate {
    pub registered: bool,
    pub reason: Option<String>,
    pub log_line: String,
}

/// The handshake as the client saw it.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub discover: Discover,
    /// `protocolVersion` the server answered (initialize, or discover in the modern era).
    pub negotiated: Option<String>,
    pub modern: bool,
    /// Why the connection failed (the client's text), if it did.
    pub failure: Option<String>,
    pub capabilities: Value,
    pub instructions: Option<String>,
    pub tools: Vec<Value>,
    pub gate: Gate,
    /// The plugin never wrote a byte to stdout.
    pub nothing_received: bool,
}

impl Handshake {
    pub fn completed(&self) -> bool {
        self.failure.is_none()
    }
    pub fn failure_text(&self) -> String {
        self.failure.clone().unwrap_or_else(|| "completed".into())
    }
    pub fn tool(&self, name: &str) -> Option<&Value> {
        self.tools.iter().find(|t| t["name"] == name)
    }
}

#[derive(Debug, Clone)]
pub struct Turn {
    pub text: String,
    pub batched: bool,
}

#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub is_error: bool,
    pub text: String,
}

/// How a plugin process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub exited: bool,
    /// The step that ended it: `SIGINT`, `SIGTERM`, `SIGKILL`, `stdin EOF`, ...
    pub via: Option<String>,
    pub elapsed: Duration,
    pub status: Option<String>,
}

/// Transcript facts the session checks aggregate.
#[derive(Debug, Clone, Default)]
pub struct TranscriptSummary {
    /// Non-protocol stdout lines (first bytes of each).
    pub stray_stdout: Vec<String>,
    /// Schema violations, each with its frame index.
    pub violations: Vec<String>,
}

/// A `notifications/claude/channel` the plugin sent.
#[derive(Debug, Clone)]
pub struct Push {
    pub params: Value,
    /// Sent before the plugin's answer to `tools/list` was read.
    pub before_lists: bool,
    pub frame_index: usize,
}

/// One plugin under the mock client.
pub struct Plugin {
    session: mock_claude::Session,
    profile: mock_claude::Profile,
    pings: u32,
}

impl Plugin {
    /// Spawns `launch.command` through the shell the way a user's MCP config
    /// would, loaded as a development channel named `launch.server_name`.
    pub async fn spawn(profile: &mock_claude::Profile, launch: Launch) -> anyhow::Result<Plugin> {
        let mut options = mock_claude::LaunchOptions::from_shell(&launch.command);
        options.server_name = launch.server_name.clone();
        options.channels = vec![mock_claude::ChannelSpec::server(&launch.server_name)];
        options.dev_channels = vec![mock_claude::ChannelSpec::server(&launch.server_name)];
        options.extra_env = launch.env;
        let session = mock_claude::MockClaude::spawn(profile, options).await?;
        Ok(Plugin {
            session,
            profile: profile.clone(),
            pings: 0,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.session.pid().and_then(|p| u32::try_from(p).ok())
    }

    pub async fn handshake(&mut self) -> Handshake {
        match self.session.handshake().await {
            Ok(hs) => Handshake {
                discover: discover_view(&hs.discover),
                negotiated: Some(hs.protocol_version.clone()),
                modern: hs.era == mock_claude::Era::Modern,
                failure: None,
                capabilities: hs.server_capabilities.clone(),
                instructions: hs.instructions.clone(),
                tools: hs.tools.clone(),
                gate: Gate {
                    registered: hs.gate.registered,
                    reason: hs.gate.reason.clone(),
                    log_line: hs.gate.log_line.clone(),
                },
                nothing_received: false,
            },
            Err(e) => self.failed_handshake(e.to_string()),
        }
    }

    /// Rebuilds what the client learnt before the handshake failed, from
    /// the transcript.
    fn failed_handshake(&self, failure: String) -> Handshake {
        let t = self.session.transcript();
        let from_server: Vec<&Value> = t.frames_from(mock_claude::Direction::ServerToClient);
        let to_server: Vec<&Value> = t.frames_from(mock_claude::Direction::ClientToServer);
        let nothing_received = from_server.is_empty() && t.junk_lines().is_empty();
        let probe_id = to_server
            .iter()
            .find(|f| f["method"] == "server/discover")
            .map(|f| f["id"].clone());
        let discover = match probe_id {
            None => Discover::NotSent,
            Some(id) => match from_server.iter().find(|f| f["id"] == id) {
                Some(f) if f.get("error").is_some() => Discover::Error {
                    code: f["error"]["code"].as_i64().unwrap_or(0),
                    message: f["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                },
                Some(f) => Discover::Result(f["result"].clone()),
                None => Discover::Unanswered {
                    waited: Duration::from_millis(self.profile.discover.timeout_ms.unwrap_or(3000)),
                },
            },
        };
        let init_id = to_server
            .iter()
            .find(|f| f["method"] == "initialize")
            .map(|f| f["id"].clone());
        let init = init_id.and_then(|id| {
            from_server
                .iter()
                .find(|f| f["id"] == id && f.get("result").is_some())
                .copied()
        });
        let negotiated = init
            .and_then(|f| f["result"]["protocolVersion"].as_str().map(str::to_string))
            .or_else(|| match &discover {
                Discover::Result(r) => r["protocolVersion"].as_str().map(str::to_string),
                _ => None,
            });
        let result = init.map(|f| f["result"].clone()).unwrap_or(Value::Null);
        let gate = self.session.gate();
        Handshake {
            modern: negotiated
                .as_deref()
                .is_some_and(|v| self.profile.era_of(v) == mock_claude::Era::Modern),
            discover,
            negotiated,
            failure: Some(failure),
            capabilities: result.get("capabilities").cloned().unwrap_or(Value::Null),
            instructions: result["instructions"].as_str().map(str::to_string),
            tools: vec![],
            gate: Gate {
                registered: false,
                reason: gate.reason,
                log_line: gate.log_line,
            },
            nothing_received,
        }
    }

    pub async fn next_turn(&mut self, timeout: Duration) -> Option<Turn> {
        match self.session.next_turn(timeout).await {
            Ok(t) => Some(Turn {
                text: t.text,
                batched: t.batched,
            }),
            Err(e) => {
                tracing::debug!("no turn: {e}");
                None
            }
        }
    }

    pub async fn call_tool(&mut self, name: &str, args: Value) -> Result<ToolOutcome, String> {
        match self.session.call_tool(name, args).await {
            Ok(r) => Ok(ToolOutcome {
                is_error: r.is_error,
                text: r.text(),
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    pub async fn send_permission_request(
        &mut self,
        tool: &str,
        description: &str,
        preview: &str,
    ) -> Result<String, String> {
        self.session
            .send_permission_request(tool, description, preview)
            .await
            .map_err(|e| e.to_string())
    }

    /// `allow` / `deny`, or `None` when the request was answered locally.
    pub async fn wait_verdict(&mut self, id: &str, timeout: Duration) -> Option<String> {
        match self.session.wait_verdict(id, timeout).await {
            Ok(mock_claude::Verdict::Allowed) => Some("allow".into()),
            Ok(mock_claude::Verdict::Denied) => Some("deny".into()),
            Ok(mock_claude::Verdict::AnsweredLocally) => None,
            Err(e) => {
                tracing::debug!("no verdict: {e}");
                None
            }
        }
    }

    pub async fn send_raw_line(&mut self, line: &[u8]) -> Result<(), String> {
        self.session
            .send_raw_line(line)
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends a raw `ping` request and waits for any answer with its id.
    pub async fn ping(&mut self, timeout: Duration) -> Result<(), String> {
        self.pings += 1;
        let id = format!("conformance-ping-{}", self.pings);
        let frame = serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": "ping" });
        self.session
            .send_frame(frame)
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let answered = self
                .session
                .transcript()
                .frames_from(mock_claude::Direction::ServerToClient)
                .iter()
                .any(|f| f["id"] == id.as_str());
            if answered {
                return Ok(());
            }
            if !self.session.is_alive() {
                return Err(format!(
                    "the plugin exited ({})",
                    self.session
                        .closed_reason_text()
                        .unwrap_or_else(|| "no reason".into())
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no answer to ping {id} within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn is_alive(&mut self) -> bool {
        self.session.is_alive()
    }

    pub async fn shutdown(&mut self) -> Exit {
        exit_view(self.session.shutdown().await)
    }

    pub async fn close_stdin_and_wait(&mut self, grace: Duration) -> Exit {
        exit_view(self.session.close_stdin_and_wait(grace).await)
    }

    /// Processes left in the plugin's process group; they are killed after
    /// being reported so the suite itself leaves nothing behind.
    pub fn orphans(&self) -> Vec<String> {
        let found: Vec<String> = self
            .session
            .orphans()
            .into_iter()
            .map(|o| format!("pid {} ({})", o.pid, o.cmdline))
            .collect();
        if !found.is_empty() {
            self.session.kill_orphans();
        }
        found
    }

    pub fn pushes(&self) -> Vec<Push> {
        let t = self.session.transcript();
        // The index of the plugin's answer to tools/list (if any).
        let list_id = t
            .entries
            .iter()
            .filter(|e| e.dir == mock_claude::Direction::ClientToServer)
            .filter_map(|e| e.frame.as_ref())
            .find(|f| f["method"] == "tools/list")
            .map(|f| f["id"].clone());
        let answered_at = list_id.and_then(|id| {
            t.entries.iter().position(|e| {
                e.dir == mock_claude::Direction::ServerToClient
                    && e.frame
                        .as_ref()
                        .is_some_and(|f| f["id"] == id && f.get("method").is_none())
            })
        });
        t.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.dir == mock_claude::Direction::ServerToClient)
            .filter_map(|(i, e)| e.frame.as_ref().map(|f| (i, f)))
            .filter(|(_, f)| f["method"] == "notifications/claude/channel")
            .map(|(i, f)| Push {
                params: f.get("params").cloned().unwrap_or(Value::Null),
                before_lists: answered_at.is_none_or(|a| i < a),
                frame_index: i,
            })
            .collect()
    }

    /// The transcript as redacted NDJSON lines (mock-claude redacts the
    /// profile's secret env; `secrets` adds the trigger's own, e.g. bearer
    /// tokens from discovery files).
    pub fn transcript_lines(&self, secrets: &[String]) -> Vec<String> {
        let text = self.session.transcript().to_ndjson(true);
        text.lines()
            .map(|l| mock_claude::transcript::redact_line(l, secrets))
            .collect()
    }

    pub fn summary(&self) -> TranscriptSummary {
        let t = self.session.transcript();
        TranscriptSummary {
            stray_stdout: t
                .junk_lines()
                .iter()
                .map(|l| {
                    let cut: String = l.chars().take(120).collect();
                    format!("{cut:?} ({} bytes)", l.len() + 1)
                })
                .collect(),
            violations: t
                .violations()
                .into_iter()
                .filter(|v| v.dir == mock_claude::Direction::ServerToClient)
                // Every violation counts: the schemas themselves allow what
                // JSON-RPC allows (e.g. `"id": null` on a parse-error answer).
                .map(|v| format!("frame {} ({}): {}", v.index, v.schema, v.message))
                .collect(),
        }
    }
}

fn discover_view(d: &mock_claude::DiscoverOutcome) -> Discover {
    match d {
        mock_claude::DiscoverOutcome::NotSent => Discover::NotSent,
        mock_claude::DiscoverOutcome::ErrorAnswered { code, message } => Discover::Error {
            code: *code,
            message: message.clone(),
        },
        mock_claude::DiscoverOutcome::Unanswered { waited } => {
            Discover::Unanswered { waited: *waited }
        }
        mock_claude::DiscoverOutcome::ResultAnswered { result } => Discover::Result(result.clone()),
    }
}

fn exit_view(r: mock_claude::Result<mock_claude::ShutdownReport>) -> Exit {
    match r {
        Ok(r) => Exit {
            exited: r.exited,
            via: r.via.map(|v| {
                match v {
                    mock_claude::ExitVia::Sigint => "SIGINT",
                    mock_claude::ExitVia::Sigterm => "SIGTERM",
                    mock_claude::ExitVia::Sigkill => "SIGKILL",
                    mock_claude::ExitVia::Sighup => "SIGHUP",
                    mock_claude::ExitVia::StdinEof => "stdin EOF",
                    mock_claude::ExitVia::AlreadyExited => "already exited",
                }
                .to_string()
            }),
            elapsed: r.elapsed,
            status: r.status,
        },
        Err(e) => Exit {
            exited: false,
            via: None,
            elapsed: Duration::ZERO,
            status: Some(format!("shutdown failed: {e}")),
        },
    }
}
