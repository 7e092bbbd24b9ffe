//! An in-memory transport for running a [`super::Core`] without a process
//! (unit tests, benches), in the spirit of lsp-server's `Connection::memory()`.

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

/// The core's ends: pass `input` and `output` to [`super::Core::serve`].
pub struct MemoryServerIo {
    pub input: ReadHalf<DuplexStream>,
    pub output: WriteHalf<DuplexStream>,
}

/// The client's end: write frames, read lines.
pub struct MemoryClient {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

/// A connected pair with `capacity` bytes of buffering each way.
pub fn memory(capacity: usize) -> (MemoryServerIo, MemoryClient) {
    let (server, client) = tokio::io::duplex(capacity);
    let (input, output) = tokio::io::split(server);
    let (reader, writer) = tokio::io::split(client);
    (
        MemoryServerIo { input, output },
        MemoryClient {
            reader: BufReader::new(reader),
            writer,
        },
    )
}

impl MemoryClient {
    /// Send one JSON value as a line.
    pub async fn send(&mut self, frame: &Value) {
        let mut line = serde_json::to_vec(frame).expect("serializable");
        line.push(b'\n');
        self.send_raw(&line).await;
    }

    /// Send raw bytes (for malformed-input tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .await
            .expect("memory transport write");
        self.writer.flush().await.expect("memory transport flush");
    }

    /// The next frame the core wrote, or `None` when its output closed.
    /// Panics on a line that is not JSON: the core must only write JSON.
    pub async fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        if self
            .reader
            .read_line(&mut line)
            .await
            .expect("memory transport read")
            == 0
        {
            return None;
        }
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("core wrote non-JSON {line:?}: {e}")),
        )
    }

    /// Close the core's input (it sees end of file).
    pub async fn close_input(&mut self) {
        self.writer
            .shutdown()
            .await
            .expect("memory transport shutdown");
    }
}
