//! `channel-plugin`: a Claude Code channel plugin binary.
//!
//! stdout is reserved for MCP frames; every log line goes to stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use channel_plugin::{doctor, http, launch, spawn, ws};

#[derive(Parser)]
#[command(name = "channel-plugin", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Loopback HTTP bridge: POST /inject in, SSE out (web UIs, phones).
    #[command(after_long_help = http::HTTP_HELP_EXAMPLE, after_help = "Run with --help for an example.")]
    Http(http::HttpArgs),
    /// Outbound WebSocket bridge to an agent platform.
    Ws(ws::WsArgs),
    /// Start Claude Code in this terminal with this plugin as its development channel.
    Launch(launch::LaunchArgs),
    /// Run Claude Code headless under a pty with the ws bridge, and supervise it.
    Spawn(spawn::SpawnArgs),
    /// Diagnose channel sessions: discovery files, plugin liveness, claude, the channel gate.
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs never touch stdout: stdout belongs to the protocol.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // A closed stderr (the parent went away) must not turn a log line into a
        // panic: eprintln! inside tracing-subscriber would abort shutdown paths.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
                // tungstenite traces the raw WebSocket upgrade request, bearer
                // token and URL query included: whatever RUST_LOG says, it
                // never logs below info (a target directive beats a global one).
                .add_directive("tungstenite=info".parse().expect("a valid directive")),
        )
        .init();
    // One thread: the bridges are one event loop each (every frame goes from
    // a socket to stdout, or back, through the same few tasks, so there are
    // no cross-thread wake-ups on the hot path), and `launch`/`spawn`/`doctor`
    // do their blocking work on the blocking pool. Never building the
    // multi-thread scheduler also keeps its code (and libm, for its poll-time
    // average) out of the resident set.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("channel-plugin: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Http(args) => http::run(args).await,
            Command::Ws(args) => ws::run(args).await,
            Command::Launch(args) => launch::run(args).await,
            Command::Spawn(args) => spawn::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
        }
    });
    // When stdin is not a pipe or socket, `tokio::io::stdin()` reads on a
    // blocking thread that may sit in read(2) forever (after a signal, stdin
    // is still open); dropping the runtime normally would wait for it.
    // Everything that matters (discovery file removal, stdout flush) is done
    // by now, so do not wait.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::from(1)
        }
    }
}
