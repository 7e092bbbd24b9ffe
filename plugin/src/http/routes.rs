//! The loopback HTTP API: `/inject`, `/sse` (`/events`), `/permission`,
//! `/status`. Every refusal is a JSON `{"error": "..."}` with a status code
//! that says which rule failed, and a log line.
//!
//! [`Api`] is a hyper service written out by hand rather than a web
//! framework's router: five routes and three gates need no routing tree, and
//! on `/inject` (the hot route) a router's middleware layers cost two dozen
//! allocations and boxed futures per request, about a fifth of the plugin's
//! work per event. hyper still parses every request (limits, timeouts,
//! framing); only the dispatch below is ours. The gates run in this order:
//!
//! 1. `Host` and `Origin` must be loopback names (403), on every path;
//! 2. the path must exist (404) and take the method (405 with `Allow`);
//! 3. on every route but `/status`: the secret (401), then a declared
//!    `Content-Length` within [`MAX_BODY_BYTES`] (413).

use std::convert::Infallible;
use std::fmt::Display;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use super::auth::{check_host, check_origin, check_secret, Secret};
use super::body::{self, InjectBody, InjectBodyError};
use super::sse::Hub;
use crate::bridge::{Behavior, ChannelEvent, EventId, PushError, VerdictError};
use crate::mcp::meta::MetaError;
use crate::mcp::CoreHandle;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A refused body is read and discarded up to this size (see
/// `refuse_declared_oversize`); beyond it the connection is just closed.
pub const DRAIN_LIMIT_BYTES: usize = 8 * 1024 * 1024;
/// Time allowed to receive a request body (and to drain a refused one).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// `chat_id` of an injected event that names none.
pub const DEFAULT_CHAT_ID: &str = "inject";

pub struct AppState {
    pub core: CoreHandle,
    pub hub: Arc<Hub>,
    pub secret: Secret,
    pub port: u16,
    pub session_id: String,
    pub keepalive: Duration,
}

/// The routes. Matching is on the exact path (a query string is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Status,
    Inject,
    Sse,
    Permission,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        match path {
            "/inject" => Some(Route::Inject),
            "/sse" | "/events" => Some(Route::Sse),
            "/permission" => Some(Route::Permission),
            "/status" => Some(Route::Status),
            _ => None,
        }
    }

    /// The value of `Allow` for this route.
    fn allow(self) -> &'static str {
        match self {
            Route::Inject | Route::Permission => "POST",
            Route::Sse | Route::Status => "GET, HEAD",
        }
    }

    fn takes(self, method: &Method) -> bool {
        match self {
            Route::Inject | Route::Permission => method == Method::POST,
            Route::Sse | Route::Status => method == Method::GET || method == Method::HEAD,
        }
    }

    fn needs_secret(self) -> bool {
        self != Route::Status
    }
}

/// The HTTP API as a hyper service; cheap to clone (one per connection).
#[derive(Clone)]
pub struct Api {
    state: Arc<AppState>,
}

impl Api {
    pub fn new(state: Arc<AppState>) -> Api {
        Api { state }
    }

    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// The fast lane's inject (`fast_lane.rs`): push the event of a body the
    /// shortcut accepts, with the writer's signal from
    /// [`CoreHandle::push_tracked`]. `None` for any refusal, said nowhere:
    /// the lane then hands the request to [`Api::handle`], which says it.
    pub(crate) fn push_inject(
        &self,
        body: &[u8],
    ) -> Option<(EventId, Option<oneshot::Receiver<()>>)> {
        let event = event_of(InjectBody::parse(body).ok()?);
        let pushed = self.state.core.push_tracked(event).ok()?;
        tracing::debug!(id = pushed.0, "event injected (fast lane)");
        Some(pushed)
    }

    /// Answer one request. Generic over the body so tests and the fuzz
    /// target can drive it in process; the server passes hyper's `Incoming`.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ApiBody>
    where
        B: Body<Data = Bytes>,
        B::Error: Display,
    {
        let st = &*self.state;
        let headers = request.headers();
        let path = request.uri().path();
        if let Err(why) = check_host(headers, st.port).and_then(|()| check_origin(headers)) {
            tracing::warn!(path, "403: {why}");
            return error(StatusCode::FORBIDDEN, why);
        }
        let Some(route) = Route::of(path) else {
            tracing::info!(path, "404: no such route");
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "no route {path}; try POST /inject, GET /sse, POST /permission, GET /status"
                ),
            );
        };
        if !route.takes(request.method()) {
            tracing::warn!(path, method = %request.method(), "405: method not allowed");
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} {path} is not allowed; use {}",
                    request.method(),
                    route.allow()
                ),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(route.allow()));
            return response;
        }
        if route.needs_secret() {
            if let Err(why) = check_secret(headers, &st.secret) {
                tracing::warn!(path, "401: {why}");
                return error(StatusCode::UNAUTHORIZED, why);
            }
            if let Some(len) = declared_oversize(headers) {
                // Boxed, like `/permission` below: rare routes must not grow
                // the future every `/inject` allocates (past 1 KiB, malloc's
                // fast path no longer serves it).
                return Box::pin(refuse_declared_oversize(request, len)).await;
            }
        }
        match route {
            Route::Inject => inject(st, request.into_body()).await,
            Route::Sse => sse(st, &request),
            Route::Permission => Box::pin(permission(st, request.into_body())).await,
            Route::Status => status(st),
        }
    }
}

impl<B> hyper::service::Service<Request<B>> for Api
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Display,
{
    type Response = Response<ApiBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ApiBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        let api = self.clone();
        Box::pin(async move { Ok(api.handle(request).await) })
    }
}

type SseStream = Pin<Box<dyn Stream<Item = Result<Bytes, Infallible>> + Send>>;

/// A response body: one chunk (JSON), or the SSE stream.
pub struct ApiBody(BodyKind);

enum BodyKind {
    Once(Option<Bytes>),
    Stream(SseStream),
}

impl ApiBody {
    fn once(bytes: impl Into<Bytes>) -> ApiBody {
        ApiBody(BodyKind::Once(Some(bytes.into())))
    }
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            BodyKind::Once(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            BodyKind::Stream(stream) => stream
                .as_mut()
                .poll_next(cx)
                .map(|item| item.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, BodyKind::Once(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            BodyKind::Once(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            BodyKind::Stream(_) => SizeHint::default(),
        }
    }
}

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<ApiBody> {
    let mut response = Response::new(ApiBody::once(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json_value(status: StatusCode, value: &Value) -> Response<ApiBody> {
    json_response(status, value.to_string())
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<ApiBody> {
    json_value(status, &json!({ "error": message.into() }))
}

fn bad_request(route: &str, message: String) -> Response<ApiBody> {
    tracing::warn!(route, "400: {message}");
    error(StatusCode::BAD_REQUEST, message)
}

/// The next data chunk of a body (trailers are skipped), or `None` at its end.
async fn next_chunk<B>(mut body: Pin<&mut B>) -> Option<Result<Bytes, String>>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    loop {
        match poll_fn(|cx| body.as_mut().poll_frame(cx)).await? {
            Ok(frame) => match frame.into_data() {
                Ok(chunk) => return Some(Ok(chunk)),
                Err(_trailers) => continue,
            },
            Err(err) => return Some(Err(err.to_string())),
        }
    }
}

/// `Content-Length` when it declares more than [`MAX_BODY_BYTES`].
fn declared_oversize(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&len| len > MAX_BODY_BYTES as u64)
}

/// A body declared larger than the cap is refused from its headers: never
/// buffered. A client that asked `Expect: 100-continue`, or declared more than
/// [`DRAIN_LIMIT_BYTES`], is answered at once (and the connection closed).
/// Otherwise the body is read and discarded first, so a client that sends it
/// without waiting (curl, most libraries) gets the 413 instead of a broken
/// pipe from a socket closed under it.
async fn refuse_declared_oversize<B>(request: Request<B>, len: u64) -> Response<ApiBody>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    tracing::warn!(
        path = request.uri().path(),
        len,
        "413: declared body too large"
    );
    let expects_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue && len <= DRAIN_LIMIT_BYTES as u64 {
        drain(request.into_body()).await;
    }
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body of {len} bytes exceeds the {MAX_BODY_BYTES} byte limit"),
    )
}

/// Read and discard a refused body, up to [`DRAIN_LIMIT_BYTES`] and
/// [`DRAIN_TIMEOUT`]; memory stays at one chunk.
async fn drain<B>(body: B)
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let mut body = pin!(body);
    let mut total = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(chunk)) = next_chunk(body.as_mut()).await {
            total += chunk.len();
            if total > DRAIN_LIMIT_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Read a body of at most [`MAX_BODY_BYTES`]. Past the cap the rest is
/// drained (bounded), then 413; the excess is never buffered. A body that
/// arrived in one chunk (the usual case: it came with the headers) is
/// returned as that chunk, without a copy.
async fn read_capped<B>(body: B, route: &str) -> Result<Bytes, Response<ApiBody>>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let mut body = pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let read = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(chunk) = next_chunk(body.as_mut()).await {
            let chunk = chunk?;
            total += chunk.len();
            if total <= MAX_BODY_BYTES {
                match first.take() {
                    None if joined.is_empty() => first = Some(chunk),
                    earlier => {
                        if let Some(earlier) = earlier {
                            joined.extend_from_slice(&earlier);
                        }
                        joined.extend_from_slice(&chunk);
                    }
                }
            } else {
                first = None;
                joined = Vec::new();
                if total > DRAIN_LIMIT_BYTES {
                    break;
                }
            }
        }
        Ok::<(), String>(())
    })
    .await;
    match read {
        Err(_) => {
            tracing::warn!(route, "408: request body not received in time");
            Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            ))
        }
        Ok(Err(err)) => {
            tracing::warn!(route, "400: cannot read the request body: {err}");
            Err(error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {err}"),
            ))
        }
        Ok(Ok(())) if total > MAX_BODY_BYTES => {
            tracing::warn!(route, total, "413: body too large");
            Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the {MAX_BODY_BYTES} byte limit"),
            ))
        }
        Ok(Ok(())) => Ok(first.unwrap_or_else(|| Bytes::from(joined))),
    }
}

/// Read a JSON object body, mapping every failure to a clear refusal.
// The error is the response itself, returned straight to the client; boxing
// it would only add an allocation on the refusal path.
#[allow(clippy::result_large_err)]
async fn json_object<B>(body: B, route: &str) -> Result<Map<String, Value>, Response<ApiBody>>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let bytes = read_capped(body, route).await?;
    body::json_object(&bytes).map_err(|message| bad_request(route, message))
}

/// The event of a valid `/inject` body: `chat_id` first (Claude Code renders
/// attributes in order); an explicit top-level `chat_id` wins over
/// `meta.chat_id`, and without either it is [`DEFAULT_CHAT_ID`].
fn event_of(body: InjectBody) -> ChannelEvent {
    let InjectBody {
        content,
        chat_id,
        meta: caller_meta,
    } = body;
    let mut meta = Vec::with_capacity(caller_meta.len() + 1);
    meta.push(("chat_id".to_string(), String::new()));
    let mut meta_chat_id = None;
    for (key, value) in caller_meta {
        if key == "chat_id" {
            meta_chat_id = Some(value);
        } else {
            meta.push((key, value));
        }
    }
    meta[0].1 = chat_id
        .or(meta_chat_id)
        .unwrap_or_else(|| DEFAULT_CHAT_ID.to_string());
    ChannelEvent { content, meta }
}

async fn inject<B>(st: &AppState, body: B) -> Response<ApiBody>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    let bytes = match read_capped(body, "/inject").await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let body = match InjectBody::parse(&bytes) {
        Ok(body) => body,
        Err(InjectBodyError::Body(message)) => return bad_request("/inject", message),
        Err(InjectBodyError::Meta(err)) => {
            tracing::warn!(route = "/inject", "400: {err}");
            let keys = match &err {
                MetaError::InvalidEntries(_) => err.keys(),
                MetaError::NotAnObject { .. } => Vec::new(),
            };
            return json_value(
                StatusCode::BAD_REQUEST,
                &json!({ "error": err.to_string(), "keys": keys }),
            );
        }
    };
    match st.core.push(event_of(body)) {
        Ok(id) => {
            // Per-event success is debug: an info line (a stderr write) per event
            // would sit on the hot path. Refusals stay at warn.
            tracing::debug!(id, "event injected");
            // Let the stdout writer (woken by the push) run before this
            // task writes the 202: the notification is what the caller waits
            // for, and on a one-thread runtime it would otherwise queue
            // behind the response's own write.
            tokio::task::yield_now().await;
            // `{"id":"<n>"}`: the id is digits, nothing to escape.
            json_response(StatusCode::ACCEPTED, format!("{{\"id\":\"{id}\"}}"))
        }
        Err(err) => {
            tracing::warn!(route = "/inject", "503: {err}");
            let retry = match &err {
                PushError::Busy {
                    retry_after_secs, ..
                } => *retry_after_secs,
                PushError::ShuttingDown => 1,
            };
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, err.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
            response
        }
    }
}

fn sse<B>(st: &AppState, request: &Request<B>) -> Response<ApiBody> {
    let last_event_id = match request.headers().get("last-event-id") {
        None => None,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            Some(id) => Some(id),
            None => {
                tracing::warn!(route = "/sse", "400: Last-Event-ID is not a number");
                return error(
                    StatusCode::BAD_REQUEST,
                    "Last-Event-ID must be an event id (a number)",
                );
            }
        },
    };
    // HEAD gets the stream's headers and no stream (nothing is subscribed,
    // so no replay is consumed).
    let body = if request.method() == Method::HEAD {
        ApiBody(BodyKind::Once(None))
    } else {
        tracing::info!(?last_event_id, "SSE client connected");
        ApiBody(BodyKind::Stream(Box::pin(
            st.hub.subscribe(last_event_id, st.keepalive),
        )))
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn permission<B>(st: &AppState, body: B) -> Response<ApiBody>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    if !st.core.permission_relay() {
        tracing::warn!(route = "/permission", "404: permission relay is off");
        return error(
            StatusCode::NOT_FOUND,
            VerdictError::RelayDisabled.to_string(),
        );
    }
    let body = match json_object(body, "/permission").await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(request_id) = body.get("request_id").and_then(Value::as_str) else {
        return bad_request("/permission", "missing \"request_id\" (string)".into());
    };
    let behavior = match body.get("behavior").and_then(Value::as_str) {
        Some("allow") => Behavior::Allow,
        Some("deny") => Behavior::Deny,
        _ => {
            return bad_request(
                "/permission",
                "\"behavior\" must be \"allow\" or \"deny\"".into(),
            )
        }
    };
    match st.core.permission_verdict(request_id, behavior) {
        Ok(()) => json_value(
            StatusCode::ACCEPTED,
            &json!({ "request_id": request_id, "behavior": behavior }),
        ),
        Err(err) => {
            let status = match err {
                VerdictError::Unknown(_) | VerdictError::RelayDisabled => StatusCode::NOT_FOUND,
                VerdictError::AlreadyAnswered(_) => StatusCode::CONFLICT,
                VerdictError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            };
            tracing::warn!(route = "/permission", "{}: {err}", status.as_u16());
            error(status, err.to_string())
        }
    }
}

fn status(st: &AppState) -> Response<ApiBody> {
    let core = st.core.status();
    json_value(
        StatusCode::OK,
        &json!({
            "ok": true,
            "sessionId": st.session_id,
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "initialized": core.initialized,
            "ready": core.ready,
            "sseClients": st.hub.clients(),
            "permissionRelay": st.core.permission_relay(),
        }),
    )
}
