//! The check catalogue: every check the suite can report, with a stable id,
//! the scenario that produces it and the line of `CHANNELS.md` (or the docs)
//! that justifies it.
//!
//! Ids are a public interface: baselines, CI dashboards and requirement-set
//! pins refer to them. Never rename or reuse an id; retire it instead.

use std::fmt;

use serde::Serialize;

/// A group of checks that share one plugin session (one spawn, one transcript).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// discover probe, initialize, capabilities, tools, the gate.
    Handshake,
    /// An outside event pushed early and late, rendered into a turn.
    Push,
    /// The model calls `reply`; the text must reach the outside.
    Reply,
    /// Permission relay: request in, verdict out.
    Permission,
    /// Malformed input on stdin.
    Robustness,
    /// SIGINT, stdin EOF, orphans.
    Shutdown,
    /// Checks over every session of a profile (stdout hygiene, frame schemas).
    Session,
}

impl Scenario {
    /// Scenarios that run a plugin session of their own, in catalogue order.
    pub const RUNNABLE: [Scenario; 6] = [
        Scenario::Handshake,
        Scenario::Push,
        Scenario::Reply,
        Scenario::Permission,
        Scenario::Robustness,
        Scenario::Shutdown,
    ];
    pub const ALL: [Scenario; 7] = [
        Scenario::Handshake,
        Scenario::Push,
        Scenario::Reply,
        Scenario::Permission,
        Scenario::Robustness,
        Scenario::Shutdown,
        Scenario::Session,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Scenario::Handshake => "handshake",
            Scenario::Push => "push",
            Scenario::Reply => "reply",
            Scenario::Permission => "permission",
            Scenario::Robustness => "robustness",
            Scenario::Shutdown => "shutdown",
            Scenario::Session => "session",
        }
    }

    pub fn parse(id: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn description(self) -> &'static str {
        match self {
            Scenario::Handshake => {
                "spawn, server/discover probe, initialize, lists, the channel gate"
            }
            Scenario::Push => {
                "an outside event injected during and after the handshake, rendered as a turn"
            }
            Scenario::Reply => "the scripted model answers a channel turn with the reply tool",
            Scenario::Permission => {
                "permission_request to the plugin, verdict back from the outside"
            }
            Scenario::Robustness => "malformed lines on stdin must not kill the plugin",
            Scenario::Shutdown => {
                "SIGINT and stdin EOF end the plugin within the grace period, no orphans"
            }
            Scenario::Session => "every session of a profile: stdout hygiene and frame schemas",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What a check needs from the run beyond a plugin process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Needs {
    /// Observes the session only.
    Nothing,
    /// Needs a trigger that can make the plugin receive an outside event.
    Inject,
    /// Needs a trigger that can also see what the plugin sends to the outside.
    Observe,
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub scenario: Scenario,
    /// One line, phrased as the property that must hold.
    pub title: &'static str,
    /// Where the property comes from: `CHANNELS.md:LINES (§…)` or a docs page.
    pub spec: &'static str,
    pub needs: Needs,
}

macro_rules! check {
    ($id:literal, $scenario:ident, $needs:ident, $spec:literal, $title:literal) => {
        Check {
            id: $id,
            scenario: Scenario::$scenario,
            title: $title,
            spec: $spec,
            needs: Needs::$needs,
        }
    };
}

/// Every check, grouped by scenario, in report order.
pub static CATALOGUE: &[Check] = &[
    // -- handshake ---------------------------------------------------------
    check!("handshake.discover-method-not-found", Handshake, Nothing,
        "CHANNELS.md:76-85 (§3 step 2, server/discover probe)",
        "server/discover is answered with error -32601 (unanswered costs the probe timeout on every start)"),
    check!("handshake.protocol-version-accepted", Handshake, Nothing,
        "CHANNELS.md:86-92 (§3 step 3, accepted protocol versions)",
        "initialize is answered with a protocolVersion the client accepts"),
    check!("handshake.legacy-era", Handshake, Nothing,
        "CHANNELS.md:83-85,92 (§3, modern era skips channel notifications)",
        "the connection is in the legacy era (modern skips channel notifications)"),
    check!("handshake.capability-experimental", Handshake, Nothing,
        "CHANNELS.md:16-19 (§1, capabilities.experimental[\"claude/channel\"])",
        "claude/channel is declared under capabilities.experimental as an object"),
    check!("handshake.instructions-size", Handshake, Nothing,
        "CHANNELS.md:49-52 (§1, 2 KB cap; 2.1.84 in §6)",
        "initialize instructions are at most 2048 bytes"),
    check!("handshake.tool-descriptions-size", Handshake, Nothing,
        "CHANNELS.md:49-52 (§1, 2 KB cap; 2.1.84 in §6)",
        "every tool description is at most 2048 bytes"),
    check!("handshake.tool-schemas-valid", Handshake, Nothing,
        "MCP 2025-11-25 tools/list (inputSchema is a JSON Schema object)",
        "every tool inputSchema is a valid JSON Schema of type object"),
    check!("handshake.reply-tool", Handshake, Nothing,
        "CHANNELS.md:45-48 (§1, replies are a `reply` tool)",
        "tools/list offers a reply tool"),
    check!("handshake.gate-registered", Handshake, Nothing,
        "CHANNELS.md:103-117 (§4, the gate)",
        "the channel gate registers the server (`Channel notifications registered`)"),
    // -- push ----------------------------------------------------------------
    check!("push.none-before-lists", Push, Nothing,
        "CHANNELS.md:93-95 (§3 step 4, pushes before the lists are lost)",
        "no notifications/claude/channel before the plugin answered tools/list"),
    check!("push.none-lost-across-handshake", Push, Inject,
        "CHANNELS.md:93-95,179-180 (§3 step 4, §7)",
        "an event injected during the handshake is delivered once the gate registered"),
    check!("push.params-valid", Push, Nothing,
        "CHANNELS.md:20-24 (§1, push params)",
        "every push has string content, identifier meta keys and string meta values"),
    check!("push.rendered-turn-golden", Push, Inject,
        "CHANNELS.md:25-40 (§1, rendering and escaping)",
        "the rendered turn equals the golden rendering for this profile"),
    // -- reply ---------------------------------------------------------------
    check!("reply.round-trip", Reply, Observe,
        "CHANNELS.md:45-48 (§1, reply tool)",
        "a reply tool call succeeds and its text reaches the outside"),
    // -- permission ----------------------------------------------------------
    check!("permission.capability-only-with-relay", Permission, Nothing,
        "CHANNELS.md:56-57 (§2, opt in only with an authenticated relay)",
        "claude/channel/permission is declared only when requests reach the outside"),
    check!("permission.round-trip", Permission, Observe,
        "CHANNELS.md:58-67 (§2, request and verdict)",
        "a permission_request reaches the outside and its verdict comes back"),
    // -- robustness ----------------------------------------------------------
    check!("robustness.malformed-line-survives", Robustness, Nothing,
        "CHANNELS.md:13-15 (§1) and the guide's rule: bad input gets a clear error",
        "malformed stdin lines do not kill the plugin and it still answers"),
    // -- shutdown ------------------------------------------------------------
    check!("shutdown.sigint", Shutdown, Nothing,
        "CHANNELS.md:100-101 (§3 step 7, SIGINT then SIGTERM after 100 ms)",
        "the plugin exits on SIGINT before the client escalates to SIGTERM"),
    check!("shutdown.stdin-eof", Shutdown, Nothing,
        "CHANNELS.md:100-101,177-178 (§3 step 7, §7 stdin closing is the death signal)",
        "the plugin exits when stdin closes, within the grace period"),
    check!("shutdown.no-orphan", Shutdown, Nothing,
        "CHANNELS.md:177-179 (§7, orphaned plugin processes)",
        "no process of the plugin's process group outlives it"),
    // -- session -------------------------------------------------------------
    check!("session.stdout-clean", Session, Nothing,
        "CHANNELS.md:13-15,98-99,176 (§1, §3 step 6, §7)",
        "stdout carries only JSON-RPC frames during every session"),
    check!("session.frames-valid", Session, Nothing,
        "CHANNELS.md:13-24 (§1) and fixtures/schemas",
        "every frame the plugin sent matches the JSON Schema of its message kind"),
];

/// Looks a check up by id.
pub fn find(id: &str) -> Option<&'static Check> {
    CATALOGUE.iter().find(|c| c.id == id)
}

/// The checks a scenario produces, in catalogue order.
pub fn of_scenario(scenario: Scenario) -> impl Iterator<Item = &'static Check> {
    CATALOGUE.iter().filter(move |c| c.scenario == scenario)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_prefixed_by_their_scenario() {
        let mut seen = std::collections::HashSet::new();
        for c in CATALOGUE {
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(
                c.id.starts_with(&format!("{}.", c.scenario.id())),
                "{} is not under scenario {}",
                c.id,
                c.scenario
            );
        }
    }

    #[test]
    fn every_scenario_has_checks() {
        for s in Scenario::ALL {
            assert!(of_scenario(s).count() > 0, "{s} has no checks");
        }
    }
}
