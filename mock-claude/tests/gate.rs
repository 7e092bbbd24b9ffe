//! The gate: exact reason texts per check, and a property test that the decision is always the
//! first failing check in the profile's order (checked against an independent oracle, also
//! under shuffled check orders).

use mock_claude::gate::{evaluate, GateCheck};
use mock_claude::{
    fixtures_dir, ChannelSpec, Era, LaunchOptions, OrgPolicy, PluginSource, Profile, Provider,
};
use proptest::prelude::*;
use serde_json::json;

fn p330() -> Profile {
    Profile::by_version(fixtures_dir(), "2.1.330").unwrap()
}

fn channel_caps() -> serde_json::Value {
    json!({ "experimental": { "claude/channel": {} } })
}

#[test]
fn each_check_has_the_clients_text() {
    let p = p330();
    let dev = LaunchOptions::dev("zoo", vec![]);
    let d = evaluate(&p, &dev, &channel_caps(), Era::Legacy);
    assert!(d.registered);
    assert_eq!(
        d.log_line,
        "MCP server \"zoo\": Channel notifications registered"
    );

    let d = evaluate(&p, &dev, &json!({ "claude/channel": {} }), Era::Legacy);
    assert_eq!(d.failed_check, Some(GateCheck::Capability));
    assert_eq!(d.log_line, "MCP server \"zoo\": Channel notifications skipped: server did not declare claude/channel capability");

    let d = evaluate(&p, &dev, &channel_caps(), Era::Modern);
    assert_eq!(d.failed_check, Some(GateCheck::Era));

    let d = evaluate(
        &p,
        &LaunchOptions {
            provider: Provider::Bedrock,
            ..dev.clone()
        },
        &channel_caps(),
        Era::Legacy,
    );
    assert_eq!(
        d.reason.as_deref(),
        Some("channels are not available on third-party providers")
    );

    let d = evaluate(
        &p,
        &LaunchOptions {
            feature_available: false,
            ..dev.clone()
        },
        &channel_caps(),
        Era::Legacy,
    );
    assert_eq!(
        d.log_line,
        "MCP server \"zoo\": Channel notifications skipped: channels feature is not currently available"
    );

    let org = OrgPolicy {
        channels_enabled: Some(false),
        allowed_channel_plugins: None,
    };
    let d = evaluate(
        &p,
        &LaunchOptions {
            org_policy: org,
            ..dev.clone()
        },
        &channel_caps(),
        Era::Legacy,
    );
    assert_eq!(
        d.reason.as_deref(),
        Some("channels not enabled by org policy (set channelsEnabled: true in managed settings)")
    );

    let none = LaunchOptions {
        dev_channels: vec![],
        ..dev.clone()
    };
    let d = evaluate(&p, &none, &channel_caps(), Era::Legacy);
    assert_eq!(
        d.reason.as_deref(),
        Some("server zoo not in --channels list for this session")
    );

    let listed = none.clone().channel(ChannelSpec::server("zoo"));
    let d = evaluate(&p, &listed, &channel_caps(), Era::Legacy);
    assert_eq!(d.failed_check, Some(GateCheck::Allowlist));
    assert!(d.reason.unwrap().ends_with("is not on the approved channels allowlist (use --dangerously-load-development-channels for local dev)"));

    // An approved plugin via --channels passes; a plugin server is named plugin:<plugin>:<server>.
    let plugin = LaunchOptions {
        server_name: "telegram".into(),
        plugin_source: Some(PluginSource {
            plugin: "telegram".into(),
            marketplace: "claude-plugins-official".into(),
        }),
        channels: vec!["plugin:telegram@claude-plugins-official".parse().unwrap()],
        ..LaunchOptions::default()
    };
    let d = evaluate(&p, &plugin, &channel_caps(), Era::Legacy);
    assert!(d.registered, "{d:?}");
    assert_eq!(
        d.log_line,
        "MCP server \"plugin:telegram:telegram\": Channel notifications registered"
    );
    // The org allowlist replaces Anthropic's (2.1.84+), and is ignored by 2.1.80.
    let org = OrgPolicy {
        channels_enabled: Some(true),
        allowed_channel_plugins: Some(vec!["other@mkt".into()]),
    };
    let restricted = LaunchOptions {
        org_policy: org,
        ..plugin.clone()
    };
    assert_eq!(
        evaluate(&p, &restricted, &channel_caps(), Era::Legacy).failed_check,
        Some(GateCheck::Allowlist)
    );
    let p80 = Profile::by_version(fixtures_dir(), "2.1.80").unwrap();
    assert!(evaluate(&p80, &restricted, &channel_caps(), Era::Legacy).registered);
    // 2.1.80 has no era check and counts Console keys as third party.
    assert!(evaluate(&p80, &dev, &channel_caps(), Era::Modern).registered);
    let console = LaunchOptions {
        provider: Provider::Console,
        ..dev.clone()
    };
    assert_eq!(
        evaluate(&p80, &console, &channel_caps(), Era::Legacy).failed_check,
        Some(GateCheck::Provider)
    );
    assert!(evaluate(&p, &console, &channel_caps(), Era::Legacy).registered);
}

#[derive(Debug, Clone)]
struct Inputs {
    cap: bool,
    modern: bool,
    provider: Provider,
    feature: bool,
    org: Option<bool>,
    named: u8, // 0 none, 1 --channels, 2 dev
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![
            Provider::Anthropic,
            Provider::Console,
            Provider::Bedrock,
            Provider::Vertex,
        ]),
        any::<bool>(),
        prop::option::of(any::<bool>()),
        0u8..3,
    )
        .prop_map(|(cap, modern, provider, feature, org, named)| Inputs {
            cap,
            modern,
            provider,
            feature,
            org,
            named,
        })
}

/// Oracle: does check `c` pass, computed directly from the inputs (server entries are never on
/// the allowlist; only the dev flag admits them).
fn passes(c: GateCheck, i: &Inputs, first_party: &[String]) -> bool {
    match c {
        GateCheck::Capability => i.cap,
        GateCheck::Era => !i.modern,
        GateCheck::Provider => first_party.iter().any(|p| p == i.provider.as_str()),
        GateCheck::Feature => i.feature,
        GateCheck::OrgPolicy => i.org != Some(false),
        GateCheck::SessionChannels => i.named > 0,
        GateCheck::Allowlist => i.named == 2,
    }
}

proptest! {
    #[test]
    fn first_failing_check_wins(i in inputs(), seed in any::<u64>(), shuffle in any::<bool>()) {
        let mut p = p330();
        if shuffle {
            // Any order written in a profile is honoured.
            let n = p.gate.checks.len();
            let mut s = seed;
            for k in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                p.gate.checks.swap(k, (s >> 33) as usize % (k + 1));
            }
        }
        let mut o = LaunchOptions::default().server_name("zoo");
        o.provider = i.provider;
        o.feature_available = i.feature;
        o.org_policy.channels_enabled = i.org;
        match i.named {
            1 => o.channels.push(ChannelSpec::server("zoo")),
            2 => o.dev_channels.push(ChannelSpec::server("zoo")),
            _ => {}
        }
        let caps = if i.cap { channel_caps() } else { json!({}) };
        let era = if i.modern { Era::Modern } else { Era::Legacy };
        let d = evaluate(&p, &o, &caps, era);
        let expected = p.gate.checks.iter().find(|r| !passes(r.check, &i, &p.gate.first_party_providers));
        prop_assert_eq!(d.failed_check, expected.map(|r| r.check));
        prop_assert_eq!(d.registered, expected.is_none());
        match expected {
            Some(r) => {
                let reason = d.reason.clone().unwrap();
                prop_assert!(d.log_line.ends_with(&reason));
                prop_assert!(d.log_line.starts_with("MCP server \"zoo\": Channel notifications skipped: "));
                let templated = r.reason.contains("{name}") || r.reason.contains("{entry}");
                prop_assert!(templated || reason == r.reason, "reason text {:?}", reason);
            }
            None => prop_assert!(d.reason.is_none()),
        }
    }
}
