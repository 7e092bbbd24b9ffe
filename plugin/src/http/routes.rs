//! The loopback HTTP API: `/inject`, `/sse` (`/events`), `/permission`,
//! `/status`. Every refusal is a JSON `{"error": "..."}` with a status code
//! that says which rule failed, and a log line.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use super::auth::{check_host, check_origin, check_secret, Secret};
use super::body::{self, InjectBody, InjectBodyError};
use super::sse::Hub;
use crate::bridge::{Behavior, ChannelEvent, PushError, VerdictError};
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

type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    let authed = Router::new()
        .route("/inject", post(inject))
        .route("/sse", get(sse))
        .route("/events", get(sse))
        .route("/permission", post(permission))
        // One layer, not two: each `from_fn` layer costs a boxed future and a
        // clone of the inner service per request (~0.25 us on inject).
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_secret_then_size,
        ));
    Router::new()
        .route("/status", get(status))
        .merge(authed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_loopback_names,
        ))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn require_loopback_names(State(st): Shared, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Err(why) = check_host(headers, st.port).and_then(|()| check_origin(headers)) {
        tracing::warn!(path = %request.uri().path(), "403: {why}");
        return error(StatusCode::FORBIDDEN, why);
    }
    next.run(request).await
}

/// A body declared larger than the cap is refused from its headers: never
/// buffered. A client that asked `Expect: 100-continue`, or declared more than
/// [`DRAIN_LIMIT_BYTES`], is answered at once (and the connection closed).
/// Otherwise the body is read and discarded first, so a client that sends it
/// without waiting (curl, most libraries) gets the 413 instead of a broken
/// pipe from a socket closed under it.
async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(len) = declared.filter(|&len| len > MAX_BODY_BYTES as u64) else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    tracing::warn!(path, len, "413: declared body too large");
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
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut total = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(Ok(chunk)) = stream.next().await {
            total += chunk.len();
            if total > DRAIN_LIMIT_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Read a body of at most [`MAX_BODY_BYTES`]. Past the cap the rest is
/// drained (bounded), then 413; the excess is never buffered.
async fn read_capped(body: Body, route: &str) -> Result<Bytes, Response> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut total = 0usize;
    let read = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| err.to_string())?;
            total += chunk.len();
            if total <= MAX_BODY_BYTES {
                buf.extend_from_slice(&chunk);
            } else {
                buf = Vec::new();
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
        Ok(Ok(())) => Ok(Bytes::from(buf)),
    }
}

/// The authenticated routes' gate: the secret first (no body work for a
/// caller without it), then the declared body size.
async fn require_secret_then_size(State(st): Shared, request: Request, next: Next) -> Response {
    if let Err(why) = check_secret(request.headers(), &st.secret) {
        tracing::warn!(path = %request.uri().path(), "401: {why}");
        return error(StatusCode::UNAUTHORIZED, why);
    }
    refuse_declared_oversize(request, next).await
}

async fn not_found(request: Request) -> Response {
    tracing::info!(path = %request.uri().path(), "404: no such route");
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no route {}; try POST /inject, GET /sse, POST /permission, GET /status",
            request.uri().path()
        ),
    )
}

/// Read a JSON object body, mapping every failure to a clear refusal.
// The error is the response itself, returned straight to axum; boxing it
// would only add an allocation on the refusal path.
#[allow(clippy::result_large_err)]
async fn json_object(body: Body, route: &str) -> Result<Map<String, Value>, Response> {
    let bytes = read_capped(body, route).await?;
    body::json_object(&bytes).map_err(|message| bad_request(route, message))
}

fn bad_request(route: &str, message: String) -> Response {
    tracing::warn!(route, "400: {message}");
    error(StatusCode::BAD_REQUEST, message)
}

async fn inject(State(st): Shared, body: Body) -> Response {
    let bytes = match read_capped(body, "/inject").await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let InjectBody {
        content,
        chat_id,
        meta: caller_meta,
    } = match InjectBody::parse(&bytes) {
        Ok(body) => body,
        Err(InjectBodyError::Body(message)) => return bad_request("/inject", message),
        Err(InjectBodyError::Meta(err)) => {
            tracing::warn!(route = "/inject", "400: {err}");
            let keys = match &err {
                MetaError::InvalidEntries(_) => err.keys(),
                MetaError::NotAnObject { .. } => Vec::new(),
            };
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": err.to_string(), "keys": keys })),
            )
                .into_response();
        }
    };
    // chat_id first (Claude Code renders attributes in order); an explicit
    // top-level chat_id wins over meta.chat_id.
    let mut meta_chat_id = None;
    let mut rest = Vec::with_capacity(caller_meta.len());
    for (key, value) in caller_meta {
        if key == "chat_id" {
            meta_chat_id = Some(value);
        } else {
            rest.push((key, value));
        }
    }
    let chat_id = chat_id
        .or(meta_chat_id)
        .unwrap_or_else(|| DEFAULT_CHAT_ID.to_string());
    let mut event_meta = vec![("chat_id".to_string(), chat_id)];
    event_meta.extend(rest);
    match st.core.push(ChannelEvent {
        content,
        meta: event_meta,
    }) {
        Ok(id) => {
            // Per-event success is debug: an info line (a stderr write) per event
            // would sit on the hot path. Refusals stay at warn.
            tracing::debug!(id, "event injected");
            // Let the stdout writer (woken by the push) run before this
            // task writes the 202: the notification is what the caller waits
            // for, and on a one-thread runtime it would otherwise queue
            // behind the response's own write.
            tokio::task::yield_now().await;
            (StatusCode::ACCEPTED, Json(json!({ "id": id.to_string() }))).into_response()
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

async fn sse(State(st): Shared, headers: HeaderMap) -> Response {
    let last_event_id = match headers.get("last-event-id") {
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
    tracing::info!(?last_event_id, "SSE client connected");
    let stream = st.hub.subscribe(last_event_id, st.keepalive);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream))
        .expect("static response parts are valid")
}

async fn permission(State(st): Shared, body: Body) -> Response {
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
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({ "request_id": request_id, "behavior": behavior })),
        )
            .into_response(),
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

async fn status(State(st): Shared) -> Response {
    let core = st.core.status();
    Json(json!({
        "ok": true,
        "sessionId": st.session_id,
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "initialized": core.initialized,
        "ready": core.ready,
        "sseClients": st.hub.clients(),
        "permissionRelay": st.core.permission_relay(),
    }))
    .into_response()
}
