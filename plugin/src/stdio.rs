//! The process's stdin and stdout as async byte streams, without thread hops.
//!
//! `tokio::io::stdin()`/`stdout()` do every read and write on the blocking
//! thread pool: each frame crosses threads twice, which is most of the
//! latency between an HTTP inject and its notification (see
//! `benches/RESULTS.md`). When a stream is a pipe or a socket (how Claude
//! Code, Node and Bun spawn MCP servers) we instead put a duplicate of the
//! descriptor in non-blocking mode and drive it from the runtime's own
//! reactor. Anything else (a terminal, a regular file, `/dev/null`) cannot
//! be polled by epoll or must not be made non-blocking (a terminal's mode is
//! shared with the shell), so it keeps tokio's blocking-pool streams.
//!
//! `O_NONBLOCK` belongs to the open file description, which other processes
//! may share (a shell script that runs us and then writes to the same pipe).
//! The original flags are put back when the stream is dropped.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, SFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The input stream the core reads frames from.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;
/// The output stream the core writes frames to.
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// Which kind of stream was chosen (logged at debug level; tests read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A non-blocking duplicate driven by the reactor (pipe or socket).
    Reactor,
    /// tokio's blocking-pool stream (terminal, file, anything else).
    BlockingPool,
}

/// This process's stdin and stdout for the MCP core; the kind chosen for
/// each is logged at debug level. Must be called inside a tokio runtime.
pub fn streams() -> (Input, Output) {
    let (input, input_mode) = pick(
        io::stdin().as_fd(),
        |fd| Box::new(fd) as Input,
        || Box::new(tokio::io::stdin()),
    );
    let (output, output_mode) = pick(
        io::stdout().as_fd(),
        |fd| Box::new(fd) as Output,
        || Box::new(tokio::io::stdout()),
    );
    tracing::debug!(?input_mode, ?output_mode, "stdio streams");
    (input, output)
}

/// The polled stream for `fd` when it can be one, else tokio's.
fn pick<T>(
    fd: BorrowedFd<'_>,
    polled: impl FnOnce(PolledFd) -> T,
    blocking: impl FnOnce() -> T,
) -> (T, Mode) {
    match polled_unless_shared_with_stderr(fd) {
        Some(fd) => (polled(fd), Mode::Reactor),
        None => (blocking(), Mode::BlockingPool),
    }
}

/// Logs are written to stderr with blocking writes. When stderr is the same
/// pipe or socket (`2>&1` into a pipe), making it non-blocking would turn a
/// full pipe into lost log lines, so that stream stays on the blocking pool.
fn polled_unless_shared_with_stderr(fd: BorrowedFd<'_>) -> Option<PolledFd> {
    let same_file = |a: &nix::sys::stat::FileStat, b: &nix::sys::stat::FileStat| {
        a.st_dev == b.st_dev && a.st_ino == b.st_ino
    };
    if let (Ok(this), Ok(stderr)) = (fstat(fd), fstat(io::stderr().as_fd())) {
        if same_file(&this, &stderr) {
            tracing::debug!("a stdio stream shares its pipe with stderr; not polling it");
            return None;
        }
    }
    PolledFd::new(fd)
}

/// A non-blocking duplicate of a pipe or socket descriptor, registered with
/// the reactor. Restores the description's original flags on drop.
#[derive(Debug)]
pub struct PolledFd {
    fd: AsyncFd<File>,
    original_flags: OFlag,
}

impl PolledFd {
    /// `None` (logged at debug level) when `fd` is not a pipe or socket, or
    /// cannot be duplicated, made non-blocking, or registered.
    pub fn new(fd: BorrowedFd<'_>) -> Option<Self> {
        let kind = match fstat(fd) {
            Ok(stat) => SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT,
            Err(err) => {
                tracing::debug!("fstat on a stdio descriptor failed: {err}");
                return None;
            }
        };
        if kind != SFlag::S_IFIFO && kind != SFlag::S_IFSOCK {
            return None;
        }
        let owned: OwnedFd = match fd.try_clone_to_owned() {
            Ok(owned) => owned,
            Err(err) => {
                tracing::debug!("cannot duplicate a stdio descriptor: {err}");
                return None;
            }
        };
        let original_flags = match fcntl(&owned, FcntlArg::F_GETFL) {
            Ok(bits) => OFlag::from_bits_truncate(bits),
            Err(err) => {
                tracing::debug!("F_GETFL on a stdio descriptor failed: {err}");
                return None;
            }
        };
        if let Err(err) = fcntl(
            &owned,
            FcntlArg::F_SETFL(original_flags | OFlag::O_NONBLOCK),
        ) {
            tracing::debug!("cannot make a stdio descriptor non-blocking: {err}");
            return None;
        }
        // SAFETY: the `File` owns the descriptor, and `PolledFd` never
        // replaces it (no `get_mut`), so it stays the same open description
        // for the `AsyncFd`'s whole life.
        match unsafe { AsyncFd::register(File::from(owned)) } {
            Ok(fd) => Some(Self { fd, original_flags }),
            Err(err) => {
                let (file, err) = err.into_parts();
                tracing::debug!("cannot register a stdio descriptor with the reactor: {err}");
                let _ = fcntl(&file, FcntlArg::F_SETFL(original_flags));
                None
            }
        }
    }
}

impl Drop for PolledFd {
    fn drop(&mut self) {
        let _ = fcntl(self.fd.get_ref(), FcntlArg::F_SETFL(self.original_flags));
    }
}

impl AsyncRead for PolledFd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                // Spurious readiness: the guard cleared it; wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PolledFd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(buf)) {
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the descriptor; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn is_nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> bool {
        let bits = fcntl(fd, FcntlArg::F_GETFL).unwrap();
        OFlag::from_bits_truncate(bits).contains(OFlag::O_NONBLOCK)
    }

    #[tokio::test]
    async fn a_socket_is_polled_and_its_flags_restored() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        assert!(!is_nonblocking(ours.as_fd()));
        let mut polled = PolledFd::new(ours.as_fd()).expect("a socket can be polled");
        assert!(is_nonblocking(ours.as_fd()), "the description is shared");

        theirs.write_all(b"hello\n").unwrap();
        let mut got = [0u8; 6];
        polled.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello\n");

        polled.write_all(b"back\n").await.unwrap();
        let mut back = [0u8; 5];
        theirs.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back\n");

        drop(polled);
        assert!(!is_nonblocking(ours.as_fd()), "original flags put back");
    }

    #[tokio::test]
    async fn a_pipe_reads_to_end_of_file() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let mut polled = PolledFd::new(reader.as_fd()).expect("a pipe can be polled");
        let mut writer = File::from(writer);
        writer.write_all(b"last").unwrap();
        drop(writer);
        let mut got = Vec::new();
        polled.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last");
    }

    #[tokio::test]
    async fn a_full_pipe_waits_for_the_reader_instead_of_failing() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let mut polled = PolledFd::new(writer.as_fd()).expect("a pipe can be polled");
        // Several times a default pipe buffer (64 KiB): the writer must park
        // on EAGAIN and resume as the reader drains.
        let payload = vec![b'x'; 1024 * 1024];
        let reading = std::thread::spawn(move || {
            let mut all = Vec::new();
            File::from(reader).read_to_end(&mut all).unwrap();
            all.len()
        });
        polled.write_all(&payload).await.unwrap();
        drop(polled);
        drop(writer);
        assert_eq!(reading.join().unwrap(), payload.len());
    }

    #[tokio::test]
    async fn a_regular_file_is_not_polled() {
        let file = tempfile::tempfile().unwrap();
        assert!(PolledFd::new(file.as_fd()).is_none());
        assert!(!is_nonblocking(file.as_fd()));
    }
}
