//! `release-gate`: record a real Claude Code release, derive its profile, diff it, run the gate.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use channel_conformance::release_gate::{install, probe, record};

/// The real-Claude-Code release gate. Runs a real `claude` offline (fresh HOME, fake API key,
/// loopback fake of the Messages API) against a recording probe server.
///
/// Example: record 2.1.330 (installing it into ~/.cache/claude-code if needed):
///
///   release-gate record --version 2.1.330 --install --out fixtures/recordings
#[derive(Parser)]
#[command(
    name = "release-gate",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the recording probe MCP server on stdio (what the real client is pointed at).
    ///
    /// Example: release-gate probe --log /tmp/probe.ndjson --discover error --caps channel
    Probe(probe::ProbeArgs),
    /// (internal) Log when the probe died.
    #[command(hide = true)]
    ProbeWatch(probe::WatchArgs),
    /// Record a release: run every probe scenario and write redacted NDJSON recordings.
    ///
    /// Example: release-gate record --version 2.1.80 --out fixtures/recordings
    Record(RecordArgs),
}

#[derive(clap::Args)]
struct RecordArgs {
    /// Claude Code version (`latest` asks npm).
    #[arg(long)]
    version: String,
    /// Install with npm when the release is not cached (else: fail with the install command).
    #[arg(long)]
    install: bool,
    /// Directory that receives `<VERSION>/<SCENARIO>.ndjson`.
    #[arg(long, default_value = "fixtures/recordings")]
    out: PathBuf,
    /// Scratch directory for sandboxes (kept for inspection).
    #[arg(long, default_value = "target/release-gate/work")]
    work: PathBuf,
    /// Only these scenarios (repeatable); default all.
    #[arg(long)]
    only: Vec<String>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn claude_for(version: &str, do_install: bool) -> anyhow::Result<install::Claude> {
    let version = install::resolve_version(version)?;
    let root = install::cache_root();
    if do_install {
        return install::ensure(&root, &version);
    }
    install::locate(&root, &version).with_context(|| {
        format!(
            "Claude Code {version} is not installed; run: {} (or pass --install)",
            install::install_command(&root, &version)
        )
    })
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Probe(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(probe::run(args)),
        Cmd::ProbeWatch(args) => probe::watch(args),
        Cmd::Record(args) => {
            let claude = claude_for(&args.version, args.install)?;
            let exe = std::env::current_exe()?;
            let work = std::path::absolute(&args.work)?;
            runtime()?.block_on(async {
                for sc in record::scenarios() {
                    if !args.only.is_empty() && !args.only.iter().any(|o| o == sc.name) {
                        continue;
                    }
                    let run = record::run_scenario(&claude, &exe, &sc, &work).await?;
                    let lines = record::normalise(&claude, sc.name, &run, &exe);
                    let path = args
                        .out
                        .join(&claude.version)
                        .join(format!("{}.ndjson", sc.name));
                    record::write_ndjson(&path, &lines)?;
                    eprintln!(
                        "{} {}: exit {:?}{} in {:.1}s, {} lines -> {}",
                        claude.version,
                        sc.name,
                        run.exit_code,
                        if run.timed_out { " (TIMED OUT)" } else { "" },
                        run.elapsed.as_secs_f64(),
                        lines.len(),
                        path.display()
                    );
                }
                anyhow::Ok(())
            })
        }
    }
}
