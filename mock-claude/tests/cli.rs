//! The `mock-claude` binary, run as a user would.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mock-claude"));
    c.env("RUST_LOG", "off");
    c
}

fn zoo() -> String {
    mock_claude::fixtures_dir()
        .join("zoo/zoo_plugin.py")
        .display()
        .to_string()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_teaches_with_examples() {
    let (code, out, _) = run(&["run", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Examples:") && out.contains("mock-claude run --plugin"),
        "{out}"
    );
    let (_, out, _) = run(&["chat", "--help"]);
    assert!(out.contains("y ID | n ID"), "{out}");
}

#[test]
fn profiles_lists_every_profile() {
    let (code, out, _) = run(&["profiles"]);
    assert_eq!(code, 0);
    assert!(out.contains("2.1.80 ") && out.contains("2.1.330"), "{out}");
}

#[test]
fn run_prints_gate_turn_tool_call_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("t.ndjson");
    let plugin = format!("python3 {} --push-on-ready 'hi there'", zoo());
    let (code, out, err) = run(&[
        "run",
        "--plugin",
        &plugin,
        "--server-name",
        "zoo",
        "--echo",
        "--turns",
        "1",
        "--timeout",
        "30",
        "--transcript",
        transcript.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("gate: MCP server \"zoo\": Channel notifications registered"),
        "{out}"
    );
    assert!(
        out.contains("<channel source=\"zoo\" chat_id=\"1\" user=\"zoo\">\nhi there\n</channel>"),
        "{out}"
    );
    assert!(
        out.contains(
            "tool call mcp__zoo__reply {\"text\":\"echo: hi there\",\"chat_id\":\"1\"} → sent"
        ),
        "{out}"
    );
    assert!(out.contains("via=Some(Sigint)"), "{out}");
    let t = mock_claude::Transcript::read_ndjson(&transcript).unwrap();
    assert!(t.frames().count() >= 8);
}

#[test]
fn run_reports_gate_skips_and_connection_failures() {
    let plugin = format!("python3 {} --fault capability-top-level", zoo());
    let (code, out, _) = run(&[
        "run",
        "--plugin",
        &plugin,
        "--server-name",
        "zoo",
        "--timeout",
        "0",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "Channel notifications skipped: server did not declare claude/channel capability"
        ),
        "{out}"
    );

    let plugin = format!("python3 {} --fault version-2026", zoo());
    let (code, out, _) = run(&[
        "run",
        "--plugin",
        &plugin,
        "--server-name",
        "zoo",
        "--timeout",
        "0",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Server's protocol version is not supported: 2026-07-28"),
        "{out}"
    );

    let (code, out, _) = run(&[
        "run",
        "--plugin",
        &plugin,
        "--channels",
        "server:zoo",
        "--server-name",
        "zoo",
        "--profile",
        "2.1.330",
        "--timeout",
        "0",
        "--provider",
        "bedrock",
    ]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn usage_errors_are_clear() {
    let (code, _, err) = run(&["run", "--plugin", "true", "--profile", "9.9.9"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no profile for Claude Code 9.9.9") && err.contains("2.1.330"),
        "{err}"
    );
    let (code, _, err) = run(&["run", "--plugin", "true", "--channels", "zoo"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("must be `server:NAME` or `plugin:NAME@MARKETPLACE`"),
        "{err}"
    );
}

#[test]
fn probe_memory_dir_skips_the_probe_on_the_second_run() {
    let home = tempfile::tempdir().unwrap();
    let stand_in = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/stand_in.py")
        .display()
        .to_string();
    let plugin = format!("python3 {stand_in} --discover silent");
    let args = [
        "run",
        "--plugin",
        &plugin,
        "--profile",
        "2.1.330",
        "--timeout",
        "0",
        "--probe-memory-dir",
        home.path().to_str().unwrap(),
    ];
    let (code, first, err) = run(&args);
    assert_eq!(code, 0, "{first}{err}");
    assert!(first.contains("discover: Unanswered"), "{first}");
    let (code, second, err) = run(&args);
    assert_eq!(code, 0, "{second}{err}");
    assert!(second.contains("discover: NotSent"), "{second}");
    assert!(
        second.contains(
            "discover probe skipped: MCP server \"channel\": remembered as a legacy peer"
        ),
        "{second}"
    );
}
