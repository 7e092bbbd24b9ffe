//! Running a program under a pseudo-terminal, and reading what it draws.
//!
//! Claude Code only runs interactively (and only honours
//! `--dangerously-load-development-channels`) when its stdin/stdout are a
//! terminal; without one it switches to print mode. A pty gives it one.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};

use nix::pty::{openpty, Winsize};

/// A child running with a pty as its controlling terminal, in its own session
/// and process group (so the whole tree can be signalled at once).
pub struct PtyChild {
    pub child: Child,
    /// The master side: read what the child draws, write its keystrokes.
    pub master: File,
}

impl PtyChild {
    /// The child's process group id (it is a session leader: pgid == pid).
    pub fn pgid(&self) -> i32 {
        self.child.id() as i32
    }
}

/// Spawns `cmd` with stdin, stdout and stderr on a fresh pty of
/// `cols`x`rows`, as the leader of a new session whose controlling terminal is
/// that pty.
pub fn spawn_in_pty(cmd: &mut Command, cols: u16, rows: u16) -> io::Result<PtyChild> {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(&size, None).map_err(io::Error::from)?;
    set_cloexec(&pty.master)?;
    set_cloexec(&pty.slave)?;
    let slave = pty.slave;
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            // stdin is the pty slave by now: make it the controlling terminal.
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // Our copies of the slave (ours, and the three the Command holds) close
    // here; the child keeps its own. Reads on the master then end with EIO once
    // every process holding the slave is gone, instead of blocking forever.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    drop(slave);
    let child = spawned?;
    Ok(PtyChild {
        child,
        master: File::from(pty.master),
    })
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain fcntl on a descriptor we own.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes terminal control sequences (CSI, OSC, two-byte escapes) and other
/// control characters except newlines, leaving the text a person would read.
pub fn strip_terminal_codes(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte @..~
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC / DCS / APC / PM / SOS: up to BEL or ST (ESC \)
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Charset selection `ESC ( B` and similar take one more byte.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            '\n' => out.push('\n'),
            '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Text with every whitespace character removed: Ink sometimes moves the
/// cursor instead of printing spaces, so matches ignore spacing altogether.
pub fn squash(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_osc_and_keeps_words() {
        let raw = "\u{1b}[2J\u{1b}[1;1H\u{1b}]0;title\u{7}WARNING:\u{1b}[1CLoading \u{1b}[31mdevelopment\u{1b}[39m channels\r\n";
        let text = strip_terminal_codes(raw);
        assert_eq!(text, "WARNING:Loading development channels \n");
        assert_eq!(squash(&text), "WARNING:Loadingdevelopmentchannels");
    }

    #[test]
    fn pty_child_sees_a_terminal() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("test -t 0 && test -t 1 && echo TTY-OK || echo NO-TTY");
        let mut pty = spawn_in_pty(&mut cmd, 80, 24).unwrap();
        let mut out = String::new();
        let mut buf = [0u8; 256];
        loop {
            match io::Read::read(&mut pty.master, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        pty.child.wait().unwrap();
        assert!(out.contains("TTY-OK"), "{out:?}");
    }
}
