//! JSON-RPC 2.0 message shapes as MCP uses them, and the error codes we send.

use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// A classified incoming message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A response to a request. We never send requests, so these are logged
    /// and ignored.
    Response { id: Value },
}

/// Why a JSON value is not a JSON-RPC message; answered with -32600.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRequest {
    /// The request id if one could be recovered, else `null`.
    pub id: Value,
    pub reason: String,
}

/// Classify a parsed JSON value.
pub fn classify(value: Value) -> Result<Incoming, InvalidRequest> {
    let Value::Object(mut obj) = value else {
        let reason = match value {
            Value::Array(_) => "JSON-RPC batches are not supported; send one message per line",
            _ => "a JSON-RPC message must be a JSON object",
        };
        return Err(InvalidRequest {
            id: Value::Null,
            reason: reason.into(),
        });
    };
    let id = obj.remove("id");
    let usable_id = match &id {
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
        _ => None,
    };
    let invalid = |reason: &str| InvalidRequest {
        id: usable_id.clone().unwrap_or(Value::Null),
        reason: reason.to_string(),
    };
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(
            "missing or wrong \"jsonrpc\" member (must be \"2.0\")",
        ));
    }
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(invalid("\"method\" must be a string"));
        };
        let params = obj.remove("params");
        if let Some(p) = &params {
            if !(p.is_object() || p.is_array()) {
                return Err(invalid("\"params\" must be an object or an array"));
            }
        }
        return match id {
            None => Ok(Incoming::Notification { method, params }),
            Some(_) => match usable_id {
                Some(id) => Ok(Incoming::Request { id, method, params }),
                None => Err(invalid("\"id\" must be a string or a number")),
            },
        };
    }
    if obj.contains_key("result") || obj.contains_key("error") {
        if let Some(id) = id {
            return Ok(Incoming::Response { id });
        }
    }
    Err(invalid(
        "neither a request, a notification nor a response (no \"method\")",
    ))
}

pub fn result_frame(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

pub fn error_frame(id: &Value, code: i64, message: impl Into<String>) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message.into() } })
}

pub fn notification_frame(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let req = classify(json!({"jsonrpc":"2.0","id":0,"method":"ping"})).unwrap();
        assert_eq!(
            req,
            Incoming::Request {
                id: json!(0),
                method: "ping".into(),
                params: None
            }
        );
        let note = classify(json!({"jsonrpc":"2.0","method":"x","params":{}})).unwrap();
        assert_eq!(
            note,
            Incoming::Notification {
                method: "x".into(),
                params: Some(json!({}))
            }
        );
        let resp = classify(json!({"jsonrpc":"2.0","id":"a","result":{}})).unwrap();
        assert_eq!(resp, Incoming::Response { id: json!("a") });
    }

    #[test]
    fn rejects_non_messages_keeping_the_id_when_usable() {
        assert_eq!(classify(json!([1])).unwrap_err().id, Value::Null);
        assert_eq!(classify(json!(3)).unwrap_err().id, Value::Null);
        let e = classify(json!({"jsonrpc":"2.0","id":7,"method":5})).unwrap_err();
        assert_eq!(e.id, json!(7));
        let e = classify(json!({"jsonrpc":"1.0","id":"x","method":"ping"})).unwrap_err();
        assert_eq!(e.id, json!("x"));
        assert!(classify(json!({"jsonrpc":"2.0","id":null,"method":"ping"})).is_err());
        assert!(classify(json!({"jsonrpc":"2.0","id":1,"method":"m","params":3})).is_err());
        assert!(classify(json!({"jsonrpc":"2.0","id":1})).is_err());
    }
}
