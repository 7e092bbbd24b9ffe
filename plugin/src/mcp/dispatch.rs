//! Handling of one incoming line: parse, classify, answer.
//!
//! Rules: bad input is answered (-32700 / -32600 with id null) and logged,
//! never fatal; every request gets exactly one response; unknown
//! notifications are ignored with a debug log.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::core::{
    Shared, FALLBACK_PROTOCOL_VERSION, PERMISSION_REQUEST_METHOD, SUPPORTED_PROTOCOL_VERSIONS,
};
use super::fast_path;
use super::instructions::instructions;
use super::jsonrpc::{self, classify, error_frame, result_frame, Incoming};
use super::tools::{parse_reply_args, reply_tool_definition, ToolText, REPLY_TOOL};
use crate::bridge::{PermissionRequest, Reply, ReplyDelivery};

impl Shared {
    pub(crate) fn handle_line(self: &Arc<Self>, line: Vec<u8>) {
        if line.iter().all(u8::is_ascii_whitespace) {
            tracing::debug!("blank input line ignored");
            return;
        }
        let text = match String::from_utf8(line) {
            Ok(text) => text,
            Err(err) => {
                let at = err.utf8_error().valid_up_to();
                tracing::warn!(at, "incoming line is not valid UTF-8; answered -32700");
                self.send(
                    error_frame(
                        &Value::Null,
                        jsonrpc::PARSE_ERROR,
                        format!("Parse error: invalid UTF-8 at byte {at}"),
                    ),
                    None,
                );
                return;
            }
        };
        if let Some(call) = fast_path::reply_call(&text) {
            tracing::debug!(id = %call.id, method = "tools/call", "request");
            let answer = self.deliver_reply(&call.id, call.reply);
            self.send_tool_text(answer);
            return;
        }
        let value: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!("incoming line is not JSON ({err}); answered -32700");
                self.send(
                    error_frame(
                        &Value::Null,
                        jsonrpc::PARSE_ERROR,
                        format!("Parse error: {err}"),
                    ),
                    None,
                );
                return;
            }
        };
        match classify(value) {
            Ok(Incoming::Request { id, method, params }) => {
                self.handle_request(id, &method, params)
            }
            Ok(Incoming::Notification { method, params }) => {
                self.handle_notification(&method, params)
            }
            Ok(Incoming::Response { id }) => {
                tracing::warn!(%id, "ignoring a response: this server sends no requests");
            }
            Err(invalid) => {
                tracing::warn!(id = %invalid.id, "invalid JSON-RPC message: {}", invalid.reason);
                self.send(
                    error_frame(
                        &invalid.id,
                        jsonrpc::INVALID_REQUEST,
                        format!("Invalid Request: {}", invalid.reason),
                    ),
                    None,
                );
            }
        }
    }

    fn handle_request(self: &Arc<Self>, id: Value, method: &str, params: Option<Value>) {
        tracing::debug!(%id, method, "request");
        match method {
            "initialize" => {
                let result = self.initialize(params.as_ref());
                self.send(result_frame(&id, result), None);
            }
            "ping" => self.send(result_frame(&id, json!({})), None),
            "tools/list" => {
                let (ack, written) = oneshot::channel();
                self.send(
                    result_frame(&id, json!({ "tools": [reply_tool_definition()] })),
                    Some(ack),
                );
                let shared = self.clone();
                tokio::spawn(async move {
                    if written.await.is_ok() {
                        shared.on_tools_listed();
                    }
                });
            }
            "tools/call" => {
                let frame = self.call_tool(&id, params.as_ref());
                self.send(frame, None);
            }
            _ => {
                let message = match method {
                    "server/discover" => "Method not found: server/discover (this channel server \
                        uses the initialize lifecycle; channel notifications need it)"
                        .to_string(),
                    _ => format!("Method not found: {method}"),
                };
                tracing::info!(%id, method, "unsupported method; answered -32601");
                self.send(error_frame(&id, jsonrpc::METHOD_NOT_FOUND, message), None);
            }
        }
    }

    fn initialize(&self, params: Option<&Value>) -> Value {
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        let version = match requested {
            Some(v) if SUPPORTED_PROTOCOL_VERSIONS.contains(&v) => v,
            _ => FALLBACK_PROTOCOL_VERSION,
        };
        let client = params.and_then(|p| p.get("clientInfo")).map(|info| {
            format!(
                "{} {}",
                info.get("name").and_then(Value::as_str).unwrap_or("?"),
                info.get("version").and_then(Value::as_str).unwrap_or("?")
            )
        });
        tracing::info!(
            client = client.as_deref().unwrap_or("unknown"),
            requested = requested.unwrap_or("none"),
            answered = version,
            "initialize"
        );
        self.lock().client = client;
        let mut experimental = json!({ "claude/channel": {} });
        if self.config.permission_relay {
            experimental["claude/channel/permission"] = json!({});
        }
        json!({
            "protocolVersion": version,
            "capabilities": { "tools": {}, "experimental": experimental },
            "serverInfo": {
                "name": env!("CARGO_PKG_NAME"),
                "version": env!("CARGO_PKG_VERSION"),
            },
            "instructions": instructions(&self.config.server_name, self.config.permission_relay),
        })
    }

    fn call_tool(&self, id: &Value, params: Option<&Value>) -> Value {
        let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
            tracing::warn!(%id, "tools/call without params.name; answered -32602");
            return error_frame(
                id,
                jsonrpc::INVALID_PARAMS,
                "tools/call needs params.name (a string)",
            );
        };
        if name != REPLY_TOOL {
            tracing::warn!(%id, tool = name, "tools/call for an unknown tool; answered -32602");
            return error_frame(
                id,
                jsonrpc::INVALID_PARAMS,
                format!("Unknown tool: {name:?} (this server has: {REPLY_TOOL})"),
            );
        }
        match parse_reply_args(params.and_then(|p| p.get("arguments"))) {
            Ok(reply) => self.deliver_reply(id, reply).to_frame(),
            Err(message) => {
                tracing::warn!(%id, "reply refused: {message}");
                ToolText {
                    id: id.clone(),
                    text: message,
                    is_error: true,
                }
                .to_frame()
            }
        }
    }

    /// Hand a valid reply to the bridge; the tool result says what happened.
    fn deliver_reply(&self, id: &Value, reply: Reply) -> ToolText {
        let answer = |text: String, is_error: bool| ToolText {
            id: id.clone(),
            text,
            is_error,
        };
        let bridge = self.lock().bridge.clone();
        let Some(bridge) = bridge else {
            tracing::error!("reply called before a bridge was attached");
            return answer("reply not delivered: no bridge is attached".into(), true);
        };
        match bridge.reply(reply) {
            Ok(ReplyDelivery::Sent { detail }) | Ok(ReplyDelivery::Queued { detail }) => {
                answer(detail, false)
            }
            Err(err) => {
                tracing::warn!(%id, "reply not delivered: {err}");
                answer(format!("reply not delivered: {err}"), true)
            }
        }
    }

    fn handle_notification(self: &Arc<Self>, method: &str, params: Option<Value>) {
        match method {
            "notifications/initialized" => self.on_initialized(),
            "notifications/cancelled" => {
                // Requests are answered synchronously, so there is never one in
                // flight to cancel.
                tracing::debug!(?params, "cancellation received; nothing in flight");
            }
            PERMISSION_REQUEST_METHOD => self.on_permission_request(params),
            _ => tracing::debug!(method, "unknown notification ignored"),
        }
    }

    fn on_permission_request(&self, params: Option<Value>) {
        let request: PermissionRequest = match params.map(serde_json::from_value) {
            Some(Ok(request)) => request,
            Some(Err(err)) => {
                tracing::warn!("malformed permission_request ignored: {err}");
                return;
            }
            None => {
                tracing::warn!("permission_request without params ignored");
                return;
            }
        };
        let bridge = {
            let mut state = self.lock();
            state.permissions.on_request(request.clone());
            state.bridge.clone()
        };
        if !self.config.permission_relay {
            tracing::debug!(request_id = %request.request_id, "permission request not forwarded: relay is off");
            return;
        }
        tracing::info!(request_id = %request.request_id, tool = %request.tool_name, "permission request");
        if let Some(bridge) = bridge {
            bridge.permission_request(&request);
        }
    }
}
