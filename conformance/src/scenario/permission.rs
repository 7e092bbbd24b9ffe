//! `permission`: the relay. A plugin that declares
//! `claude/channel/permission` must carry the request to the outside and
//! bring the verdict back; one that has no relay must not declare it.

use super::{gate_blocked, start_and_handshake, Ctx, ScenarioOutcome};
use crate::catalogue::Scenario;
use crate::outcome::Finding;

const CAPABILITY: &str = "claude/channel/permission";

pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let mut out = ScenarioOutcome::default();
    if ctx.profile.permission.is_none() {
        out.fill(
            Scenario::Permission,
            Finding::skip(format!(
                "Claude Code {} has no permission relay (added in 2.1.81)",
                ctx.profile.version
            )),
        );
        return out;
    }
    let Some((mut plugin, mut outside, hs)) =
        start_and_handshake(ctx, Scenario::Permission, &mut out).await
    else {
        return out;
    };
    let declared = mock_claude::gate::declares_experimental(&hs.capabilities, CAPABILITY);
    let (capability, round_trip) = 'check: {
        if !declared {
            break 'check (
                Finding::pass("not declared: permission prompts stay in the local dialog"),
                Finding::skip(format!(
                    "the plugin does not declare {CAPABILITY} (relay off)"
                )),
            );
        }
        if let Some(why) = ctx.trigger.missing(true) {
            break 'check (
                Finding::warn(format!(
                    "declared, but the suite cannot see whether requests reach the outside: {why}"
                )),
                Finding::skip(why),
            );
        }
        if let Some(blocked) = gate_blocked(&hs) {
            break 'check (blocked.clone(), blocked);
        }
        if let Err(e) = outside.connect(plugin.pid(), ctx.timeouts.connect).await {
            let f = Finding::fail(format!("cannot reach the plugin's outside endpoint: {e:#}"));
            break 'check (f.clone(), f);
        }
        let id = match plugin
            .send_permission_request(
                "Bash",
                "conformance: run a harmless command",
                r#"{"command":"true"}"#,
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let f = Finding::skip(format!(
                    "the mock client could not send a permission request: {e}"
                ));
                break 'check (f.clone(), f);
            }
        };
        let Some(request) = outside.next_permission_request(ctx.timeouts.event).await else {
            let f = Finding::fail(format!(
                "declared {CAPABILITY}, but request {id} never reached the outside within {:?}: only declare it with a working relay",
                ctx.timeouts.event
            ));
            break 'check (f.clone(), f);
        };
        if !request.request_id.eq_ignore_ascii_case(&id) {
            let f = Finding::fail(format!(
                "the outside got request id {:?}, expected {id:?}",
                request.request_id
            ));
            break 'check (f.clone(), f);
        }
        let capability = Finding::pass(format!("declared, and request {id} reached the outside"));
        if let Err(e) = outside.send_verdict(&request.request_id, "deny").await {
            break 'check (
                capability,
                Finding::fail(format!("the outside could not answer: {e:#}")),
            );
        }
        match plugin.wait_verdict(&id, ctx.timeouts.event).await {
            Some(b) if b == "deny" => (
                capability,
                Finding::pass(format!("verdict deny for {id} came back")),
            ),
            Some(b) => (
                capability,
                Finding::fail(format!("the outside answered deny, the client got {b:?}")),
            ),
            None => (
                capability,
                Finding::fail(format!(
                    "no verdict for {id} reached the client within {:?}",
                    ctx.timeouts.event
                )),
            ),
        }
    };
    plugin.shutdown().await;
    out.record("permission", &mut plugin, &outside.secrets())
        .await;
    out.push(
        "permission.capability-only-with-relay",
        capability,
        &["permission", "capabilities"],
    );
    out.push("permission.round-trip", round_trip, &["permission"]);
    out
}
