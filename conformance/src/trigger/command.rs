//! `command:'<cmd with {content}>'`: a shell command that makes the plugin
//! receive an outside event (post to a test chat, write to a FIFO, ...).
//! `{content}` is replaced by the shell-quoted content; the event is also in
//! env `CONFORMANCE_CONTENT` and `CONFORMANCE_META` (a JSON object). The
//! suite cannot see what the plugin sends back out through this trigger.

use anyhow::{bail, Context};

use super::{shell_quote, Kind, Outside, OutsideEvent, Prepared};

pub(super) fn prepare(template: &str) -> Prepared {
    Prepared {
        env: vec![],
        placeholders: vec![],
        outside: Outside::new(Kind::Command(template.to_string())),
    }
}

pub(super) async fn run(template: &str, event: &OutsideEvent) -> anyhow::Result<()> {
    let cmd = template.replace("{content}", &shell_quote(&event.content));
    let meta: serde_json::Map<String, serde_json::Value> = event
        .meta
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("CONFORMANCE_CONTENT", &event.content)
        .env(
            "CONFORMANCE_META",
            serde_json::Value::Object(meta).to_string(),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running trigger command {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "trigger command {cmd:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
