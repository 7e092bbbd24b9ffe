//! The client over tokio, for the async criterion harness: the measured loop
//! awaits real sockets and real pipes of a real child process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::frames;
use crate::http::parse_response;
use crate::servers::Discovery;

/// A server process with piped stdio, spawned with a fresh discovery dir.
pub struct Server {
    pub child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub session_id: String,
    pub dir: tempfile::TempDir,
    line: Vec<u8>,
}

impl Server {
    pub async fn spawn(argv: &[String]) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("channel-bench-")
            .tempdir()?;
        let session_id = uuid::Uuid::new_v4().to_string();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env("OPZERO_CHANNEL_DIR", dir.path())
            .env("CLAUDE_CODE_SESSION_ID", &session_id)
            .env("CLAUDECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {argv:?}"))?;
        Ok(Server {
            stdin: child.stdin.take().expect("piped"),
            stdout: BufReader::with_capacity(256 * 1024, child.stdout.take().expect("piped")),
            child,
            session_id,
            dir,
            line: Vec::new(),
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stdin.write_all(bytes).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// The next stdout line, without its newline.
    pub async fn read_line(&mut self) -> anyhow::Result<&[u8]> {
        self.line.clear();
        if self.stdout.read_until(b'\n', &mut self.line).await? == 0 {
            bail!("server closed stdout");
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        Ok(&self.line)
    }

    pub async fn read_response(&mut self, id: u64) -> anyhow::Result<()> {
        loop {
            if frames::is_response_to(self.read_line().await?, id) {
                return Ok(());
            }
        }
    }

    pub async fn read_notification(&mut self) -> anyhow::Result<()> {
        loop {
            if frames::is_channel_notification(self.read_line().await?) {
                return Ok(());
            }
        }
    }

    /// initialize → answer, initialized + tools/list → answer.
    pub async fn handshake(&mut self) -> anyhow::Result<()> {
        self.write(&frames::initialize()).await?;
        self.read_response(0).await?;
        self.write(&frames::initialized_and_list()).await?;
        self.read_response(1).await
    }

    pub async fn discovery(&self) -> anyhow::Result<Discovery> {
        let path: PathBuf = self.dir.path().join(format!("{}.json", self.session_id));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = tokio::fs::read_to_string(&path).await {
                if let Ok(d) = serde_json::from_str(&text) {
                    return Ok(d);
                }
            }
            if Instant::now() > deadline {
                bail!("no discovery file {}", path.display());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    pub async fn connect(port: u16) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            stream,
            buf: Vec::new(),
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        Ok(self.stream.write_all(bytes).await?)
    }

    pub async fn read_response(&mut self) -> anyhow::Result<u16> {
        loop {
            if let Some((status, used)) = parse_response(&self.buf)? {
                self.buf.drain(..used);
                return Ok(status);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// An SSE stream.
pub struct Sse {
    stream: TcpStream,
    parser: crate::sse::Parser,
}

impl Sse {
    pub async fn open(port: u16, secret: &str) -> anyhow::Result<Sse> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        stream
            .write_all(&crate::http::sse_request(port, secret))
            .await?;
        let mut sse = Sse {
            stream,
            parser: crate::sse::Parser::new(),
        };
        while !sse.parser.connected() {
            sse.fill().await?;
        }
        Ok(sse)
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("SSE stream closed");
        }
        self.parser.feed(&chunk[..n])
    }

    pub async fn next_named(&mut self, name: &str) -> anyhow::Result<crate::sse::Event> {
        loop {
            while let Some(ev) = self.parser.next_event() {
                if ev.name == name {
                    return Ok(ev);
                }
            }
            self.fill().await?;
        }
    }
}

/// The agent platform's side of `channel-plugin ws`: a loopback WebSocket
/// server that accepts the plugin's connection.
pub struct WsPeer {
    pub ws: WebSocketStream<TcpStream>,
}

/// A listener for [`WsPeer`]s: `ws://127.0.0.1:{port}/bridge`.
pub async fn ws_listener() -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("ws://127.0.0.1:{}/bridge", listener.local_addr()?.port());
    Ok((listener, url))
}

impl WsPeer {
    /// Accept the plugin and read its `hello`.
    pub async fn accept(listener: &TcpListener) -> anyhow::Result<WsPeer> {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
            .await
            .context("the plugin did not connect to the WebSocket bridge")??;
        stream.set_nodelay(true)?;
        let ws = tokio_tungstenite::accept_async(stream).await?;
        let mut peer = WsPeer { ws };
        let hello = peer.next_text().await?;
        if !hello.contains("\"hello\"") {
            bail!("first frame was not hello: {hello}");
        }
        Ok(peer)
    }

    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        Ok(self.ws.send(Message::Text(text.into())).await?)
    }

    /// The next text frame (pings are answered by tungstenite as we read).
    pub async fn next_text(&mut self) -> anyhow::Result<String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                Some(Ok(Message::Close(_))) | None => bail!("the plugin closed the WebSocket"),
                // Answer at once, as a real bridge does: tungstenite only
                // queues the pong, and the plugin's delivery window waits
                // for it.
                Some(Ok(Message::Ping(_))) => self.ws.flush().await?,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }
}
