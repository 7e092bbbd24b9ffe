//! Command-line interface of `channel-conformance`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::trigger::TriggerSpec;

const AFTER_HELP: &str = r#"EXAMPLES:
  # Our HTTP bridge under every Claude Code profile, reports in ./conformance-report
  channel-conformance \
    --plugin 'target/debug/channel-plugin http --permission-relay --discovery-dir {dir}' \
    --trigger http-discovery:/tmp/conformance --out conformance-report

  # Our WebSocket bridge: the suite runs the bridge server, passes SYNTHESIS_WS_URL
  channel-conformance --plugin 'target/debug/channel-plugin ws --permission-relay' \
    --trigger ws-bridge

  # Any plugin, passive checks only, one profile, one scenario, JSON on stdout
  channel-conformance --plugin 'node my-channel.js' --profile 2.1.330 \
    --scenario handshake --format json

  # A plugin fed through a file: the trigger appends one JSON line per event
  channel-conformance --plugin './my-plugin --inbox {dir}/inbox' \
    --trigger "command:printf '%s\n' {json} >> {dir}/inbox"

  # Accept known failures while you fix them (stale entries fail the run)
  channel-conformance --plugin './my-plugin' --baseline conformance-baseline.json

PLACEHOLDERS, filled per session (shell-quoted):
  {dir}       in --plugin and command triggers: a fresh directory per session; with
              http-discovery the plugin must write its discovery file there (the
              suite also sets OPZERO_CHANNEL_DIR to it)
  {ws_url}    in --plugin with ws-bridge: the bridge URL (also SYNTHESIS_WS_URL,
              SYNTHESIS_OPENCLAW_SESSION, SYNTHESIS_CLAUDE_SESSION in the env)
  {content}   in a command trigger: the event text
  {json}      in a command trigger: the event as one line {"content":..,"meta":{..}}

EXIT CODES:
  0 every required check passed    1 a required check failed
  2 the baseline is stale          3 the harness could not run (spawn, no handshake)
  4 usage error
  On a non-zero exit, stderr's last line is one JSON object saying why.

Checks and their spec references: channel-conformance --list-checks"#;

/// Conformance suite and CI gate for Claude Code channel plugins: drives the
/// plugin through mock-claude under every Claude Code profile and reports
/// per check (SUCCESS, FAILURE, WARNING, SKIPPED).
#[derive(Debug, Parser)]
#[command(name = "channel-conformance", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// The plugin command line, run through the shell (placeholders below).
    #[arg(long, value_name = "CMD", required_unless_present = "list_checks")]
    pub plugin: Option<String>,

    /// Claude Code profile version to run under, or `all`. Repeatable.
    #[arg(long, value_name = "VERSION|all", default_value = "all")]
    pub profile: Vec<String>,

    /// Run only these scenarios (comma-separated or repeated):
    /// handshake, push, reply, permission, robustness, shutdown, session.
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub scenario: Vec<String>,

    /// How the suite makes the plugin receive an outside event:
    /// `http-discovery:<dir>`, `ws-bridge`, `command:'<cmd with {content}>'` or `none`
    /// (then only passive checks run; the rest are SKIPPED with the reason).
    #[arg(long, value_name = "TRIGGER", default_value = "none", value_parser = parse_trigger)]
    pub trigger: TriggerSpec,

    /// JSON file of expected failures: {"expected_failures":[{"check":ID,"profile":VERSION?,"reason":TEXT?}]}.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write report.json, junit.xml, summary.md, report.html and transcripts/ here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Fixtures directory holding profiles/ (and conformance/golden/).
    #[arg(long, value_name = "DIR", env = "MOCK_CLAUDE_FIXTURES")]
    pub fixtures: Option<PathBuf>,

    /// Plugin sessions running at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub parallel: usize,

    /// Seconds to wait for a turn, a reply at the outside or a verdict.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub event_timeout: u64,

    /// Print the check catalogue (ids, scenarios, spec references, requirement sets) and exit.
    #[arg(long)]
    pub list_checks: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

fn parse_trigger(s: &str) -> Result<TriggerSpec, String> {
    s.parse()
}

/// `--list-checks` output.
pub fn list_checks() -> String {
    use crate::requirements::SETS;
    let mut out = String::new();
    for scenario in crate::catalogue::Scenario::ALL {
        out.push_str(&format!("{}: {}\n", scenario.id(), scenario.description()));
        for c in crate::catalogue::of_scenario(scenario) {
            out.push_str(&format!("  {:<42} {}\n", c.id, c.title));
            let needs = match c.needs {
                crate::catalogue::Needs::Nothing => "",
                crate::catalogue::Needs::Inject => " · needs a trigger",
                crate::catalogue::Needs::Observe => " · needs http-discovery or ws-bridge",
            };
            out.push_str(&format!("  {:<42} spec: {}{needs}\n", "", c.spec));
        }
    }
    out.push_str(
        "\nrequirement sets (frozen; a check absent from a profile's set is only recommended):\n",
    );
    for set in SETS {
        out.push_str(&format!("  {}:\n", set.id));
        for r in set.requirements {
            match r.since {
                Some(v) => out.push_str(&format!(
                    "    {} (required from {v}, recommended before)\n",
                    r.check
                )),
                None => out.push_str(&format!("    {}\n", r.check)),
            }
        }
    }
    out
}
