//! `robustness`: malformed lines on stdin must get an error (or be ignored),
//! never kill the plugin.

use std::time::Duration;

use super::{start_and_handshake, Ctx, ScenarioOutcome};
use crate::catalogue::Scenario;
use crate::outcome::Finding;

/// Lines a confused or hostile peer could write, one per kind of breakage.
pub const MALFORMED: &[&[u8]] = &[
    b"this is not json",
    b"{\"jsonrpc\":\"2.0\",\"id\":\"conformance-bad-1\"",
    b"[]",
    b"{\"jsonrpc\":\"2.0\",\"id\":\"conformance-bad-2\",\"method\":\"conformance/no-such-method\"}",
    b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/claude/channel/permission\",\"params\":{\"request_id\":12}}",
    b"{\"jsonrpc\":\"2.0\",\"id\":\"conformance-bad-3\",\"method\":\"tools/call\",\"params\":\"reply\"}",
    b"{\"jsonrpc\":\"1.0\",\"id\":null,\"result\":{}}",
];

pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let mut out = ScenarioOutcome::default();
    let Some((mut plugin, outside, _hs)) =
        start_and_handshake(ctx, Scenario::Robustness, &mut out).await
    else {
        return out;
    };
    let mut finding = None;
    for line in MALFORMED {
        if let Err(e) = plugin.send_raw_line(line).await {
            finding = Some(Finding::fail(format!(
                "the plugin stopped reading after {:?}: {e}",
                String::from_utf8_lossy(line)
            )));
            break;
        }
    }
    let finding = match finding {
        Some(f) => f,
        None => {
            // Give a crash time to happen before asking.
            tokio::time::sleep(Duration::from_millis(200)).await;
            match plugin.ping(ctx.timeouts.event).await {
                Ok(()) if plugin.is_alive() => Finding::pass(format!(
                    "{} malformed lines later the plugin still answers ping",
                    MALFORMED.len()
                )),
                Ok(()) => Finding::fail("the plugin answered ping but then exited"),
                Err(e) if !plugin.is_alive() => {
                    Finding::fail(format!("the plugin died on malformed input: {e}"))
                }
                Err(e) => Finding::fail(format!("the plugin is alive but no longer answers: {e}")),
            }
        }
    };
    plugin.shutdown().await;
    out.record("robustness", &mut plugin, &outside.secrets())
        .await;
    out.push(
        "robustness.malformed-line-survives",
        finding,
        &["raw", "ping", "stderr"],
    );
    out
}
