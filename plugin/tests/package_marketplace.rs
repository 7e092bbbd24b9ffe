//! The Claude Code plugin package: manifests, the server launcher script, and
//! the real `claude plugin marketplace add` / `install` / `mcp list` flow.

#[path = "launch_support.rs"]
mod support;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::*;

fn read_json(rel: &str) -> Value {
    let path = repo_root().join(rel);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn manifests_agree_with_each_other_and_the_code() {
    use channel_plugin::claude_cli::gate::{MARKETPLACE_NAME, PLUGIN_NAME};
    let market = read_json(".claude-plugin/marketplace.json");
    assert_eq!(market["name"], MARKETPLACE_NAME);
    let entry = &market["plugins"][0];
    assert_eq!(entry["name"], PLUGIN_NAME);
    let source = entry["source"].as_str().unwrap();
    let plugin = read_json(&format!(
        "{}/.claude-plugin/plugin.json",
        source.trim_start_matches("./")
    ));
    assert_eq!(plugin["name"], PLUGIN_NAME);
    assert_eq!(plugin["version"], entry["version"]);
    assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"));
    let mcp = read_json(&format!("{}/.mcp.json", source.trim_start_matches("./")));
    let server = &mcp["mcpServers"]["channel"];
    let command = server["command"].as_str().unwrap();
    let rel = command
        .strip_prefix("${CLAUDE_PLUGIN_ROOT}/")
        .expect("command under ${CLAUDE_PLUGIN_ROOT}");
    let script = repo_root().join(source.trim_start_matches("./")).join(rel);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&script).unwrap().permissions());
    assert!(mode & 0o111 != 0, "{} is not executable", script.display());
    // The http bridge is told its full plugin-scoped server name.
    assert_eq!(
        server["args"],
        serde_json::json!(["http", "--name", format!("plugin:{PLUGIN_NAME}:channel")])
    );
}

fn launcher() -> std::path::PathBuf {
    repo_root().join("claude-plugin/scripts/channel-plugin-server")
}

fn run_launcher(root: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(launcher());
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CLAUDE_PLUGIN_ROOT", root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn launcher_without_a_binary_explains_on_stderr_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_launcher(dir.path(), &[], &["http"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        out.stdout.is_empty(),
        "stdout must stay clean: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot find the channel-plugin binary")
            && stderr.contains("CHANNEL_PLUGIN_BIN"),
        "{stderr}"
    );

    let out = run_launcher(
        dir.path(),
        &[("CHANNEL_PLUGIN_BIN", "/nonexistent/channel-plugin")],
        &["http"],
    );
    assert_eq!(out.status.code(), Some(127));
    assert!(out.stdout.is_empty());
}

#[test]
fn launcher_finds_the_binary_and_passes_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("argv");
    // A copied-in binary under ${CLAUDE_PLUGIN_ROOT}/bin (lookup step 2).
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    script(
        &dir.path().join("bin/channel-plugin"),
        &format!("#!/bin/sh\necho \"$0 $*\" > {}\n", record.display()),
    );
    let out = run_launcher(
        dir.path(),
        &[],
        &["http", "--name", "plugin:channel-plugin:channel"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let argv = std::fs::read_to_string(&record).unwrap();
    assert!(
        argv.ends_with("bin/channel-plugin http --name plugin:channel-plugin:channel\n"),
        "{argv}"
    );

    let out = run_launcher(
        dir.path(),
        &[("CHANNEL_PLUGIN_BRIDGE", "ws")],
        &["http", "--name", "x"],
    );
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&record)
        .unwrap()
        .ends_with("channel-plugin ws\n"));
    let out = run_launcher(dir.path(), &[("CHANNEL_PLUGIN_BRIDGE", "smoke")], &["http"]);
    assert_eq!(out.status.code(), Some(2));

    // The repo layout (lookup step 4): <root>/../target/debug/channel-plugin.
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("claude-plugin")).unwrap();
    std::fs::create_dir_all(repo.path().join("target/debug")).unwrap();
    script(
        &repo.path().join("target/debug/channel-plugin"),
        &format!("#!/bin/sh\necho \"$0 $*\" > {}\n", record.display()),
    );
    let out = run_launcher(&repo.path().join("claude-plugin"), &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&record)
        .unwrap()
        .contains("target/debug/channel-plugin http"));
}

fn claude(claude: &std::path::Path, home: &OfflineHome, args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(claude)
        .args(args)
        .current_dir(&home.project);
    home.apply(&mut cmd);
    cmd.output().unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn marketplace_add_install_and_mcp_list_connects() {
    let Some(bin) = real_claude("marketplace_add_install_and_mcp_list_connects") else {
        return;
    };
    let home = OfflineHome::new();
    let root = repo_root();
    let out = claude(
        &bin,
        &home,
        &["plugin", "marketplace", "add", root.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = claude(
        &bin,
        &home,
        &["plugin", "install", "channel-plugin@channel-toolkit"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = claude(&bin, &home, &["mcp", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("plugin:channel-plugin:channel:"))
        .unwrap_or_else(|| panic!("plugin server not listed\n{}", show(&out)));
    assert!(line.contains("Connected"), "{line}");
    eprintln!("observed: {line}");

    // The dev flag names the installed plugin; interactive claude reaches the gate.
    let debug = home.path("debug.txt");
    let mut cmd = Command::new("timeout");
    cmd.args(["--foreground", "120"])
        .arg(&bin)
        .args([
            "--dangerously-load-development-channels",
            "plugin:channel-plugin@channel-toolkit",
            "--debug-file",
        ])
        .arg(&debug)
        .current_dir(&home.project);
    home.apply(&mut cmd);
    let run = PtyRun::start(&mut cmd);
    let gate = wait_for_line(
        &debug,
        &availability_gate_line("plugin:channel-plugin:channel"),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}\nscreen:\n{}", run.screen()));
    eprintln!("observed: {gate}");
    // The plugin used claude's session id for its discovery file.
    let disc = home.home().join(".opzero-claude/channels");
    assert!(wait_until(Duration::from_secs(15), || std::fs::read_dir(
        &disc
    )
    .is_ok_and(|mut d| d.next().is_some())));
}
