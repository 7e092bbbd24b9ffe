//! Startup errors, --help, backoff as logged by the real process, the full
//! queue, and wss:// without a crypto-provider panic.

mod support;
mod support_ws;

use std::process::Stdio;

use serde_json::json;
use support_ws::{clean_env, plugin_bin, result_text, ws_command, Plugin};
use tokio::process::Command;

async fn run_ws(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(plugin_bin());
    cmd.arg("ws").args(args);
    clean_env(&mut cmd);
    cmd.envs(env.iter().copied()).stdin(Stdio::null());
    let out = tokio::time::timeout(support_ws::WAIT, cmd.output())
        .await
        .expect("exits")
        .unwrap();
    assert!(out.stdout.is_empty(), "stdout is for the protocol only");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn missing_url_or_session_is_exit_code_2_with_a_clear_message() {
    let (code, err) = run_ws(&[], &[]).await;
    assert_eq!(code, 2, "{err}");
    for needle in ["SYNTHESIS_WS_URL", "SYNTHESIS_OPENCLAW_SESSION", "--help"] {
        assert!(err.contains(needle), "{err}");
    }

    let (code, err) = run_ws(
        &["--url", "ws://127.0.0.1:9/bridge"],
        &[("SYNTHESIS_OPENCLAW_SESSION", "o")],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("CLAUDE_CODE_SESSION_ID") && !err.contains("SYNTHESIS_WS_URL"),
        "{err}"
    );

    let (code, err) = run_ws(
        &[],
        &[
            ("SYNTHESIS_WS_URL", "http://127.0.0.1:9/"),
            ("SYNTHESIS_OPENCLAW_SESSION", "o"),
            ("CLAUDE_CODE_SESSION_ID", "c"),
        ],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ws://"), "{err}");
}

#[tokio::test]
async fn env_fallbacks_are_used() {
    // Everything from the environment, as the seed's process manager sets it;
    // the Claude session from CLAUDE_CODE_SESSION_ID.
    let bridge = support_ws::BridgeServer::bind().await;
    let mut cmd = Command::new(plugin_bin());
    cmd.arg("ws");
    clean_env(&mut cmd);
    cmd.env("SYNTHESIS_WS_URL", bridge.url())
        .env("SYNTHESIS_OPENCLAW_SESSION", "ops::slack:C1")
        .env("CLAUDE_CODE_SESSION_ID", "cc-session")
        .env("SYNTHESIS_WS_TOKEN", "from-env");
    let mut plugin = Plugin::spawn(cmd);
    let mut peer = bridge.accept().await;
    let hello = peer.expect_kind("hello").await;
    assert_eq!(
        (
            hello["openclaw_session"].as_str(),
            hello["claude_session"].as_str()
        ),
        (Some("ops::slack:C1"), Some("cc-session"))
    );
    assert_eq!(peer.authorization.as_deref(), Some("Bearer from-env"));
    assert!(plugin.close_stdin_and_wait().await.success());
}

#[tokio::test]
async fn help_teaches_with_an_example() {
    let out = Command::new(plugin_bin())
        .args(["ws", "--help"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--url",
        "SYNTHESIS_WS_URL",
        "--token",
        "--permission-relay",
        "Example",
        "\"type\":\"reply\"",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    assert!(
        !help.contains("reconnect-min-ms"),
        "test tunables stay hidden"
    );
}

/// `key=123` from a log line.
fn field(line: &str, key: &str) -> u64 {
    let at = line
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    line[at + key.len() + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn bridge_down_backoff_grows_and_caps_while_mcp_keeps_answering() {
    // A port with nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/bridge");
    let cmd = ws_command(
        &url,
        &[
            "--queue-max-frames",
            "2",
            "--reconnect-min-ms",
            "20",
            "--reconnect-max-ms",
            "160",
        ],
    );
    let mut plugin = Plugin::spawn(cmd);

    let log = plugin
        .wait_stderr("eight reconnect attempts", |l| {
            l.matches("reconnecting to the bridge in").count() >= 8
        })
        .await;
    let attempts: Vec<(u64, u64)> = log
        .lines()
        .filter(|l| l.contains("reconnecting to the bridge in"))
        .take(8)
        .map(|l| (field(l, "delay_ms"), field(l, "ceiling_ms")))
        .collect();
    let ceilings: Vec<u64> = attempts.iter().map(|a| a.1).collect();
    assert_eq!(ceilings, [20, 40, 80, 160, 160, 160, 160, 160], "{log}");
    for (delay, ceiling) in &attempts {
        assert!(delay <= ceiling, "delay {delay} over ceiling {ceiling}");
    }
    assert!(
        log.matches("cannot connect to the bridge").count() >= 8,
        "every attempt logged"
    );

    // The MCP side works all along; replies are queued until the queue is full.
    plugin.handshake().await;
    for text in ["a", "b"] {
        let r = plugin.reply(text, true).await;
        assert!(result_text(&r).contains("queued"), "{r}");
    }
    let full = plugin.reply("c", true).await;
    assert_eq!(full["isError"], json!(true), "{full}");
    let said = result_text(&full);
    assert!(
        said.contains("full") && said.contains("NOT queued"),
        "{said}"
    );
    assert!(plugin.close_stdin_and_wait().await.success());
}

#[tokio::test]
async fn wss_uses_rustls_and_a_failed_tls_handshake_is_just_a_retry() {
    // A "bridge" that is not TLS at all: the handshake must fail cleanly (a
    // logged retry), not panic for lack of a crypto provider.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let mut plugin = Plugin::spawn(ws_command(&format!("wss://127.0.0.1:{port}/bridge"), &[]));
    let log = plugin
        .wait_stderr("two failed TLS attempts", |l| {
            l.matches("cannot connect to the bridge").count() >= 2
        })
        .await;
    assert!(!log.contains("panicked"), "{log}");
    // rustls really ran: it choked on the non-TLS answer.
    assert!(log.contains("corrupt message"), "{log}");
    plugin.handshake().await;
    assert!(plugin.close_stdin_and_wait().await.success());
}
