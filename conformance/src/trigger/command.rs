//! `command:'<cmd with {content}>'`: a shell command that makes the plugin
//! receive an outside event (post to a test chat, append to a trigger file,
//! ...). Placeholders, each shell-quoted:
//! `{content}` the event text; `{json}` the event as one JSON line
//! `{"content": …, "meta": {…}}`; `{dir}` the session's scratch directory
//! (the same `{dir}` the plugin command gets). The event is also in env
//! `CONFORMANCE_CONTENT` and `CONFORMANCE_META`. The suite cannot see what the
//! plugin sends back out through this trigger.

use std::path::Path;

use anyhow::{bail, Context};

use super::{shell_quote, Kind, Outside, OutsideEvent, Prepared};

pub(super) fn prepare(template: &str, dir: &Path) -> Prepared {
    Prepared {
        env: vec![],
        placeholders: vec![("dir", dir.display().to_string())],
        outside: Outside::new(Kind::Command(template.to_string(), dir.to_path_buf())),
    }
}

/// The event as the `{json}` placeholder spells it.
pub fn event_json(event: &OutsideEvent) -> serde_json::Value {
    let meta: serde_json::Map<String, serde_json::Value> = event
        .meta
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({ "content": event.content, "meta": meta })
}

pub(super) async fn run(template: &str, dir: &Path, event: &OutsideEvent) -> anyhow::Result<()> {
    let json = event_json(event);
    let cmd = template
        .replace("{content}", &shell_quote(&event.content))
        .replace("{json}", &shell_quote(&json.to_string()))
        .replace("{dir}", &shell_quote(&dir.display().to_string()));
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("CONFORMANCE_CONTENT", &event.content)
        .env("CONFORMANCE_META", json["meta"].to_string())
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
