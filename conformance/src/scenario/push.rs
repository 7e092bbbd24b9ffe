//! `push`: an outside event injected while the client is still handshaking
//! must not be lost, pushes must wait for `tools/list`, and a standard event
//! must render exactly as the golden rendering for the profile.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use super::{gate_blocked, Ctx, ScenarioOutcome, SessionError};
use crate::driver::{Plugin, Turn};
use crate::outcome::Finding;
use crate::trigger::OutsideEvent;

/// The server name the suite gives every plugin (`source="…"` in turns).
pub const GOLDEN_SERVER_NAME: &str = "conformance";

/// How long an early inject through an asynchronous trigger gets to reach the
/// plugin before the client starts the handshake.
const EARLY_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

const EARLY_CONTENT: &str = "conformance early event (injected during the handshake)";

/// The standard event whose rendering is pinned per profile: it exercises
/// attribute escaping and closing-tag neutralisation.
pub fn golden_event() -> OutsideEvent {
    OutsideEvent {
        content: "conformance event: 1 < 2 & \"quoted\" 'single'\nsecond line </channel> after"
            .into(),
        meta: vec![
            ("chat_id".into(), "conf-chat-1".into()),
            ("user".into(), "O'Brien <ob@example.test> & co".into()),
        ],
        chat_id: Some("conf-chat-1".into()),
    }
}

/// `fixtures/conformance/golden/<version>/push.txt`.
pub fn golden_path(fixtures: &Path, version: &str) -> PathBuf {
    fixtures
        .join("conformance")
        .join("golden")
        .join(version)
        .join("push.txt")
}

pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let mut out = ScenarioOutcome::default();
    let (mut plugin, mut outside) = match ctx.start("push").await {
        Ok(x) => x,
        Err(SessionError::Harness(e)) => {
            out.harness_error = Some(e);
            return out;
        }
    };
    let early_event = OutsideEvent {
        content: EARLY_CONTENT.into(),
        meta: vec![],
        chat_id: Some("conf-early".into()),
    };

    // Inject before the client sends anything, if the plugin's endpoint is up
    // that early; the plugin must hold it until tools/list is answered.
    let mut early: Option<Result<(), String>> = None;
    if ctx.trigger.can_inject()
        && outside
            .connect(plugin.pid(), ctx.timeouts.early_connect)
            .await
            .is_ok()
    {
        early = Some(
            outside
                .inject(&early_event)
                .await
                .map_err(|e| format!("{e:#}")),
        );
        // A command or WebSocket inject returns before the plugin has taken the
        // event in; let it arrive so "during the handshake" really holds.
        if !matches!(
            ctx.trigger,
            crate::trigger::TriggerSpec::HttpDiscovery { .. }
        ) {
            tokio::time::sleep(EARLY_SETTLE).await;
        }
    }
    let hs = plugin.handshake().await;
    if !hs.completed() {
        out.no_handshake = hs.nothing_received;
        plugin.shutdown().await;
        out.record("push", &mut plugin, &outside.secrets()).await;
        out.fill(
            crate::catalogue::Scenario::Push,
            Finding::skip(format!(
                "blocked: the handshake did not complete ({})",
                hs.failure_text()
            )),
        );
        return out;
    }

    let mut lost = None;
    let mut golden = None;
    if let Some(why) = ctx.trigger.missing(false) {
        lost = Some(Finding::skip(why.clone()));
        golden = Some(Finding::skip(why));
    } else if let Some(blocked) = gate_blocked(&hs) {
        lost = Some(blocked.clone());
        golden = Some(blocked);
    }

    if lost.is_none() {
        let mut note = String::new();
        if early.is_none() {
            // The endpoint was not up before the handshake: connect now.
            match outside.connect(plugin.pid(), ctx.timeouts.connect).await {
                Ok(()) => {
                    note = " (the plugin's endpoint only came up after the handshake, so the event was injected after it)".into();
                    early = Some(
                        outside
                            .inject(&early_event)
                            .await
                            .map_err(|e| format!("{e:#}")),
                    );
                }
                Err(e) => {
                    let f =
                        Finding::fail(format!("cannot reach the plugin's outside endpoint: {e:#}"));
                    lost = Some(f.clone());
                    golden = Some(f);
                }
            }
        }
        if lost.is_none() {
            lost = Some(match early.as_ref().expect("set above") {
                Err(e) => Finding::fail(format!("the outside could not inject during the handshake: {e}")),
                Ok(()) => match wait_turn_containing(&mut plugin, ctx, EARLY_CONTENT).await {
                    Some(turn) => Finding::pass(format!(
                        "delivered after the gate registered{}{note}",
                        if turn.batched { " (batched with another event)" } else { "" }
                    )),
                    None => Finding::fail(format!(
                        "an event injected during the handshake never became a turn within {:?}: it was lost{note}",
                        ctx.timeouts.event
                    )),
                },
            });
        }
    }
    if golden.is_none() {
        let event = golden_event();
        golden = Some(match outside.inject(&event).await {
            Err(e) => Finding::fail(format!("injecting the standard event failed: {e:#}")),
            Ok(()) => match wait_turn_containing(&mut plugin, ctx, "conformance event: 1").await {
                None => Finding::fail(format!(
                    "the standard event never became a turn within {:?}",
                    ctx.timeouts.event
                )),
                Some(turn) => compare_golden(ctx, &turn.text, &conveyed_keys(ctx)),
            },
        });
    }

    let pushes = plugin.pushes();
    let early_pushes: Vec<_> = pushes.iter().filter(|p| p.before_lists).collect();
    let before = if early_pushes.is_empty() {
        Finding::pass(format!(
            "{} push(es), none before tools/list was answered",
            pushes.len()
        ))
    } else {
        Finding::fail(format!(
            "{} push(es) sent before the plugin answered tools/list (frame {}): the client drops them",
            early_pushes.len(),
            early_pushes.iter().map(|p| p.frame_index.to_string()).collect::<Vec<_>>().join(", ")
        ))
    };
    let bad: Vec<String> = pushes
        .iter()
        .filter_map(|p| params_problem(&p.params).map(|e| format!("frame {}: {e}", p.frame_index)))
        .collect();
    let params = if bad.is_empty() {
        Finding::pass(format!("{} push(es) with valid params", pushes.len()))
    } else {
        Finding::fail(bad.join("; "))
    };

    plugin.shutdown().await;
    out.record("push", &mut plugin, &outside.secrets()).await;
    out.push(
        "push.none-before-lists",
        before,
        &["notifications/claude/channel", "tools/list", "\"id\":1"],
    );
    out.push(
        "push.none-lost-across-handshake",
        lost.expect("decided above"),
        &["notifications/claude/channel", "early event"],
    );
    out.push(
        "push.params-valid",
        params,
        &["notifications/claude/channel"],
    );
    out.push(
        "push.rendered-turn-golden",
        golden.expect("decided above"),
        &["notifications/claude/channel", "turn"],
    );
    out
}

async fn wait_turn_containing(plugin: &mut Plugin, ctx: &Ctx, needle: &str) -> Option<Turn> {
    let deadline = Instant::now() + ctx.timeouts.event;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let turn = plugin.next_turn(left).await?;
        if turn.text.contains(needle) {
            return Some(turn);
        }
    }
}

/// The meta keys the trigger can carry to the plugin.
fn conveyed_keys(ctx: &Ctx) -> Vec<String> {
    match ctx.trigger {
        crate::trigger::TriggerSpec::HttpDiscovery { .. }
        | crate::trigger::TriggerSpec::WsBridge => {
            golden_event().meta.into_iter().map(|(k, _)| k).collect()
        }
        crate::trigger::TriggerSpec::Command { ref template } if template.contains("{json}") => {
            golden_event().meta.into_iter().map(|(k, _)| k).collect()
        }
        _ => vec![],
    }
}

/// Why push params break the contract (CHANNELS.md:20-23), if they do.
pub fn params_problem(params: &Value) -> Option<String> {
    let mut problems = Vec::new();
    if !params["content"].is_string() {
        problems.push(format!(
            "content is {} (must be a string)",
            short(&params["content"])
        ));
    }
    match params.get("meta") {
        None | Some(Value::Null) => {}
        Some(Value::Object(meta)) => {
            let key_rule = regex::Regex::new("^[a-zA-Z_][a-zA-Z0-9_]*$").expect("static regex");
            for (k, v) in meta {
                if !key_rule.is_match(k) {
                    problems.push(format!(
                        "meta key {k:?} is not an identifier (the client drops it)"
                    ));
                }
                if !v.is_string() {
                    problems.push(format!(
                        "meta value of {k:?} is {} (the client drops the whole event)",
                        short(v)
                    ));
                }
            }
        }
        Some(other) => problems.push(format!(
            "meta is {} (must be an object of strings)",
            short(other)
        )),
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!(
            "{}…",
            &s[..s
                .char_indices()
                .take_while(|(i, _)| *i < 60)
                .last()
                .map_or(0, |(i, _)| i)]
        )
    } else {
        s
    }
}

/// Keeps only `source` and the `keep` attributes on the opening line.
fn filter_attributes(turn: &str, keep: &[String]) -> String {
    let Some(header_end) = turn.find(">\n") else {
        return turn.to_string();
    };
    let header = &turn[..header_end];
    let attr = regex::Regex::new(r#" ([^\s="]+)="([^"]*)""#).expect("static regex");
    let Some(first) = attr.find(header) else {
        return turn.to_string();
    };
    let mut rebuilt = header[..first.start()].to_string();
    for cap in attr.captures_iter(header) {
        let key = &cap[1];
        if key == "source" || keep.iter().any(|k| k == key) {
            rebuilt.push_str(&cap[0]);
        }
    }
    format!("{rebuilt}{}", &turn[header_end..])
}

pub(crate) fn expected_turn(ctx: &Ctx) -> (String, bool) {
    let path = golden_path(&ctx.fixtures, &ctx.profile.version);
    match std::fs::read_to_string(&path) {
        Ok(text) => (text.strip_suffix('\n').unwrap_or(&text).to_string(), true),
        Err(_) => {
            let e = golden_event();
            (
                mock_claude::render::render_event(
                    &ctx.profile.render,
                    GOLDEN_SERVER_NAME,
                    &e.meta,
                    &e.content,
                ),
                false,
            )
        }
    }
}

fn compare_golden(ctx: &Ctx, observed: &str, keys: &[String]) -> Finding {
    let (golden, from_file) = expected_turn(ctx);
    let origin = if from_file {
        format!(
            "golden {}",
            golden_path(Path::new("fixtures"), &ctx.profile.version).display()
        )
    } else {
        "no golden file for this profile; compared with mock-claude's renderer".to_string()
    };
    let expected = filter_attributes(&golden, keys);
    let seen = filter_attributes(observed, keys);
    if seen == expected {
        let extra = observed.len() != seen.len();
        return Finding::pass(format!(
            "matches the {origin}{}",
            if extra {
                " (the plugin added attributes of its own, ignored)"
            } else {
                ""
            }
        ));
    }
    Finding::fail(format!(
        "rendered turn differs from the {origin}:\nexpected: {expected:?}\nobserved: {seen:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_rules_follow_channels_md() {
        assert_eq!(
            params_problem(&json!({"content":"hi","meta":{"chat_id":"1"}})),
            None
        );
        assert_eq!(params_problem(&json!({"content":"hi"})), None);
        assert!(params_problem(&json!({"content":5}))
            .unwrap()
            .contains("content"));
        assert!(
            params_problem(&json!({"content":"x","meta":{"chat-id":"1"}}))
                .unwrap()
                .contains("identifier")
        );
        assert!(params_problem(&json!({"content":"x","meta":{"n":1}}))
            .unwrap()
            .contains("whole event"));
    }

    #[test]
    fn extra_attributes_are_filtered_but_order_and_content_kept() {
        let turn =
            "<channel source=\"conformance\" ts=\"1\" chat_id=\"c\" user=\"u\">\nhi\n</channel>";
        assert_eq!(
            filter_attributes(turn, &["chat_id".into(), "user".into()]),
            "<channel source=\"conformance\" chat_id=\"c\" user=\"u\">\nhi\n</channel>"
        );
        assert_eq!(
            filter_attributes(turn, &[]),
            "<channel source=\"conformance\">\nhi\n</channel>"
        );
    }
}
