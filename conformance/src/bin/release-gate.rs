//! `release-gate`: record a real Claude Code release, derive its profile, diff it, run the gate.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use channel_conformance::release_gate::{
    derive, diff, fidelity, gate, install, plugin_lane, probe, record,
};

/// The real-Claude-Code release gate. Runs a real `claude` offline (fresh HOME, fake API key,
/// loopback fake of the Messages API) against a recording probe server and our plugin.
/// Run it from the workspace root (paths default to fixtures/…, target/…, reports/…).
///
/// Example: gate the newest npm release (installing it into ~/.cache/claude-code if needed):
///
///   release-gate gate --version latest --install
///
/// Example: record 2.1.330 into the fixtures:
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
    /// Run the whole gate for a release: record, check, derive + diff the profile, run our
    /// plugin under the real client, write report.json + report.md.
    ///
    /// Exit: 0 pass, 3 drift (profile changed, all checks passed), 2 a check failed, 1 error.
    ///
    /// Example: release-gate gate --version latest --install --out reports/latest
    Gate(GateArgs),
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
    /// Derive a profile from a release's recordings (prints it, or writes it with --write).
    ///
    /// Example: release-gate derive --version 2.1.300 --write
    Derive(DeriveArgs),
    /// Drift report between two profiles (exit 3 on drift, 0 when equal).
    ///
    /// Example: release-gate diff fixtures/profiles/claude-code-2.1.300.json
    Diff(DiffArgs),
}

#[derive(clap::Args)]
struct GateArgs {
    /// Claude Code version: `latest` (npm), `newest-committed` (newest profile in --profiles),
    /// or a number.
    #[arg(long, default_value = "newest-committed")]
    version: String,
    /// Install with npm when the release is not cached (else: fail with the install command).
    #[arg(long)]
    install: bool,
    /// Report directory (report.json, report.md, recordings/, the derived profile).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scratch directory for the sandboxes (HOME, debug logs, screens), kept for inspection.
    #[arg(long, default_value = "target/release-gate/work")]
    work: PathBuf,
    /// Committed profiles (the derived profile is compared with these).
    #[arg(long, default_value = "fixtures/profiles")]
    profiles: PathBuf,
    /// The profile JSON Schema.
    #[arg(long, default_value = "fixtures/schemas/profile.schema.json")]
    schema: PathBuf,
    /// channel-plugin binary; default <workspace>/target/debug/channel-plugin.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Skip the plugin lanes (reported as not run).
    #[arg(long)]
    no_plugin: bool,
    /// mock-claude binary for the fidelity lane; default <workspace>/target/debug/mock-claude.
    #[arg(long)]
    mock: Option<PathBuf>,
    /// Skip the fidelity lane (reported as not run).
    #[arg(long)]
    no_mock: bool,
}

#[derive(clap::Args)]
struct DeriveArgs {
    /// The release whose recordings to read.
    #[arg(long)]
    version: String,
    /// Directory holding `<VERSION>/<SCENARIO>.ndjson`.
    #[arg(long, default_value = "fixtures/recordings")]
    recordings: PathBuf,
    /// Committed profiles; the newest is the base for fields recordings cannot show.
    #[arg(long, default_value = "fixtures/profiles")]
    profiles: PathBuf,
    /// The profile JSON Schema the result is validated against.
    #[arg(long, default_value = "fixtures/schemas/profile.schema.json")]
    schema: PathBuf,
    /// Write `<profiles>/claude-code-<VERSION>.json` (refuses to replace an existing profile).
    #[arg(long)]
    write: bool,
    /// Write to this path instead.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DiffArgs {
    /// The new profile.
    new: PathBuf,
    /// The old profile; default: the committed profile of the same version if there is one,
    /// else the newest committed profile of another version.
    #[arg(long)]
    against: Option<PathBuf>,
    /// Committed profiles to pick the default comparison from.
    #[arg(long, default_value = "fixtures/profiles")]
    profiles: PathBuf,
    /// Print Markdown instead of text.
    #[arg(long)]
    markdown: bool,
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

fn main() {
    // Errors as one readable chain, never a backtrace dump: the message names the fix.
    if let Err(err) = run() {
        eprintln!("release-gate: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
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
        Cmd::Gate(args) => {
            let version = if args.version == "newest-committed" {
                gate::newest_committed(&args.profiles)?
            } else {
                args.version.clone()
            };
            let claude = claude_for(&version, args.install)?;
            let out = std::path::absolute(
                args.out
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("reports").join(&claude.version)),
            )?;
            let opts = gate::GateOptions {
                probe_exe: std::env::current_exe()?,
                out: out.clone(),
                work: std::path::absolute(&args.work)?,
                profiles: args.profiles.clone(),
                schema: args.schema.clone(),
                plugin: if args.no_plugin {
                    None
                } else {
                    Some(
                        args.plugin
                            .clone()
                            .unwrap_or_else(plugin_lane::default_plugin_path),
                    )
                },
                mock: if args.no_mock {
                    None
                } else {
                    Some(
                        args.mock
                            .clone()
                            .unwrap_or_else(fidelity::default_mock_path),
                    )
                },
            };
            let report = runtime()?.block_on(gate::run(&claude, &opts))?;
            print!("{}", report.markdown());
            eprintln!(
                "report: {}/report.json, {}/report.md",
                out.display(),
                out.display()
            );
            std::process::exit(report.verdict.exit_code());
        }
        Cmd::Derive(args) => {
            let recs = record::read_dir(&args.recordings.join(&args.version))?;
            let profiles = derive::committed_profiles(&args.profiles)?;
            let (_, base) = profiles
                .iter()
                .next_back()
                .context("no committed profile to start from")?;
            let binary = install::locate(&install::cache_root(), &args.version)
                .map(|c| derive::binary_identity(&c));
            let profile = derive::derive(&args.version, &recs, base, binary)?;
            derive::validate(&profile, &args.schema)?;
            let text = serde_json::to_string_pretty(&profile)? + "\n";
            let target = args.out.clone().or_else(|| {
                args.write.then(|| {
                    args.profiles
                        .join(format!("claude-code-{}.json", args.version))
                })
            });
            match target {
                Some(path) => {
                    if args.out.is_none() && path.exists() {
                        anyhow::bail!(
                            "{} exists (owned by mock-claude); not replacing it. Use --out to write elsewhere and `release-gate diff` to compare.",
                            path.display()
                        );
                    }
                    std::fs::write(&path, text)?;
                    eprintln!("wrote {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        Cmd::Diff(args) => {
            let new: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&args.new)
                    .with_context(|| format!("reading {}", args.new.display()))?,
            )?;
            let old: serde_json::Value = match &args.against {
                Some(p) => serde_json::from_str(
                    &std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )?,
                None => {
                    let profiles = derive::committed_profiles(&args.profiles)?;
                    let nv = new["version"].as_str().unwrap_or_default();
                    let same = derive::Version::parse(nv)
                        .ok()
                        .and_then(|v| profiles.get(&v));
                    let canon_new = std::fs::canonicalize(&args.new).ok();
                    let same = same.filter(|_| {
                        canon_new
                            != std::fs::canonicalize(
                                args.profiles.join(format!("claude-code-{nv}.json")),
                            )
                            .ok()
                    });
                    match same {
                        Some(p) => p.clone(),
                        None => profiles
                            .iter()
                            .rev()
                            .find(|(v, _)| v.to_string() != nv)
                            .map(|(_, p)| p.clone())
                            .context("no committed profile to compare with")?,
                    }
                }
            };
            let ov = old["version"].as_str().unwrap_or("?").to_owned();
            let nv = new["version"].as_str().unwrap_or("?").to_owned();
            let changes = diff::diff(&old, &new);
            if args.markdown {
                print!("{}", diff::render_markdown(&ov, &nv, &changes));
            } else {
                print!("{}", diff::render_text(&ov, &nv, &changes));
            }
            if !changes.is_empty() {
                std::process::exit(diff::DRIFT_EXIT_CODE);
            }
            Ok(())
        }
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
