//! A running connection to one channel server, driven the way Claude Code drives it.
//!
//! Transport-agnostic like lsp-server's `Connection`: [`MockClaude::spawn`] starts a real process
//! over real pipes; [`Session::connect`] takes any reader/writer pair (see
//! [`crate::testing::memory`] for an in-process scripted plugin). A background task reads the
//! server's stdout, records every line in the transcript, answers server requests, routes
//! responses, and applies the client's rules to pushes *at arrival time* (a push that arrives
//! before the gate has run is lost, as in the real client).

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, Notify};

use crate::error::{Error, Result};
use crate::gate::{self, GateDecision};
use crate::options::LaunchOptions;
use crate::profile::{EnvValue, Profile};
use crate::render;
use crate::script::{Script, ToolCallRecord};
use crate::transcript::{frame_kind, id_key, Direction, Entry, Transcript};
use crate::Era;

type BoxWriter = Box<dyn AsyncWrite + Send + Unpin>;
type BoxReader = Box<dyn AsyncRead + Send + Unpin>;

/// Entry point: spawn a plugin as Claude Code would.
pub struct MockClaude;

impl MockClaude {
    /// Spawn `options.command` with the profile's env (session UUID, `CLAUDECODE=1`, project
    /// dir, entrypoint...) plus `options.extra_env`, in its own process group (so
    /// [`Session::orphans`] can find what it left behind), stdin/stdout/stderr piped.
    pub async fn spawn(profile: &Profile, options: LaunchOptions) -> Result<Session> {
        if options.command.is_empty() {
            return Err(Error::Options("empty plugin command".into()));
        }
        let session_id = options.session_id.unwrap_or_else(uuid::Uuid::new_v4);
        let project_dir = match &options.cwd {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(|e| Error::io("reading current dir", e))?,
        };
        let mut cmd = tokio::process::Command::new(&options.command[0]);
        cmd.args(&options.command[1..])
            .current_dir(&project_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut secrets = Vec::new();
        let parts: Vec<&str> = profile.version.split('.').collect();
        let part = |i: usize| parts.get(i).copied().unwrap_or("0");
        let project = project_dir.display().to_string();
        let sid = session_id.to_string();
        for var in &profile.env {
            let value = match &var.value {
                EnvValue::Literal { value } => value.clone(),
                EnvValue::SessionUuid => sid.clone(),
                EnvValue::ProjectDir => project.clone(),
                EnvValue::Entrypoint => options.entrypoint.as_str().to_string(),
                EnvValue::Template { value } => render::fill_template(
                    value,
                    &[
                        ("version", &profile.version),
                        ("major", part(0)),
                        ("minor", part(1)),
                        ("patch", part(2)),
                        ("session_id", &sid),
                        ("project_dir", &project),
                    ],
                ),
                EnvValue::RandomUuid => uuid::Uuid::new_v4().to_string(),
                EnvValue::RandomSecret => {
                    let mut rng = rand::rng();
                    (0..32)
                        .map(|_| format!("{:02x}", rng.random::<u8>()))
                        .collect()
                }
                EnvValue::TempPath => std::env::temp_dir()
                    .join(format!("mock-claude-{sid}"))
                    .join(var.name.to_ascii_lowercase())
                    .display()
                    .to_string(),
            };
            if var.secret {
                secrets.push(value.clone());
            }
            cmd.env(&var.name, value);
        }
        for (k, v) in &options.extra_env {
            if profile.secret_env.contains(k) {
                secrets.push(v.clone());
            }
            cmd.env(k, v);
        }
        for name in &profile.secret_env {
            if let Ok(v) = std::env::var(name) {
                secrets.push(v);
            }
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: options.command.clone(),
            source,
        })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let pid = child.id().map(|p| p as i32);
        tracing::debug!(command = ?options.command, ?pid, "spawned plugin");
        let mut session = Session::build(
            profile,
            options,
            Box::new(stdout),
            Box::new(stdin),
            Some(Box::new(stderr)),
            session_id,
        );
        session.shared.state.lock().unwrap().transcript.secrets = secrets;
        session.process = Some(Process {
            child: Mutex::new(child),
            pid: pid.unwrap_or(0),
            exit: Mutex::new(None),
        });
        Ok(session)
    }
}

/// How the `server/discover` probe went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DiscoverOutcome {
    /// The profile has no probe (or it was turned off).
    NotSent,
    /// Answered with an error (the right answer for a channel: -32601) → legacy handshake.
    ErrorAnswered {
        /// JSON-RPC code.
        code: i64,
        /// Error message.
        message: String,
    },
    /// No answer within the probe timeout; `waited` is the cost paid before falling back.
    Unanswered {
        /// Time spent waiting.
        waited: Duration,
    },
    /// A result → modern stateless era (channel notifications will be skipped).
    ResultAnswered {
        /// The result.
        result: Value,
    },
}

/// Durations of the handshake phases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HandshakeTimings {
    /// Spent on the probe (including an unanswered wait).
    pub discover: Option<Duration>,
    /// `initialize` round trip.
    pub initialize: Option<Duration>,
    /// Lists round trip.
    pub lists: Duration,
    /// Whole handshake.
    pub total: Duration,
}

/// Result of [`Session::handshake`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handshake {
    /// Probe outcome.
    pub discover: DiscoverOutcome,
    /// Why the profile's probe was not sent (`discover` is then `NotSent`): the client's
    /// memory of an earlier unanswered probe, `MCP_PROTOCOL_NEGOTIATION=legacy`, or
    /// [`LaunchOptions::skip_discover_probe`].
    #[serde(default)]
    pub discover_skipped: Option<String>,
    /// Negotiated protocol version.
    pub protocol_version: String,
    /// Era.
    pub era: Era,
    /// The server's capabilities as answered.
    pub server_capabilities: Value,
    /// `serverInfo`.
    pub server_info: Value,
    /// Instructions as sent by the server.
    pub instructions: Option<String>,
    /// Instructions as the client keeps them (cut to the profile's cap).
    pub instructions_as_seen: Option<String>,
    /// Tools from `tools/list` (empty if not listed).
    pub tools: Vec<Value>,
    /// Prompts from `prompts/list`.
    pub prompts: Vec<Value>,
    /// Resources from `resources/list`.
    pub resources: Vec<Value>,
    /// Which lists were requested.
    pub listed: Vec<String>,
    /// Lists the client gave up on, with its error line (e.g. 2.1.300's `Failed to fetch
    /// tools` for a modern-era `tools/list` result without `resultType`). The connection
    /// stays up; the list counts as empty.
    #[serde(default)]
    pub list_failures: Vec<String>,
    /// Cap problems: instructions/tool descriptions over the profile caps or the 2 KB advice.
    pub cap_warnings: Vec<String>,
    /// Timings.
    pub timings: HandshakeTimings,
    /// The gate's decision (also in [`Session::gate`]).
    pub gate: GateDecision,
}

impl Handshake {
    /// A listed tool by name.
    pub fn tool(&self, name: &str) -> Option<&Value> {
        self.tools.iter().find(|t| t["name"] == name)
    }
    /// Names of listed tools.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools
            .iter()
            .filter_map(|t| t["name"].as_str().map(String::from))
            .collect()
    }
    /// Whether the server declared `experimental[name]`.
    pub fn declares_experimental(&self, name: &str) -> bool {
        gate::declares_experimental(&self.server_capabilities, name)
    }
}

/// One accepted channel event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelEvent {
    /// The server name (`source=`).
    pub source: String,
    /// Content as pushed.
    pub content: String,
    /// Meta entries kept (valid keys), in order.
    pub meta: Vec<(String, String)>,
    /// The event rendered alone.
    pub rendered: String,
    /// Arrival time (ms since session start).
    pub t_ms: u64,
    /// Transcript index of the push frame.
    pub frame_index: usize,
    /// Arrived while the model was busy.
    pub while_busy: bool,
}

impl ChannelEvent {
    /// A meta value by key.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A user turn as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Exact text given to the model.
    pub text: String,
    /// Events in it.
    pub events: Vec<ChannelEvent>,
    /// Events that arrived while the model was busy, folded into one turn with the notice.
    pub batched: bool,
}

/// Why a push (or part of it) was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DropKind {
    /// A meta key failing the key rule (the event itself was delivered without it).
    MetaKey {
        /// The key.
        key: String,
    },
    /// A non-string meta value: the whole event is dropped.
    NonStringMetaValue {
        /// The key.
        key: String,
    },
    /// Params are not `{content: string, meta?: object}`.
    InvalidParams,
    /// Arrived before the client finished listing (before the gate ran): lost.
    BeforeListing,
    /// The gate did not register the server.
    NotRegistered,
    /// Registered, but the channels feature was no longer available when the push arrived
    /// (releases that re-check at delivery time, 2.1.290+).
    FeatureUnavailable,
}

/// A recorded drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedEvent {
    /// When (ms since start).
    pub t_ms: u64,
    /// Transcript index of the push.
    pub frame_index: usize,
    /// What was dropped.
    pub kind: DropKind,
    /// Explanation (always present, even when the client is silent).
    pub reason: String,
    /// What the real client logs, if anything (`None` = silent drop).
    pub client_warning: Option<String>,
    /// The push params.
    pub params: Value,
}

/// Verdict on a permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The channel answered `allow` first.
    Allowed,
    /// The channel answered `deny` first.
    Denied,
    /// No channel verdict in time (or the local dialog won): answered locally.
    AnsweredLocally,
}

/// A verdict the client ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredVerdict {
    /// Transcript index.
    pub frame_index: usize,
    /// Params as sent.
    pub params: Value,
    /// Why it was ignored (unknown id, already answered, bad behavior...).
    pub reason: String,
}

/// Result of a `tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// Request id.
    pub id: u64,
    /// `_meta["claudecode/toolUseId"]` sent.
    pub tool_use_id: String,
    /// `result` as answered.
    pub raw: Value,
    /// `result.content`.
    pub content: Vec<Value>,
    /// `result.isError`.
    pub is_error: bool,
    /// Structural problems found in the result (no content array, block without type...).
    pub problems: Vec<String>,
}

impl ToolResult {
    /// Concatenated text blocks.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How the process ended in a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitVia {
    /// Exited after SIGINT.
    Sigint,
    /// Exited after SIGTERM.
    Sigterm,
    /// Killed by SIGKILL.
    Sigkill,
    /// Exited after SIGHUP.
    Sighup,
    /// Exited after stdin closed.
    StdinEof,
    /// Had exited before shutdown started.
    AlreadyExited,
}

/// Outcome of [`Session::shutdown`] / [`Session::close_stdin_and_wait`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownReport {
    /// The process is gone.
    pub exited: bool,
    /// The step after which it exited.
    pub via: Option<ExitVia>,
    /// From the first step to exit (or to giving up).
    pub elapsed: Duration,
    /// Exit status text, e.g. `exit status: 0` or `signal: 2 (SIGINT)`.
    pub status: Option<String>,
    /// Exit code if it exited normally.
    pub exit_code: Option<i32>,
    /// Signal number if killed by a signal.
    pub signal: Option<i32>,
}

/// A process still running in the plugin's process group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanProcess {
    /// pid.
    pub pid: i32,
    /// Command line.
    pub cmdline: String,
}

#[derive(Debug)]
enum Phase {
    Handshaking,
    Listed(GateDecision),
    Failed(String),
}

#[derive(Debug, Default)]
struct PermissionState {
    outcome: Option<Verdict>,
}

/// The lists in flight: when the last answer arrives, the reader runs the gate *before* reading
/// the next line, so a push sent right after answering `tools/list` is not lost.
struct Listing {
    remaining: std::collections::HashSet<String>,
    caps: Value,
    era: Era,
}

struct State {
    transcript: Transcript,
    listing: Option<Listing>,
    pending: HashMap<String, oneshot::Sender<Value>>,
    phase: Phase,
    turns: VecDeque<Turn>,
    busy: bool,
    busy_events: Vec<ChannelEvent>,
    drops: Vec<DroppedEvent>,
    permissions: HashMap<String, PermissionState>,
    ignored_verdicts: Vec<IgnoredVerdict>,
    closed: Option<String>,
    stdout_eof: bool,
    /// Last `notifications/progress` per progress token (id key), for the idle cut.
    progress: HashMap<String, Instant>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
    started: Instant,
    profile: Arc<Profile>,
    options: LaunchOptions,
    feature_available: std::sync::atomic::AtomicBool,
    server_name: String,
    key_re: regex::Regex,
    writer: tokio::sync::Mutex<Option<BoxWriter>>,
}

impl Shared {
    fn t_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn record(
        &self,
        st: &mut State,
        dir: Direction,
        frame: Option<Value>,
        line: Option<String>,
    ) -> usize {
        st.transcript.entries.push(Entry {
            t_ms: self.t_ms(),
            dir,
            frame,
            line,
        });
        st.transcript.entries.len() - 1
    }

    async fn write_line(&self, bytes: &[u8], what: &str) -> Result<()> {
        let mut w = self.writer.lock().await;
        let w = w.as_mut().ok_or_else(|| Error::Closed {
            what: what.into(),
            reason: "stdin already closed".into(),
        })?;
        let res = async {
            w.write_all(bytes).await?;
            if !bytes.ends_with(b"\n") {
                w.write_all(b"\n").await?;
            }
            w.flush().await
        }
        .await;
        res.map_err(|e| Error::Closed {
            what: what.into(),
            reason: format!("writing to the server's stdin: {e}"),
        })
    }

    async fn send(&self, frame: Value) -> Result<()> {
        let text = serde_json::to_string(&frame).expect("frames serialise");
        {
            let mut st = self.state.lock().unwrap();
            self.record(&mut st, Direction::ClientToServer, Some(frame), None);
        }
        self.changed.notify_waiters();
        self.write_line(text.as_bytes(), "sending a frame").await
    }

    /// Run the gate now (called with the state locked, when the last list answer arrived).
    fn run_gate(&self, st: &mut State, caps: &Value, era: Era) {
        let decision = gate::evaluate(&self.profile, &self.options, caps, era);
        if decision.registered {
            tracing::info!("{}", decision.log_line);
        } else {
            tracing::warn!("{}", decision.log_line);
        }
        st.phase = Phase::Listed(decision);
    }

    fn close(&self, reason: String) {
        let mut st = self.state.lock().unwrap();
        if st.closed.is_none() {
            tracing::debug!(%reason, "connection closed");
            st.closed = Some(reason);
        }
        for (_, tx) in st.pending.drain() {
            drop(tx);
        }
        drop(st);
        self.changed.notify_waiters();
    }
}

struct Process {
    child: Mutex<tokio::process::Child>,
    pid: i32,
    exit: Mutex<Option<std::process::ExitStatus>>,
}

impl Process {
    fn try_exit(&self) -> Option<std::process::ExitStatus> {
        let mut exit = self.exit.lock().unwrap();
        if exit.is_none() {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                *exit = Some(status);
            }
        }
        *exit
    }

    async fn wait_exit(&self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A connection to one channel server. Methods take `&self` where they can so a test can wait
/// for a turn while another task injects events.
pub struct Session {
    profile: Arc<Profile>,
    options: LaunchOptions,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    session_id: uuid::Uuid,
    handshake: Option<Handshake>,
    process: Option<Process>,
    /// Default wait for `tools/call` answers.
    pub call_timeout: Duration,
}

impl ShutdownReport {
    /// A spawned server: `status` is its exit status if it exited.
    fn of_process(
        status: Option<std::process::ExitStatus>,
        via: Option<ExitVia>,
        elapsed: Duration,
    ) -> Self {
        use std::os::unix::process::ExitStatusExt;
        ShutdownReport {
            exited: status.is_some(),
            via,
            elapsed,
            status: status.map(|s| s.to_string()),
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
        }
    }

    /// An in-memory server (no process): it is gone when its output ended.
    fn in_memory(stdout_eof: bool, elapsed: Duration) -> Self {
        ShutdownReport {
            exited: stdout_eof,
            via: stdout_eof.then_some(ExitVia::StdinEof),
            elapsed,
            status: None,
            exit_code: None,
            signal: None,
        }
    }
}

impl Session {
    /// Drive a server over any reader (its stdout) and writer (its stdin). No process control:
    /// `shutdown` just closes the writer.
    pub fn connect<R, W>(
        profile: &Profile,
        options: LaunchOptions,
        server_stdout: R,
        server_stdin: W,
    ) -> Session
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let id = options.session_id.unwrap_or_else(uuid::Uuid::new_v4);
        Session::build(
            profile,
            options,
            Box::new(server_stdout),
            Box::new(server_stdin),
            None,
            id,
        )
    }

    fn build(
        profile: &Profile,
        options: LaunchOptions,
        stdout: BoxReader,
        stdin: BoxWriter,
        stderr: Option<BoxReader>,
        session_id: uuid::Uuid,
    ) -> Session {
        let profile = Arc::new(profile.clone());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                transcript: Transcript::default(),
                listing: None,
                pending: HashMap::new(),
                phase: Phase::Handshaking,
                turns: VecDeque::new(),
                busy: false,
                busy_events: Vec::new(),
                drops: Vec::new(),
                permissions: HashMap::new(),
                ignored_verdicts: Vec::new(),
                closed: None,
                stdout_eof: false,
                progress: HashMap::new(),
            }),
            changed: Notify::new(),
            started: Instant::now(),
            server_name: options.effective_server_name(),
            options: options.clone(),
            feature_available: std::sync::atomic::AtomicBool::new(options.feature_available),
            key_re: regex::Regex::new(&profile.meta.key_pattern).expect("validated at load"),
            profile: profile.clone(),
            writer: tokio::sync::Mutex::new(Some(stdin)),
        });
        tokio::spawn(read_stdout(shared.clone(), stdout));
        if let Some(stderr) = stderr {
            tokio::spawn(read_stderr(shared.clone(), stderr));
        }
        Session {
            next_id: AtomicU64::new(profile.initialize.id),
            profile,
            options,
            shared,
            session_id,
            handshake: None,
            process: None,
            call_timeout: Duration::from_secs(60),
        }
    }

    /// The profile driving this session.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    /// The launch options.
    pub fn options(&self) -> &LaunchOptions {
        &self.options
    }
    /// `CLAUDE_CODE_SESSION_ID` given to the server.
    pub fn session_id(&self) -> uuid::Uuid {
        self.session_id
    }
    /// The server's pid (spawned sessions only).
    pub fn pid(&self) -> Option<i32> {
        self.process.as_ref().map(|p| p.pid)
    }
    /// The server name as the client uses it (`source=`).
    pub fn server_name(&self) -> &str {
        &self.shared.server_name
    }
    /// The handshake result, once done.
    pub fn handshake_result(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }
    /// The model-visible name of one of this server's tools (`mcp__server__tool`).
    pub fn model_tool_name(&self, tool: &str) -> String {
        self.profile.model_tool_name(&self.shared.server_name, tool)
    }

    fn alloc_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Send a request and wait for its response frame (result or error) up to `timeout`.
    /// `Ok(Err(frame))` is a timeout with nothing received.
    async fn request_frame(
        &self,
        id: Value,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Option<Value>> {
        let rx = self.send_request(&id, method, params).await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => Ok(Some(resp)),
            Ok(Err(_)) => {
                let reason = self
                    .closed_reason()
                    .unwrap_or_else(|| "connection closed".into());
                Err(Error::Closed {
                    what: format!("waiting for the {method} answer"),
                    reason,
                })
            }
            Err(_) => {
                self.shared
                    .state
                    .lock()
                    .unwrap()
                    .pending
                    .remove(&id_key(&id));
                Ok(None)
            }
        }
    }

    /// Register `id` as pending and send the request; the receiver gets the answer frame.
    async fn send_request(
        &self,
        id: &Value,
        method: &str,
        params: Value,
    ) -> Result<oneshot::Receiver<Value>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.state.lock().unwrap();
            if let Some(reason) = &st.closed {
                return Err(Error::Closed {
                    what: format!("sending {method}"),
                    reason: reason.clone(),
                });
            }
            st.pending.insert(id_key(id), tx);
        }
        // Observed: a request without params (legacy tools/list) has no `params` key at all.
        let frame = if params.as_object().is_some_and(|p| p.is_empty()) {
            json!({ "method": method, "jsonrpc": "2.0", "id": id })
        } else {
            json!({ "method": method, "params": params, "jsonrpc": "2.0", "id": id })
        };
        self.shared.send(frame).await?;
        Ok(rx)
    }

    async fn request(&self, method: &str, params: Value, timeout: Duration) -> Result<Value> {
        let id = self.alloc_id();
        self.request_with_id(id, method, params, timeout).await
    }

    async fn request_with_id(
        &self,
        id: u64,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value> {
        match self
            .request_frame(json!(id), method, params, timeout)
            .await?
        {
            None => Err(Error::Timeout {
                what: format!("the answer to {method} (id {id})"),
                after: timeout,
            }),
            Some(resp) => response_result(method, resp),
        }
    }

    fn closed_reason(&self) -> Option<String> {
        self.shared.state.lock().unwrap().closed.clone()
    }

    fn client_meta(&self) -> Value {
        let d = &self.profile.discover;
        let mut meta = Map::new();
        if let Some(keys) = &d.meta_keys {
            meta.insert(
                keys.protocol_version.clone(),
                json!(d.protocol_version.clone().unwrap_or_default()),
            );
            meta.insert(keys.client_info.clone(), self.profile.client_info.clone());
            // FINDINGS 13: the probe's capabilities may differ per entrypoint.
            let caps = d
                .client_capabilities_by_entrypoint
                .get(self.options.entrypoint.as_str())
                .unwrap_or(&self.profile.client_capabilities);
            meta.insert(keys.client_capabilities.clone(), caps.clone());
        }
        Value::Object(meta)
    }

    fn fail_phase(&self, reason: String) {
        self.shared.state.lock().unwrap().phase = Phase::Failed(reason);
        self.shared.changed.notify_waiters();
    }

    /// Run the profile's lifecycle: the discover probe (if any), `initialize` with the client's
    /// version check, `notifications/initialized`, the lists, then the gate. An unsupported
    /// version or an invalid capability value fails with the client's own message
    /// ([`Error::ConnectionFailed`]).
    pub async fn handshake(&mut self) -> Result<Handshake> {
        let res = self.handshake_inner().await;
        if let Err(e) = &res {
            self.fail_phase(match e {
                Error::ConnectionFailed(m) => m.clone(),
                e => e.to_string(),
            });
        }
        res
    }

    async fn handshake_inner(&mut self) -> Result<Handshake> {
        if self.handshake.is_some() {
            return Err(Error::NotReady("handshake already done".into()));
        }
        let profile = self.profile.clone();
        let start = Instant::now();
        let mut timings = HandshakeTimings::default();
        let init_timeout = Duration::from_millis(profile.initialize.timeout_ms.unwrap_or(30_000));

        // 1. The server/discover probe.
        let d = &profile.discover;
        let disabled_by_env = d
            .disable_env
            .as_ref()
            .is_some_and(|e| self.options.env_value(&e.name) == Some(e.value.as_str()));
        let mut discover = DiscoverOutcome::NotSent;
        let mut discover_skipped = None;
        // CHANNELS.md §3.2 / FINDINGS 16: an unanswered probe is remembered per server command.
        let memory = match (&self.options.probe_memory, d.remember_unanswered_days) {
            (Some(m), Some(days)) if d.enabled => {
                Some((m.clone(), Duration::from_secs(days * 24 * 60 * 60)))
            }
            _ => None,
        };
        if d.enabled {
            if let Some(e) = d.disable_env.as_ref().filter(|_| disabled_by_env) {
                discover_skipped = Some(format!("client env {}={}", e.name, e.value));
            } else if self.options.skip_discover_probe {
                discover_skipped = Some("LaunchOptions::skip_discover_probe".into());
            } else if let Some((m, lifetime)) = &memory {
                if let Some(r) = m.remembered(&self.options.command, *lifetime)? {
                    let line = format!(
                        "MCP server \"{}\": remembered as a legacy peer from an earlier connect \
                         (its server/discover probe was answered method-not-found or not at all); \
                         skipping the probe",
                        self.shared.server_name
                    );
                    tracing::debug!(age = ?r.age, "{line}");
                    discover_skipped = Some(format!(
                        "{line} (unanswered {} s ago, remembered for {} days)",
                        r.age.as_secs(),
                        d.remember_unanswered_days.unwrap_or_default()
                    ));
                }
            }
        }
        if d.enabled && discover_skipped.is_none() {
            let t0 = Instant::now();
            let waited = Duration::from_millis(d.timeout_ms.unwrap_or(3000));
            let id = d.id.clone().unwrap_or(json!("server-discover-probe-1"));
            let method = d.method.clone().unwrap_or_else(|| "server/discover".into());
            let resp = self
                .request_frame(id, &method, json!({ "_meta": self.client_meta() }), waited)
                .await
                .map_err(|e| match e {
                    Error::Closed { reason, .. } => Error::Closed {
                        what: "the server/discover probe (exiting here costs the client a restart)"
                            .into(),
                        reason,
                    },
                    e => e,
                })?;
            discover = match resp {
                None => DiscoverOutcome::Unanswered {
                    waited: t0.elapsed(),
                },
                Some(r) if r.get("error").is_some() => DiscoverOutcome::ErrorAnswered {
                    code: r["error"]["code"].as_i64().unwrap_or(0),
                    message: r["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                },
                Some(r) => DiscoverOutcome::ResultAnswered {
                    result: r.get("result").cloned().unwrap_or(Value::Null),
                },
            };
            timings.discover = Some(t0.elapsed());
            tracing::debug!(?discover, "server/discover probe");
            if let (DiscoverOutcome::Unanswered { .. }, Some((m, _))) = (&discover, &memory) {
                m.remember_unanswered(&self.options.command)?;
            }
        }

        // 2. initialize (legacy) or take identity from the discover result (modern).
        let (protocol_version, caps, server_info, instructions, era) = match &discover {
            DiscoverOutcome::ResultAnswered { result } => {
                let version = result["protocolVersion"]
                    .as_str()
                    .or_else(|| {
                        result["supportedVersions"]
                            .as_array()
                            .and_then(|v| v.last())
                            .and_then(Value::as_str)
                    })
                    .unwrap_or(d.protocol_version.as_deref().unwrap_or("2026-07-28"))
                    .to_string();
                (
                    version,
                    result.get("capabilities").cloned().unwrap_or(json!({})),
                    result.get("serverInfo").cloned().unwrap_or(Value::Null),
                    result["instructions"].as_str().map(String::from),
                    Era::Modern,
                )
            }
            _ => {
                let t0 = Instant::now();
                let params = json!({
                    "protocolVersion": profile.initialize.protocol_version,
                    "capabilities": profile.client_capabilities,
                    "clientInfo": profile.client_info,
                });
                let result = self
                    .request("initialize", params, init_timeout)
                    .await
                    .map_err(|e| match e {
                        Error::Rpc { code, message, .. } => {
                            Error::ConnectionFailed(format!("MCP error {code}: {message}"))
                        }
                        e => e,
                    })?;
                timings.initialize = Some(t0.elapsed());
                let version = result["protocolVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if !profile.accepts_protocol_version(&version) {
                    return Err(Error::ConnectionFailed(
                        profile.unsupported_version_text(&version),
                    ));
                }
                let caps = result.get("capabilities").cloned().unwrap_or(json!({}));
                if profile.capability_values_must_be_objects {
                    if let Some(exp) = caps.get("experimental").and_then(Value::as_object) {
                        for (k, v) in exp {
                            if !v.is_object() {
                                return Err(Error::ConnectionFailed(format!(
                                    "initialize result failed schema validation: capabilities.experimental[{k:?}] must be an object, got {v}"
                                )));
                            }
                        }
                    }
                }
                let era = profile.era_of(&version);
                let instructions = result["instructions"].as_str().map(String::from);
                let server_info = result.get("serverInfo").cloned().unwrap_or(Value::Null);
                self.shared
                    .send(json!({ "method": "notifications/initialized", "jsonrpc": "2.0" }))
                    .await?;
                (version, caps, server_info, instructions, era)
            }
        };

        // 3. The lists, only those declared, concurrently.
        let t0 = Instant::now();
        let mut listed = Vec::new();
        for list in &profile.after_initialized.lists {
            let cap = list.trim_end_matches("/list");
            if !profile.after_initialized.only_if_declared || caps.get(cap).is_some() {
                listed.push(list.clone());
            }
        }
        let meta = if era == Era::Modern {
            Some(self.client_meta())
        } else {
            None
        };
        let list_params = || match &meta {
            Some(m) => json!({ "_meta": m }),
            None => json!({}),
        };
        let ids: Vec<u64> = listed.iter().map(|_| self.alloc_id()).collect();
        {
            let mut st = self.shared.state.lock().unwrap();
            if ids.is_empty() {
                self.shared.run_gate(&mut st, &caps, era);
            } else {
                st.listing = Some(Listing {
                    remaining: ids.iter().map(|i| id_key(&json!(i))).collect(),
                    caps: caps.clone(),
                    era,
                });
            }
        }
        let answers: Vec<Result<Value>> = if profile.after_initialized.concurrent {
            let futs: Vec<_> = listed
                .iter()
                .zip(&ids)
                .map(|(l, id)| self.request_with_id(*id, l, list_params(), init_timeout))
                .collect();
            futures_join_all(futs).await
        } else {
            let mut v = Vec::new();
            for (l, id) in listed.iter().zip(&ids) {
                v.push(
                    self.request_with_id(*id, l, list_params(), init_timeout)
                        .await,
                );
            }
            v
        };
        let (mut tools, mut prompts, mut resources) = (Vec::new(), Vec::new(), Vec::new());
        let mut list_failures = Vec::new();
        for (list, answer) in listed.iter().zip(answers) {
            let mut answer = answer?;
            if era == Era::Modern {
                match self
                    .check_modern_result_type(list, answer, &list_params(), init_timeout)
                    .await?
                {
                    Ok(a) => answer = a,
                    Err(failure) => {
                        list_failures.push(failure);
                        continue;
                    }
                }
            }
            let (key, into) = match list.as_str() {
                "tools/list" => ("tools", &mut tools),
                "prompts/list" => ("prompts", &mut prompts),
                _ => ("resources", &mut resources),
            };
            match answer.get(key).and_then(Value::as_array) {
                Some(items) => *into = items.clone(),
                None => {
                    return Err(Error::ConnectionFailed(format!(
                        "{list} result has no {key:?} array: {answer}"
                    )))
                }
            }
        }
        timings.lists = t0.elapsed();

        // Caps.
        let mut cap_warnings = Vec::new();
        let mut instructions_as_seen = instructions.clone();
        if let Some(c) = &profile.caps {
            if let Some(i) = &instructions {
                let n = i.chars().count();
                if n > c.instructions_max_chars {
                    cap_warnings.push(format!(
                        "instructions are {n} characters; Claude Code {} cuts them to {}",
                        profile.version, c.instructions_max_chars
                    ));
                    instructions_as_seen = Some(i.chars().take(c.instructions_max_chars).collect());
                }
                if i.len() > c.recommended_max_bytes {
                    cap_warnings.push(format!(
                        "instructions are {} bytes, over the {} bytes advice",
                        i.len(),
                        c.recommended_max_bytes
                    ));
                }
            }
            for t in &tools {
                if let Some(desc) = t["description"].as_str() {
                    let name = t["name"].as_str().unwrap_or("?");
                    if desc.chars().count() > c.tool_description_max_chars {
                        cap_warnings.push(format!(
                            "tool {name:?} description is {} characters; cut to {}",
                            desc.chars().count(),
                            c.tool_description_max_chars
                        ));
                    }
                    if desc.len() > c.recommended_max_bytes {
                        cap_warnings.push(format!(
                            "tool {name:?} description is {} bytes, over the {} bytes advice",
                            desc.len(),
                            c.recommended_max_bytes
                        ));
                    }
                }
            }
        }

        // 4. The gate ran in the reader when the last list answer arrived.
        let decision = match &self.shared.state.lock().unwrap().phase {
            Phase::Listed(d) => d.clone(),
            other => {
                return Err(Error::Protocol(format!(
                    "lists answered but the gate did not run ({other:?})"
                )))
            }
        };
        self.shared.changed.notify_waiters();
        timings.total = start.elapsed();
        let hs = Handshake {
            discover,
            discover_skipped,
            protocol_version,
            era,
            server_capabilities: caps,
            server_info,
            instructions,
            instructions_as_seen,
            tools,
            prompts,
            resources,
            listed,
            list_failures,
            cap_warnings,
            timings,
            gate: decision,
        };
        self.handshake = Some(hs.clone());
        Ok(hs)
    }

    /// Apply the profile's `modern_result_type` rule to a modern-era list answer. `Ok(Ok(a))`:
    /// the answer to use; `Ok(Err(line))`: the client gave up on the list (the line is its
    /// error log), after re-sending the request `attempts` times in all as 2.1.300 does.
    async fn check_modern_result_type(
        &self,
        method: &str,
        mut answer: Value,
        params: &Value,
        timeout: Duration,
    ) -> Result<std::result::Result<Value, String>> {
        let Some(rule) = self
            .profile
            .modern_result_type
            .as_ref()
            .filter(|r| r.methods.iter().any(|m| m == method))
        else {
            return Ok(Ok(answer));
        };
        if rule.when_missing != "reject" {
            if answer.get("resultType").is_none() {
                tracing::debug!(
                    server = %self.shared.server_name,
                    "{method} result omits resultType on a modern connection; \
                     Claude Code {} fills in resultType=\"complete\"",
                    self.profile.version
                );
            }
            return Ok(Ok(answer));
        }
        let message = render::fill_template(
            rule.reject_message
                .as_deref()
                .unwrap_or("missing required resultType"),
            &[("method", method)],
        );
        let attempts = rule.attempts.unwrap_or(1).max(1);
        for attempt in 1..=attempts {
            if answer.get("resultType").is_some() {
                return Ok(Ok(answer));
            }
            if attempt == attempts {
                break;
            }
            let gap = rule
                .retry_gaps_ms
                .get(attempt as usize - 1)
                .or(rule.retry_gaps_ms.last())
                .copied()
                .unwrap_or(0);
            tracing::debug!(
                server = %self.shared.server_name,
                "{method} failed ({message}); retrying in {gap}ms"
            );
            tokio::time::sleep(Duration::from_millis(gap)).await;
            answer = self.request(method, params.clone(), timeout).await?;
        }
        let what = match method {
            "tools/list" => "tools",
            "prompts/list" => "prompts",
            _ => "resources",
        };
        let line = format!(
            "MCP server \"{}\" Failed to fetch {what}: {message}",
            self.shared.server_name
        );
        tracing::error!("{line}");
        Ok(Err(line))
    }

    /// The gate decision. Before the handshake finished (or when it failed) this is a
    /// not-registered decision whose reason says why.
    pub fn gate(&self) -> GateDecision {
        let st = self.shared.state.lock().unwrap();
        match &st.phase {
            Phase::Listed(d) => d.clone(),
            Phase::Handshaking => GateDecision {
                registered: false,
                failed_check: None,
                reason: Some("handshake not completed; the gate runs after the lists".into()),
                log_line: String::new(),
            },
            Phase::Failed(r) => GateDecision {
                registered: false,
                failed_check: None,
                reason: Some(format!("connection failed: {r}")),
                log_line: format!(
                    "MCP server \"{}\": Connection failed: {r}",
                    self.shared.server_name
                ),
            },
        }
    }

    /// Wait for the next turn the model would get. Errors at once when the server is not
    /// registered (with the gate's reason), on timeout, or when the connection closed.
    pub async fn next_turn(&self, timeout: Duration) -> Result<Turn> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.shared.state.lock().unwrap();
                if let Some(t) = st.turns.pop_front() {
                    return Ok(t);
                }
                match &st.phase {
                    Phase::Listed(d) if !d.registered => {
                        return Err(Error::NotReady(format!(
                            "channel notifications are not registered for {}: {}",
                            self.shared.server_name,
                            d.reason.clone().unwrap_or_default()
                        )))
                    }
                    Phase::Failed(r) => {
                        return Err(Error::NotReady(format!("the connection failed: {r}")))
                    }
                    _ => {}
                }
                if let Some(r) = &st.closed {
                    return Err(Error::Closed {
                        what: "waiting for a turn".into(),
                        reason: r.clone(),
                    });
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    what: "a channel turn".into(),
                    after: timeout,
                });
            }
        }
    }

    /// Switch the account's channels availability mid-session. Releases that re-check at
    /// delivery (profile `gate.recheck_feature_at_delivery`, 2.1.290+) then drop pushes with the
    /// availability reason; older ones keep delivering to a registered server.
    pub fn set_feature_available(&self, available: bool) {
        self.shared
            .feature_available
            .store(available, Ordering::SeqCst);
    }

    /// Turns queued and not yet taken.
    pub fn pending_turns(&self) -> usize {
        self.shared.state.lock().unwrap().turns.len()
    }

    /// Mark the model busy (events are then batched) or idle (the batch becomes one turn).
    pub fn set_busy(&self, busy: bool) {
        let mut st = self.shared.state.lock().unwrap();
        st.busy = busy;
        if !busy && !st.busy_events.is_empty() {
            let events = std::mem::take(&mut st.busy_events);
            let rules = &self.profile.render;
            let text = events
                .iter()
                .map(|e| render::render_busy_notice(rules, &e.source, &e.rendered))
                .collect::<Vec<_>>()
                .join(&rules.batch_separator);
            st.turns.push_back(Turn {
                text,
                events,
                batched: true,
            });
        }
        drop(st);
        self.shared.changed.notify_waiters();
    }

    /// Everything dropped so far (and why).
    pub fn drops(&self) -> Vec<DroppedEvent> {
        self.shared.state.lock().unwrap().drops.clone()
    }

    /// A snapshot of the transcript.
    pub fn transcript(&self) -> Transcript {
        self.shared.state.lock().unwrap().transcript.clone()
    }

    /// Write a raw line to the server's stdin (malformed-input checks). A newline is added if
    /// missing. Recorded in the transcript as a `client->server` `line`.
    pub async fn send_raw_line(&self, bytes: &[u8]) -> Result<()> {
        {
            let mut st = self.shared.state.lock().unwrap();
            let line = String::from_utf8_lossy(bytes)
                .trim_end_matches('\n')
                .to_string();
            self.shared
                .record(&mut st, Direction::ClientToServer, None, Some(line));
        }
        self.shared.write_line(bytes, "sending a raw line").await
    }

    /// Send an arbitrary frame (recorded). For tests of unusual client behaviour.
    pub async fn send_frame(&self, frame: Value) -> Result<()> {
        self.shared.send(frame).await
    }

    /// Whether the server is still there: the process has not exited (spawned sessions) and its
    /// stdout is open.
    pub fn is_alive(&self) -> bool {
        match &self.process {
            Some(p) => p.try_exit().is_none(),
            None => !self.shared.state.lock().unwrap().stdout_eof,
        }
    }

    /// Why the connection closed, if it did.
    pub fn closed_reason_text(&self) -> Option<String> {
        self.closed_reason()
    }

    /// Call a tool as the model would: `tools/call` with the profile's `_meta`
    /// (`claudecode/toolUseId`, `progressToken` = request id). The tool must have been listed.
    /// The model is busy during the call: pushes arriving meanwhile are batched.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<ToolResult> {
        let hs = self
            .handshake
            .as_ref()
            .ok_or_else(|| Error::NotReady("call handshake() first".into()))?;
        if hs.tool(name).is_none() {
            return Err(Error::ToolNotListed {
                name: name.into(),
                listed: hs.tool_names().join(", "),
            });
        }
        self.call_tool_unchecked(name, arguments).await
    }

    /// [`Session::call_tool`] without the "was it listed" check.
    pub async fn call_tool_unchecked(&self, name: &str, arguments: Value) -> Result<ToolResult> {
        let id = self.alloc_id();
        let tool_use_id = new_tool_use_id(
            self.profile
                .tools_call
                .tool_use_id_prefix
                .as_deref()
                .unwrap_or("toolu_"),
        );
        // Modern era (FINDINGS 6): the three identity keys come first, then the tool-use id.
        let mut meta = match self.handshake.as_ref().map(|h| h.era) {
            Some(Era::Modern) => match self.client_meta() {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            _ => Map::new(),
        };
        meta.insert(
            self.profile.tools_call.tool_use_id_meta_key.clone(),
            json!(tool_use_id),
        );
        if self.profile.tools_call.progress_token == "request_id" {
            meta.insert("progressToken".into(), json!(id));
        }
        let params = json!({ "name": name, "arguments": arguments, "_meta": meta });
        let was_busy = self.shared.state.lock().unwrap().busy;
        self.set_busy(true);
        let resp = self.wait_tool_call(id, name, params).await;
        if !was_busy {
            self.set_busy(false);
        }
        let resp = resp?;
        let result = response_result("tools/call", resp)?;
        Ok(check_tool_result(id, tool_use_id, result))
    }

    /// The idle limit for tool calls: the launch override, else the profile's (2.1.187+).
    pub fn tool_idle_timeout(&self) -> Option<Duration> {
        self.profile.tools_call.idle_timeout_ms.map(|ms| {
            self.options
                .tool_idle_timeout
                .unwrap_or(Duration::from_millis(ms))
        })
    }

    /// Send `tools/call` and wait for its answer. CHANNELS.md §3.5: the client's tool timeout
    /// is effectively unlimited, but a call with no progress is cut after the idle limit: each
    /// `notifications/progress` carrying the call's progress token restarts the idle clock.
    /// [`Session::call_timeout`] stays as the harness's own overall bound.
    async fn wait_tool_call(&self, id: u64, name: &str, params: Value) -> Result<Value> {
        let idv = json!(id);
        let key = id_key(&idv);
        let mut rx = self.send_request(&idv, "tools/call", params).await?;
        let idle = self.tool_idle_timeout();
        let started = Instant::now();
        let overall = tokio::time::Instant::now() + self.call_timeout;
        let outcome = loop {
            let active = self
                .shared
                .state
                .lock()
                .unwrap()
                .progress
                .get(&key)
                .copied();
            let idle_deadline =
                idle.map(|i| tokio::time::Instant::from_std(active.unwrap_or(started) + i));
            let deadline = idle_deadline.map_or(overall, |d| d.min(overall));
            match tokio::time::timeout_at(deadline, &mut rx).await {
                Ok(Ok(resp)) => break Ok(resp),
                Ok(Err(_)) => {
                    break Err(Error::Closed {
                        what: format!("waiting for the tools/call {name} answer"),
                        reason: self
                            .closed_reason()
                            .unwrap_or_else(|| "connection closed".into()),
                    })
                }
                Err(_) if tokio::time::Instant::now() >= overall => {
                    break Err(Error::Timeout {
                        what: format!("tools/call {name} (id {id})"),
                        after: self.call_timeout,
                    })
                }
                Err(_) => {
                    let newer = self
                        .shared
                        .state
                        .lock()
                        .unwrap()
                        .progress
                        .get(&key)
                        .copied();
                    if newer != active {
                        continue; // progress arrived meanwhile: the idle clock restarted
                    }
                    let idle = idle.expect("only an idle deadline can end here");
                    tracing::warn!(
                        server = %self.shared.server_name,
                        "tools/call {name} (id {id}) idle for {idle:?} with no progress: cut"
                    );
                    break Err(Error::ToolCallIdle {
                        tool: name.into(),
                        id,
                        idle,
                        version: self.profile.version.clone(),
                    });
                }
            }
        };
        let mut st = self.shared.state.lock().unwrap();
        st.pending.remove(&key);
        st.progress.remove(&key);
        outcome
    }

    /// Apply a script to a turn: every matching rule becomes a tool call (per event).
    pub async fn run_script_turn(
        &self,
        script: &Script,
        turn: &Turn,
    ) -> Result<Vec<ToolCallRecord>> {
        let mut out = Vec::new();
        for (tool, args) in script.calls_for(turn)? {
            let model_name = self.model_tool_name(&tool);
            let result = self
                .call_tool(&tool, args.clone())
                .await
                .map_err(|e| e.to_string());
            out.push(ToolCallRecord {
                tool,
                model_name,
                arguments: args,
                result,
            });
        }
        Ok(out)
    }

    fn new_permission_id(&self, rules: &crate::profile::PermissionRules) -> String {
        let alphabet: Vec<char> = rules.id.alphabet.chars().collect();
        let mut rng = rand::rng();
        if rules.id.generation == "hash_of_tool_use_id" {
            // The real hash is unknown; FNV-1a of a fresh tool-use id keeps the "derived, not
            // random-looking-per-call" property and the alphabet.
            let tool_use = new_tool_use_id("toolu_");
            let mut h: u64 = 0xcbf29ce484222325;
            for b in tool_use.bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
            (0..rules.id.length)
                .map(|_| {
                    let c = alphabet[(h % alphabet.len() as u64) as usize];
                    h /= alphabet.len() as u64;
                    c
                })
                .collect()
        } else {
            (0..rules.id.length)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect()
        }
    }

    /// Send `notifications/claude/channel/permission_request` as the client does when a tool
    /// needs approval. Errors (with the missing condition) when the profile has no relay, the
    /// remote flag is off, the server did not declare both capabilities, or it is not registered.
    /// `input_preview` is cut to the profile's limit. Returns the request id.
    pub async fn send_permission_request(
        &self,
        tool_name: &str,
        description: &str,
        input_preview: &str,
    ) -> Result<String> {
        let rules = self.profile.permission.clone().ok_or_else(|| {
            Error::PermissionUnavailable(format!(
                "Claude Code {} has no permission relay (added in 2.1.81)",
                self.profile.version
            ))
        })?;
        if !self.options.permission_relay_enabled {
            return Err(Error::PermissionUnavailable(
                "the client's remote flag for the relay is off".into(),
            ));
        }
        let hs = self
            .handshake
            .as_ref()
            .ok_or_else(|| Error::NotReady("call handshake() first".into()))?;
        if !hs.declares_experimental("claude/channel") {
            return Err(Error::PermissionUnavailable(
                "the server did not declare experimental[\"claude/channel\"]".into(),
            ));
        }
        if !hs.declares_experimental(&rules.capability) {
            return Err(Error::PermissionUnavailable(format!(
                "the server did not declare experimental[{:?}]",
                rules.capability
            )));
        }
        let gate = self.gate();
        if rules.requires_registered && !gate.registered {
            return Err(Error::PermissionUnavailable(format!(
                "the server is not a registered channel: {}",
                gate.reason.unwrap_or_default()
            )));
        }
        let id = loop {
            let id = self.new_permission_id(&rules);
            let mut st = self.shared.state.lock().unwrap();
            if !st.permissions.contains_key(&id) {
                st.permissions
                    .insert(id.clone(), PermissionState::default());
                break id;
            }
        };
        let preview: String = input_preview
            .chars()
            .take(rules.input_preview_max_chars)
            .collect();
        let params = json!({
            "request_id": id,
            "tool_name": tool_name,
            "description": description,
            "input_preview": preview,
        });
        self.shared
            .send(json!({ "method": rules.request_method, "params": params, "jsonrpc": "2.0" }))
            .await?;
        Ok(id)
    }

    /// Wait for the channel's verdict. The first answer wins; on timeout the request is
    /// answered locally (and a later channel verdict is ignored and recorded).
    pub async fn wait_verdict(&self, request_id: &str, timeout: Duration) -> Result<Verdict> {
        let key = request_id.to_ascii_lowercase();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.shared.state.lock().unwrap();
                match st.permissions.get_mut(&key) {
                    None => {
                        return Err(Error::NotReady(format!(
                            "no permission request {request_id:?} was sent"
                        )))
                    }
                    Some(p) => {
                        if let Some(v) = p.outcome {
                            return Ok(v);
                        }
                        if tokio::time::Instant::now() >= deadline {
                            p.outcome = Some(Verdict::AnsweredLocally);
                            return Ok(Verdict::AnsweredLocally);
                        }
                    }
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Answer a request in the local dialog (racing the channel). Returns whether it won.
    pub fn answer_locally(&self, request_id: &str) -> bool {
        let mut st = self.shared.state.lock().unwrap();
        match st.permissions.get_mut(&request_id.to_ascii_lowercase()) {
            Some(p) if p.outcome.is_none() => {
                p.outcome = Some(Verdict::AnsweredLocally);
                true
            }
            _ => false,
        }
    }

    /// Channel verdicts the client ignored (late, duplicate, unknown id, bad behavior).
    pub fn ignored_verdicts(&self) -> Vec<IgnoredVerdict> {
        self.shared.state.lock().unwrap().ignored_verdicts.clone()
    }

    async fn wait_stdout_eof(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.state.lock().unwrap().stdout_eof {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    async fn close_stdin(&self) {
        if let Some(mut w) = self.shared.writer.lock().await.take() {
            let _ = w.shutdown().await;
        }
    }

    /// Shut the server down exactly as the profile says (2.1.330: SIGINT; after 100 ms SIGTERM;
    /// 400 ms later SIGKILL; then stdin closed) and report how it ended.
    pub async fn shutdown(&mut self) -> Result<ShutdownReport> {
        let start = Instant::now();
        let Some(proc_) = &self.process else {
            self.close_stdin().await;
            self.wait_stdout_eof(Duration::from_secs(5)).await;
            let eof = self.shared.state.lock().unwrap().stdout_eof;
            return Ok(ShutdownReport::in_memory(eof, start.elapsed()));
        };
        let mut via = None;
        let mut status = proc_.try_exit();
        if status.is_some() {
            via = Some(ExitVia::AlreadyExited);
        } else {
            for step in &self.profile.shutdown.steps {
                let this = match step.action.as_str() {
                    "close_stdin" => {
                        self.close_stdin().await;
                        ExitVia::StdinEof
                    }
                    _ => {
                        let name = step.signal.as_deref().unwrap_or("SIGTERM");
                        let (sig, v) = match name {
                            "SIGINT" => (nix::sys::signal::Signal::SIGINT, ExitVia::Sigint),
                            "SIGKILL" => (nix::sys::signal::Signal::SIGKILL, ExitVia::Sigkill),
                            "SIGHUP" => (nix::sys::signal::Signal::SIGHUP, ExitVia::Sighup),
                            _ => (nix::sys::signal::Signal::SIGTERM, ExitVia::Sigterm),
                        };
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(proc_.pid), sig);
                        v
                    }
                };
                // A SIGKILL always lands; give the kernel time to reap even if wait_ms is 0.
                let wait = if this == ExitVia::Sigkill {
                    Duration::from_millis(step.wait_ms.max(5_000))
                } else {
                    Duration::from_millis(step.wait_ms)
                };
                if let Some(s) = proc_.wait_exit(wait).await {
                    status = Some(s);
                    via = Some(this);
                    break;
                }
            }
        }
        let elapsed = start.elapsed();
        self.close_stdin().await;
        self.wait_stdout_eof(Duration::from_secs(2)).await;
        Ok(ShutdownReport::of_process(status, via, elapsed))
    }

    /// Close the server's stdin and wait up to `grace` for it to exit (the reliable death
    /// signal). Does not signal; call [`Session::shutdown`] afterwards if it is still alive.
    pub async fn close_stdin_and_wait(&mut self, grace: Duration) -> Result<ShutdownReport> {
        let start = Instant::now();
        self.close_stdin().await;
        match &self.process {
            Some(p) => {
                let status = p.wait_exit(grace).await;
                Ok(ShutdownReport::of_process(
                    status,
                    status.map(|_| ExitVia::StdinEof),
                    start.elapsed(),
                ))
            }
            None => {
                self.wait_stdout_eof(grace).await;
                let eof = self.shared.state.lock().unwrap().stdout_eof;
                Ok(ShutdownReport::in_memory(eof, start.elapsed()))
            }
        }
    }

    /// Processes still running in the plugin's process group (the plugin was started as a group
    /// leader). Empty for in-memory sessions. Children that called `setsid` escape this check.
    pub fn orphans(&self) -> Vec<OrphanProcess> {
        let Some(p) = &self.process else {
            return Vec::new();
        };
        let alive_leader = p.try_exit().is_none();
        process_group_members(p.pid)
            .into_iter()
            .filter(|o| !(alive_leader && o.pid == p.pid))
            .collect()
    }

    /// SIGKILL everything left in the plugin's process group.
    pub fn kill_orphans(&self) {
        if let Some(p) = &self.process {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Never leak plugin processes from tests: kill the whole group.
        if let Some(p) = &self.process {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Processes whose process group is `pgid` (not zombies), from `/proc`.
pub fn process_group_members(pgid: i32) -> Vec<OrphanProcess> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state ppid pgrp ...
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() < 3 || fields[0] == "Z" {
            continue;
        }
        if fields[2].parse::<i32>() == Ok(pgid) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            out.push(OrphanProcess { pid, cmdline });
        }
    }
    out
}

fn new_tool_use_id(prefix: &str) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn response_result(method: &str, resp: Value) -> Result<Value> {
    if let Some(err) = resp.get("error") {
        return Err(Error::Rpc {
            method: method.into(),
            code: err["code"].as_i64().unwrap_or(0),
            message: err["message"].as_str().unwrap_or_default().to_string(),
            data: err.get("data").cloned().map(Box::new),
        });
    }
    resp.get("result").cloned().ok_or_else(|| {
        Error::Protocol(format!(
            "answer to {method} has neither result nor error: {resp}"
        ))
    })
}

fn check_tool_result(id: u64, tool_use_id: String, raw: Value) -> ToolResult {
    let mut problems = Vec::new();
    let content = match raw.get("content") {
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                match b["type"].as_str() {
                    None => problems.push(format!("content[{i}] has no string `type`")),
                    Some("text") if !b["text"].is_string() => {
                        problems.push(format!("content[{i}] is text without a string `text`"))
                    }
                    Some("image" | "audio")
                        if !b["data"].is_string() || !b["mimeType"].is_string() =>
                    {
                        problems.push(format!("content[{i}] lacks `data`/`mimeType`"))
                    }
                    _ => {}
                }
            }
            blocks.clone()
        }
        Some(other) => {
            problems.push(format!("`content` is not an array: {other}"));
            Vec::new()
        }
        None => {
            problems.push("result has no `content` array".into());
            Vec::new()
        }
    };
    let is_error = match raw.get("isError") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(format!("`isError` is not a boolean: {other}"));
            false
        }
    };
    ToolResult {
        id,
        tool_use_id,
        raw,
        content,
        is_error,
        problems,
    }
}

async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    // Poll all concurrently without pulling in futures-util.
    let mut handles: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = (0..handles.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, h) in handles.iter_mut().enumerate() {
            if outs[i].is_none() {
                match h.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outs[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outs.into_iter().map(|o| o.expect("all ready")).collect()
}

async fn read_stderr(shared: Arc<Shared>, stderr: BoxReader) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::trace!(target: "mock_claude::plugin_stderr", "{line}");
        let mut st = shared.state.lock().unwrap();
        shared.record(&mut st, Direction::Stderr, None, Some(line));
    }
}

/// Read one `\n`-terminated line of at most `max` bytes. `Ok(None)` at EOF; `Err` when the line
/// grows past `max` without a newline.
async fn read_limited_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() { None } else { Some(buf) });
        }
        if let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&chunk[..pos]);
            r.consume(pos + 1);
            return Ok(Some(buf));
        }
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        r.consume(n);
        if buf.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("more than {max} bytes on stdout without a newline"),
            ));
        }
    }
}

async fn read_stdout(shared: Arc<Shared>, stdout: BoxReader) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let max = shared.profile.stdout.max_line_bytes;
    loop {
        match read_limited_line(&mut reader, max).await {
            Ok(Some(mut line)) => {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                handle_line(&shared, line).await;
            }
            Ok(None) => break,
            Err(e) => {
                shared.close(format!("closed by the client: {e}"));
                break;
            }
        }
    }
    shared.state.lock().unwrap().stdout_eof = true;
    shared.close("the server closed its stdout (exited?)".into());
}

async fn handle_line(shared: &Arc<Shared>, line: Vec<u8>) {
    let parsed: Option<Value> = serde_json::from_slice(&line).ok().filter(Value::is_object);
    let Some(frame) = parsed else {
        let text = String::from_utf8_lossy(&line).to_string();
        let policy = shared.profile.stdout.non_json_line.clone();
        {
            let mut st = shared.state.lock().unwrap();
            st.transcript.stray_stdout_bytes += line.len() as u64 + 1;
            shared.record(&mut st, Direction::StdoutJunk, None, Some(text.clone()));
        }
        shared.changed.notify_waiters();
        match policy.as_str() {
            "disconnect" => shared.close(format!(
                "Claude Code {} disconnects on a non-JSON stdout line: {text:?}",
                shared.profile.version
            )),
            "hang" => shared.close(format!(
                "Claude Code {} hangs on a non-JSON stdout line: {text:?}",
                shared.profile.version
            )),
            _ => {
                tracing::warn!(server = %shared.server_name, "ignoring non-JSON stdout line: {text:?}")
            }
        }
        return;
    };
    let index = {
        let mut st = shared.state.lock().unwrap();
        if st.closed.is_some() {
            // After a disconnect/hang nothing more is processed, but it is still recorded.
            shared.record(&mut st, Direction::ServerToClient, Some(frame), None);
            return;
        }
        shared.record(
            &mut st,
            Direction::ServerToClient,
            Some(frame.clone()),
            None,
        )
    };
    match frame_kind(&frame) {
        "result" | "error" => {
            let key = id_key(&frame["id"]);
            let tx = {
                let mut st = shared.state.lock().unwrap();
                let done = match st.listing.as_mut() {
                    Some(l) => l.remaining.remove(&key) && l.remaining.is_empty(),
                    None => false,
                };
                if done {
                    let l = st.listing.take().expect("listing present");
                    shared.run_gate(&mut st, &l.caps, l.era);
                }
                st.pending.remove(&key)
            };
            match tx {
                Some(tx) => {
                    let _ = tx.send(frame);
                }
                None => {
                    tracing::warn!("answer to an unknown or expired request id {}", frame["id"])
                }
            }
        }
        "request" => answer_server_request(shared, &frame).await,
        "notification" => handle_notification(shared, &frame, index),
        _ => tracing::warn!("frame that is neither request, response nor notification: {frame}"),
    }
    shared.changed.notify_waiters();
}

async fn answer_server_request(shared: &Arc<Shared>, frame: &Value) {
    let method = frame["method"].as_str().unwrap_or_default();
    let id = frame["id"].clone();
    let reply = match method {
        "ping" => json!({ "result": {}, "jsonrpc": "2.0", "id": id }),
        "roots/list" => json!({ "result": { "roots": [] }, "jsonrpc": "2.0", "id": id }),
        "elicitation/create" => {
            json!({ "result": { "action": "decline" }, "jsonrpc": "2.0", "id": id })
        }
        _ => {
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "Method not found" } })
        }
    };
    if let Err(e) = shared.send(reply).await {
        tracing::warn!("cannot answer server request {method}: {e}");
    }
}

fn handle_notification(shared: &Arc<Shared>, frame: &Value, index: usize) {
    let method = frame["method"].as_str().unwrap_or_default();
    if method == "notifications/claude/channel" {
        handle_push(shared, frame, index);
    } else if method == "notifications/progress" {
        // Progress restarts a pending tool call's idle clock (the token is the request id).
        let key = id_key(&frame["params"]["progressToken"]);
        let mut st = shared.state.lock().unwrap();
        if st.pending.contains_key(&key) {
            st.progress.insert(key, Instant::now());
        } else {
            tracing::debug!("progress for no pending request: {frame}");
        }
    } else if shared
        .profile
        .permission
        .as_ref()
        .is_some_and(|p| p.verdict_method == method)
    {
        handle_verdict(shared, frame, index);
    }
}

fn handle_push(shared: &Arc<Shared>, frame: &Value, index: usize) {
    let profile = &shared.profile;
    let params = frame.get("params").cloned().unwrap_or(Value::Null);
    let t_ms = shared.t_ms();
    let mut st = shared.state.lock().unwrap();
    let drop_event =
        |st: &mut State, kind: DropKind, reason: String, client_warning: Option<String>| {
            tracing::warn!(server = %shared.server_name, "channel push dropped: {reason}");
            st.drops.push(DroppedEvent {
                t_ms,
                frame_index: index,
                kind,
                reason,
                client_warning,
                params: params.clone(),
            });
        };
    match &st.phase {
        Phase::Listed(d) if d.registered => {}
        Phase::Listed(d) => {
            let reason = format!(
                "channel notifications not registered: {}",
                d.reason.clone().unwrap_or_default()
            );
            drop_event(&mut st, DropKind::NotRegistered, reason, None);
            return;
        }
        _ => {
            drop_event(
                &mut st,
                DropKind::BeforeListing,
                "pushed before the client finished listing (the gate had not run): lost".into(),
                None,
            );
            return;
        }
    }
    if profile.gate.recheck_feature_at_delivery && !shared.feature_available.load(Ordering::SeqCst)
    {
        let reason = profile
            .gate
            .checks
            .iter()
            .find(|c| c.check == crate::gate::GateCheck::Feature)
            .map(|c| c.reason.clone())
            .unwrap_or_else(|| "channels feature is not currently available".into());
        drop_event(
            &mut st,
            DropKind::FeatureUnavailable,
            format!("checked at delivery: {reason}"),
            None,
        );
        return;
    }
    let Some(content) = params
        .get("content")
        .and_then(Value::as_str)
        .map(String::from)
    else {
        drop_event(
            &mut st,
            DropKind::InvalidParams,
            "params.content is missing or not a string".into(),
            None,
        );
        return;
    };
    let mut meta = Vec::new();
    match params.get("meta") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                let warning = (profile.meta.non_string_value == "drop_event_with_warning")
                    .then(|| format!("MCP server \"{}\": dropped channel event: meta value for {k:?} is not a string", shared.server_name));
                drop_event(
                    &mut st,
                    DropKind::NonStringMetaValue { key: k.clone() },
                    format!("meta[{k:?}] = {v} is not a string: the whole event is dropped"),
                    warning,
                );
                return;
            }
            for (k, v) in m {
                if shared.key_re.is_match(k) {
                    meta.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
                } else {
                    let warning = profile.meta.dropped_key_warning.as_ref().map(|w| {
                        render::fill_template(
                            w,
                            &[
                                ("name", &shared.server_name),
                                ("key", k),
                                ("pattern", &profile.meta.key_pattern),
                            ],
                        )
                    });
                    drop_event(
                        &mut st,
                        DropKind::MetaKey { key: k.clone() },
                        format!(
                            "meta key {k:?} does not match {}: key dropped",
                            profile.meta.key_pattern
                        ),
                        warning,
                    );
                }
            }
        }
        Some(other) => {
            drop_event(
                &mut st,
                DropKind::InvalidParams,
                format!("params.meta is not an object: {other}"),
                None,
            );
            return;
        }
    }
    let rendered = render::render_event(&profile.render, &shared.server_name, &meta, &content);
    let event = ChannelEvent {
        source: shared.server_name.clone(),
        content,
        meta,
        rendered: rendered.clone(),
        t_ms,
        frame_index: index,
        while_busy: st.busy,
    };
    if st.busy {
        st.busy_events.push(event);
    } else {
        st.turns.push_back(Turn {
            text: rendered,
            events: vec![event],
            batched: false,
        });
    }
}

fn handle_verdict(shared: &Arc<Shared>, frame: &Value, index: usize) {
    let rules = shared
        .profile
        .permission
        .as_ref()
        .expect("checked by caller");
    let params = frame.get("params").cloned().unwrap_or(Value::Null);
    let mut st = shared.state.lock().unwrap();
    let id = params["request_id"].as_str().unwrap_or_default();
    let key = if rules.id.case_insensitive {
        id.to_ascii_lowercase()
    } else {
        id.to_string()
    };
    let behavior = params["behavior"].as_str().unwrap_or_default();
    let verdict = match behavior {
        "allow" => Some(Verdict::Allowed),
        "deny" => Some(Verdict::Denied),
        _ => None,
    };
    let reason = match (st.permissions.get_mut(&key), verdict) {
        (_, None) => Some(format!("behavior {behavior:?} is neither allow nor deny")),
        (None, _) => Some(format!("unknown request id {id:?}")),
        (Some(p), Some(v)) => match p.outcome {
            Some(prev) => Some(format!(
                "request {id:?} was already answered ({prev:?}): first answer wins"
            )),
            None => {
                p.outcome = Some(v);
                None
            }
        },
    };
    if let Some(reason) = reason {
        tracing::debug!("permission verdict ignored: {reason}");
        st.ignored_verdicts.push(IgnoredVerdict {
            frame_index: index,
            params,
            reason,
        });
    }
}
