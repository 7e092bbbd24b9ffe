//! `channel-conformance`: run the channel conformance suite against a plugin.

use std::process::ExitCode;

use clap::Parser;

use channel_conformance::app::{self, exit, Aborted};
use channel_conformance::cli::{self, Cli, Format};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let _ = e.print();
            let reason = e
                .kind()
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| "usage error".into());
            eprintln!(
                "{}",
                Aborted {
                    code: exit::USAGE,
                    reason: format!("{reason}: {}", first_line(&e.to_string()))
                }
                .json_line()
            );
            return ExitCode::from(exit::USAGE);
        }
    };
    if cli.list_checks {
        print!("{}", cli::list_checks());
        return ExitCode::SUCCESS;
    }
    // Logs go to stderr and stay quiet by default: stderr's last line is the verdict.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,mock_claude=error")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "{}",
                Aborted {
                    code: exit::HARNESS,
                    reason: format!("cannot start the async runtime: {e}")
                }
                .json_line()
            );
            return ExitCode::from(exit::HARNESS);
        }
    };
    match runtime.block_on(app::execute(&cli)) {
        Err(aborted) => {
            eprintln!("channel-conformance: {}", aborted.reason);
            eprintln!("{}", aborted.json_line());
            ExitCode::from(aborted.code)
        }
        Ok(report) => {
            match cli.format {
                Format::Text => print!("{}", report.text()),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialisable")
                ),
            }
            if let Some(out) = &cli.out {
                eprintln!("channel-conformance: reports in {}", out.display());
            }
            if report.exit.code != exit::PASS {
                let failed: Vec<String> = report
                    .results
                    .iter()
                    .filter(|r| {
                        r.status == channel_conformance::outcome::Status::Failure
                            && r.required
                            && !r.expected_failure
                    })
                    .map(|r| format!("{}@{}", r.id, r.profile))
                    .collect();
                eprintln!(
                    "{}",
                    serde_json::json!({
                        "exit": report.exit.code,
                        "reason": report.exit.reason,
                        "failed": failed,
                        "stale_baseline": report.stale_baseline,
                    })
                );
            }
            ExitCode::from(report.exit.code)
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}
