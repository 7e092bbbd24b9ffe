//! `channel-plugin ws` over real TLS on loopback: a throwaway CA (rcgen)
//! signs a certificate for `localhost`/127.0.0.1, a tokio-rustls +
//! tokio-tungstenite bridge serves it, and the plugin trusts that CA only
//! through `--ca-file`. Without the flag the same bridge is refused (unknown
//! issuer), retried, and the MCP side keeps answering.

mod support;
mod support_ws;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use support_ws::{assert_valid_frame, plugin_bin, result_text, ws_command, Plugin, WAIT};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A CA and a server certificate it signed, written where the plugin can read.
struct Pki {
    _dir: tempfile::TempDir,
    ca_pem: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

fn make_pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ws_tls test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();

    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Pki {
        _dir: dir,
        ca_pem,
        server: Arc::new(server),
    }
}

/// A TLS WebSocket bridge on 127.0.0.1.
struct TlsBridge {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

type TlsPeer = WebSocketStream<TlsStream<tokio::net::TcpStream>>;

impl TlsBridge {
    async fn bind(pki: &Pki) -> TlsBridge {
        TlsBridge {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            acceptor: TlsAcceptor::from(pki.server.clone()),
        }
    }

    /// By name, so the certificate's `localhost` SAN is what gets checked.
    fn url(&self) -> String {
        let port = self.listener.local_addr().unwrap().port();
        format!("wss://localhost:{port}/bridge")
    }

    /// One TCP connection's TLS handshake (Err: the handshake failed).
    async fn accept_tls(&self) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
        let (tcp, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("no plugin connected to the bridge in time")
            .expect("accept failed");
        self.acceptor.accept(tcp).await
    }

    async fn accept(&self) -> TlsPeer {
        let tls = self.accept_tls().await.expect("TLS handshake failed");
        tokio::time::timeout(WAIT, tokio_tungstenite::accept_async(tls))
            .await
            .expect("upgrade timed out")
            .expect("upgrade failed")
    }
}

/// The next JSON text frame (pings are answered by tungstenite itself).
async fn expect_frame(peer: &mut TlsPeer, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, peer.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame within {WAIT:?}"))
            .expect("the plugin closed the connection")
            .expect("reading from the plugin failed");
        if let Message::Text(text) = msg {
            let frame: Value = serde_json::from_str(&text).expect("frame is JSON");
            assert_valid_frame(&frame);
            assert_eq!(frame["type"], kind, "{frame}");
            return frame;
        }
    }
}

fn tls_command(url: &str, extra: &[&str]) -> Command {
    let mut cmd = ws_command(url, extra);
    cmd.env_remove("SYNTHESIS_WS_CA_FILE");
    cmd
}

#[tokio::test]
async fn with_ca_file_hello_inbound_and_reply_travel_over_tls() {
    let pki = make_pki();
    let bridge = TlsBridge::bind(&pki).await;
    let ca = pki.ca_pem.to_str().unwrap();
    let mut plugin = Plugin::spawn(tls_command(&bridge.url(), &["--ca-file", ca]));
    let mut peer = bridge.accept().await;

    let hello = expect_frame(&mut peer, "hello").await;
    assert_eq!(hello["openclaw_session"], "developer::discord:channel:123");
    assert_eq!(hello["pid"], json!(plugin.pid()));

    plugin.handshake().await;

    peer.send(Message::text(
        json!({"type":"inbound","content":"hi over tls","meta":{"chat_id":"c-7"}}).to_string(),
    ))
    .await
    .unwrap();
    let params = plugin
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(params["content"], "hi over tls");
    assert_eq!(params["meta"]["chat_id"], "c-7");

    let result = plugin.reply("answer over tls", true).await;
    assert_ne!(result["isError"], json!(true), "{result}");
    assert!(result_text(&result).contains("sent"), "{result}");
    let frame = expect_frame(&mut peer, "reply").await;
    assert_eq!(frame["text"], "answer over tls");
    assert_eq!(frame["final"], true);
    assert_eq!(frame["seq"], 1);

    let status = plugin.close_stdin_and_wait().await;
    assert!(status.success(), "{status:?}\n{}", plugin.stderr());
}

#[tokio::test]
async fn without_ca_file_the_private_ca_is_refused_retried_and_mcp_keeps_answering() {
    let pki = make_pki();
    let bridge = TlsBridge::bind(&pki).await;
    let mut plugin = Plugin::spawn(tls_command(&bridge.url(), &[]));

    // The bridge sees the plugin abort two handshakes in a row.
    for attempt in 1..=2 {
        let result = bridge.accept_tls().await;
        assert!(
            result.is_err(),
            "attempt {attempt}: the plugin must not trust a CA it was not given"
        );
    }

    let log = plugin
        .wait_stderr("two refused TLS attempts", |l| {
            l.lines()
                .filter(|l| l.contains("cannot connect to the bridge"))
                .count()
                >= 2
        })
        .await;
    let first = log
        .lines()
        .find(|l| l.contains("cannot connect to the bridge"))
        .unwrap();
    assert!(
        first.contains("UnknownIssuer") || first.contains("certificate"),
        "the log should say why: {first}"
    );
    assert!(log.contains("reconnecting to the bridge in"), "{log}");

    // MCP is alive; a reply meanwhile is queued, not lost or refused.
    plugin.handshake().await;
    let result = plugin.reply("while refused", true).await;
    assert_ne!(result["isError"], json!(true), "{result}");
    assert!(result_text(&result).contains("queued"), "{result}");

    let status = plugin.close_stdin_and_wait().await;
    assert!(status.success(), "{status:?}\n{}", plugin.stderr());
}

async fn run_expecting_usage_error(ca: &Path, via_env: bool) -> String {
    let mut cmd = tls_command("wss://localhost:1/bridge", &[]);
    if via_env {
        cmd.env("SYNTHESIS_WS_CA_FILE", ca);
    } else {
        cmd.arg("--ca-file").arg(ca);
    }
    let out = tokio::time::timeout(WAIT, cmd.stdin(std::process::Stdio::null()).output())
        .await
        .expect("exits")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&*ca.to_string_lossy()), "{stderr}");
    stderr
}

#[tokio::test]
async fn a_missing_or_bad_ca_file_is_exit_2_naming_the_file() {
    assert!(Path::new(plugin_bin()).exists());
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let stderr = run_expecting_usage_error(&missing, false).await;
    assert!(stderr.contains("cannot read"), "{stderr}");

    let bad = dir.path().join("bad-ca.pem");
    std::fs::write(&bad, "this is not PEM\n").unwrap();
    let stderr = run_expecting_usage_error(&bad, true).await;
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}
