//! `shutdown`: Claude Code sends no message; it signals (SIGINT, SIGTERM
//! 100 ms later, SIGKILL 400 ms after that) and closes stdin. A plugin must
//! go on SIGINT, must go when stdin closes (the only reliable signal when
//! Claude Code itself dies), and must leave no process behind.

use std::time::Duration;

use super::{start_and_handshake, Ctx, ScenarioOutcome};
use crate::catalogue::Scenario;
use crate::outcome::Finding;

/// Floor for the stdin-EOF grace: busy CI machines add scheduler noise.
pub const MIN_EOF_GRACE: Duration = Duration::from_secs(1);

/// The profile's escalation window (sum of its shutdown waits), floored.
pub fn eof_grace(profile: &mock_claude::Profile) -> Duration {
    let total: u64 = profile.shutdown.steps.iter().map(|s| s.wait_ms).sum();
    Duration::from_millis(total).max(MIN_EOF_GRACE)
}

pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let mut out = ScenarioOutcome::default();
    let mut orphans = Vec::new();

    // Session 1: the client's own shutdown sequence. The verdict is a race
    // between the plugin and a 100 ms wall clock, and on a loaded 2-core CI
    // host the plugin may simply not be scheduled inside that window (seen:
    // a signal handled 55 ms late, a drain 174 ms long at load 9). So a miss
    // is measured once more in a fresh session: a plugin that ignores or
    // mishandles SIGINT misses both deterministically (the zoo's
    // `ignores-sigint` proves it), while scheduler noise rarely strikes
    // twice. A pass on the second attempt says so in the details.
    let sigint_wait: u64 = ctx
        .profile
        .shutdown
        .steps
        .first()
        .map(|s| s.wait_ms)
        .unwrap_or(100);
    let mut first_miss: Option<String> = None;
    let mut finding = None;
    for attempt in 1..=2 {
        let Some((mut plugin, outside, _)) =
            start_and_handshake(ctx, Scenario::Shutdown, &mut out).await
        else {
            return out;
        };
        let exit = plugin.shutdown().await;
        let verdict = match exit.via.as_deref() {
            Some("SIGINT") if exit.exited => Ok(format!(
                "exited {} ms after SIGINT",
                exit.elapsed.as_millis()
            )),
            Some(via) if exit.exited => Err(format!(
                "still running {sigint_wait} ms after SIGINT; it took {via} ({} ms in total)",
                exit.elapsed.as_millis()
            )),
            _ => Err(format!(
                "did not exit even after SIGKILL and stdin EOF ({:?})",
                exit.status
            )),
        };
        orphans.extend(
            plugin
                .orphans()
                .into_iter()
                .map(|o| format!("after SIGINT: {o}")),
        );
        let label = if attempt == 1 {
            "shutdown-sigint"
        } else {
            "shutdown-sigint-retry"
        };
        out.record(label, &mut plugin, &outside.secrets()).await;
        match (verdict, first_miss.take()) {
            (Ok(detail), None) => {
                finding = Some(Finding::pass(detail));
                break;
            }
            (Ok(detail), Some(miss)) => {
                finding = Some(Finding::pass(format!(
                    "{detail} on the second attempt (first attempt: {miss})"
                )));
                break;
            }
            (Err(miss), None) if attempt == 1 => {
                tracing::info!("shutdown.sigint missed once ({miss}); measuring again");
                first_miss = Some(miss);
            }
            (Err(miss), previous) => {
                let detail = match previous {
                    Some(first) => format!("{miss} (first attempt: {first})"),
                    None => miss,
                };
                finding = Some(Finding::fail(detail));
                break;
            }
        }
    }
    let finding = finding.expect("the loop always decides");
    out.push("shutdown.sigint", finding, &["SIGINT", "exit", "stderr"]);

    // Session 2: Claude Code vanished; only stdin closes.
    let grace = eof_grace(&ctx.profile);
    let mut eof_out = ScenarioOutcome::default();
    match start_and_handshake(ctx, Scenario::Shutdown, &mut eof_out).await {
        None => {
            out.push(
                "shutdown.stdin-eof",
                Finding::skip(
                    eof_out
                        .harness_error
                        .clone()
                        .unwrap_or_else(|| "blocked: the second session did not handshake".into()),
                ),
                &[],
            );
        }
        Some((mut plugin, outside, _)) => {
            let exit = plugin.close_stdin_and_wait(grace).await;
            let finding = if exit.exited {
                Finding::pass(format!(
                    "exited {} ms after stdin closed",
                    exit.elapsed.as_millis()
                ))
            } else {
                Finding::fail(format!(
                    "still running {} ms after stdin closed: when Claude Code dies this plugin becomes an orphan",
                    grace.as_millis()
                ))
            };
            if !exit.exited {
                plugin.shutdown().await;
            }
            orphans.extend(
                plugin
                    .orphans()
                    .into_iter()
                    .map(|o| format!("after stdin EOF: {o}")),
            );
            out.record("shutdown-stdin-eof", &mut plugin, &outside.secrets())
                .await;
            out.push("shutdown.stdin-eof", finding, &["stdin", "exit", "stderr"]);
        }
    }
    let orphan = if orphans.is_empty() {
        Finding::pass("no process of the plugin's group outlived it")
    } else {
        Finding::fail(orphans.join("; "))
    };
    out.push("shutdown.no-orphan", orphan, &["exit"]);
    out
}
