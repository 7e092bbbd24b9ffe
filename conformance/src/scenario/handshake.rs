//! `handshake`: what the client learns before any event flows.

use serde_json::Value;

use super::{Ctx, ScenarioOutcome, SessionError};
use crate::catalogue::Scenario;
use crate::driver::{Discover, Handshake};
use crate::outcome::Finding;

/// The cap both the 2.1.84 notes and CHANNELS.md §1 tell plugins to stay under.
pub const CAP_BYTES: usize = 2048;

pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let mut out = ScenarioOutcome::default();
    let (mut plugin, outside) = match ctx.start("handshake").await {
        Ok(x) => x,
        Err(SessionError::Harness(e)) => {
            out.harness_error = Some(e);
            return out;
        }
    };
    let hs = plugin.handshake().await;
    plugin.shutdown().await;
    out.record("handshake", &mut plugin, &outside.secrets())
        .await;
    out.no_handshake = !hs.completed() && hs.nothing_received;
    evaluate(ctx, &hs, &mut out);
    out
}

fn evaluate(ctx: &Ctx, hs: &Handshake, out: &mut ScenarioOutcome) {
    out.push(
        "handshake.discover-method-not-found",
        discover(ctx, &hs.discover),
        &["server/discover", "server-discover-probe"],
    );

    let stray = plugin_wrote_junk(out);
    let version = match (&hs.negotiated, &hs.failure) {
        (Some(v), None) => Finding::pass(format!("negotiated {v}")),
        (_, Some(f)) if stray => Finding::skip(format!(
            "blocked: non-protocol bytes on stdout broke the connection ({f}); see session.stdout-clean"
        )),
        (Some(v), Some(f)) if !ctx.profile.accepts_protocol_version(v) => {
            Finding::fail(format!("answered protocolVersion {v:?}; the client fails the connection: {f}"))
        }
        (Some(v), Some(f)) => Finding::fail(format!("negotiated {v} but the connection failed: {f}")),
        (None, Some(f)) => Finding::fail(format!("no protocol version negotiated: {f}")),
        (None, None) => Finding::fail("the server never stated a protocolVersion"),
    };
    out.push(
        "handshake.protocol-version-accepted",
        version,
        &["initialize", "protocolVersion"],
    );

    if hs.failure.is_some() {
        // Nothing below can be judged on a failed connection.
        let why = format!(
            "blocked: the handshake did not complete ({})",
            hs.failure_text()
        );
        out.fill(Scenario::Handshake, Finding::skip(why));
        return;
    }

    let era = if hs.modern {
        Finding::fail(format!(
            "the connection is in the modern era ({}): Claude Code skips channel notifications",
            hs.negotiated.as_deref().unwrap_or("?")
        ))
    } else {
        Finding::pass(format!(
            "legacy era ({})",
            hs.negotiated.as_deref().unwrap_or("?")
        ))
    };
    out.push(
        "handshake.legacy-era",
        era,
        &["protocolVersion", "server/discover"],
    );

    out.push(
        "handshake.capability-experimental",
        capability(&hs.capabilities),
        &["capabilities"],
    );

    let instructions = match &hs.instructions {
        None => Finding::warn("no instructions: the model is not told what events look like or which tool answers them"),
        Some(text) if text.len() > CAP_BYTES => Finding::fail(format!(
            "instructions are {} bytes, over the {CAP_BYTES}-byte cap (Claude Code truncates them)",
            text.len()
        )),
        Some(text) => Finding::pass(format!("{} bytes", text.len())),
    };
    out.push(
        "handshake.instructions-size",
        instructions,
        &["instructions"],
    );

    let long: Vec<String> = hs
        .tools
        .iter()
        .filter_map(|t| {
            let d = t["description"].as_str().unwrap_or_default();
            (d.len() > CAP_BYTES).then(|| format!("{} ({} bytes)", t["name"], d.len()))
        })
        .collect();
    let descriptions = if hs.tools.is_empty() {
        Finding::pass("no tools listed")
    } else if long.is_empty() {
        Finding::pass(format!(
            "{} tool description(s) within {CAP_BYTES} bytes",
            hs.tools.len()
        ))
    } else {
        Finding::fail(format!(
            "over the {CAP_BYTES}-byte cap: {}",
            long.join(", ")
        ))
    };
    out.push(
        "handshake.tool-descriptions-size",
        descriptions,
        &["tools/list", "\"tools\""],
    );

    let bad: Vec<String> = hs
        .tools
        .iter()
        .filter_map(|t| schema_problem(&t["inputSchema"]).map(|p| format!("{}: {p}", t["name"])))
        .collect();
    let schemas = if bad.is_empty() {
        Finding::pass(format!("{} input schema(s) valid", hs.tools.len()))
    } else {
        Finding::fail(bad.join("; "))
    };
    out.push("handshake.tool-schemas-valid", schemas, &["\"tools\""]);

    let reply = match hs.tool("reply") {
        Some(_) => Finding::pass("reply tool listed"),
        None => Finding::fail(format!(
            "no tool named reply (listed: {})",
            hs.tools
                .iter()
                .map(|t| t["name"].to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    out.push("handshake.reply-tool", reply, &["\"tools\""]);

    let gate = if hs.gate.registered {
        Finding::pass(hs.gate.log_line.clone())
    } else {
        Finding::fail(hs.gate.log_line.clone())
    };
    out.push(
        "handshake.gate-registered",
        gate,
        &["capabilities", "protocolVersion"],
    );
}

/// Whether the session's transcript holds non-protocol stdout lines.
fn plugin_wrote_junk(out: &ScenarioOutcome) -> bool {
    out.summaries
        .iter()
        .any(|(_, s)| !s.stray_stdout.is_empty())
}

fn discover(ctx: &Ctx, d: &Discover) -> Finding {
    match d {
        Discover::NotSent => Finding::skip(format!(
            "Claude Code {} does not send server/discover (on by default from 2.1.292)",
            ctx.profile.version
        )),
        Discover::Error { code: -32601, .. } => Finding::pass("answered -32601: immediate fallback to the legacy handshake"),
        Discover::Error { code, message } => Finding::warn(format!(
            "answered error {code} ({message}): the client falls back, but a channel server should answer -32601 (method not found)"
        )),
        Discover::Result(_) => Finding::fail(
            "answered server/discover with a result: the client switches to the modern lifecycle, where channel notifications are skipped",
        ),
        Discover::Unanswered { waited } => Finding::fail(format!(
            "server/discover unanswered: the client waited {} ms before falling back (a cost on every start until the 7-day memory kicks in); answer -32601",
            waited.as_millis()
        )),
    }
}

fn capability(caps: &Value) -> Finding {
    match caps.get("experimental").and_then(|e| e.get("claude/channel")) {
        Some(Value::Object(_)) => Finding::pass("capabilities.experimental[\"claude/channel\"] = {}"),
        Some(other) => Finding::fail(format!(
            "capabilities.experimental[\"claude/channel\"] is {other}, not an object: it fails the client's initialize schema check"
        )),
        None if caps.get("claude/channel").is_some() => Finding::fail(
            "declared at the top level of capabilities: Claude Code ignores it (\"server did not declare claude/channel capability\"); move it under capabilities.experimental",
        ),
        None => Finding::fail("claude/channel is not declared: the gate skips the server (\"server did not declare claude/channel capability\")"),
    }
}

/// Why a tool's inputSchema is unusable, if it is.
pub fn schema_problem(schema: &Value) -> Option<String> {
    let Value::Object(obj) = schema else {
        return Some(format!(
            "inputSchema is {}, not an object",
            type_name(schema)
        ));
    };
    if obj.get("type") != Some(&Value::String("object".into())) {
        return Some(format!(
            "inputSchema.type is {}, MCP requires \"object\"",
            obj.get("type").unwrap_or(&Value::Null)
        ));
    }
    match jsonschema::meta::validate(schema) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "not a valid JSON Schema: {e} at {}",
            e.instance_path
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "missing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_problems_are_named() {
        assert_eq!(
            schema_problem(&json!({"type":"object","properties":{"text":{"type":"string"}}})),
            None
        );
        assert!(schema_problem(&Value::Null).unwrap().contains("missing"));
        assert!(schema_problem(&json!({"type":"string"}))
            .unwrap()
            .contains("\"object\""));
        assert!(
            schema_problem(&json!({"type":"object","properties":{"a":{"type":"strung"}}}))
                .is_some()
        );
    }

    #[test]
    fn top_level_capability_is_a_named_failure() {
        let f = capability(&json!({"claude/channel":{}}));
        assert!(
            matches!(&f, Finding::Fail(s) if s.contains("top level")),
            "{f:?}"
        );
        assert!(matches!(
            capability(&json!({"experimental":{"claude/channel":true}})),
            Finding::Fail(_)
        ));
        assert!(matches!(
            capability(&json!({"experimental":{"claude/channel":{}}})),
            Finding::Pass(_)
        ));
    }
}
