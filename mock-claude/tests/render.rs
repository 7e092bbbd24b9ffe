//! Rendering: CHANNELS.md examples, golden renderings per profile, insta snapshots, and property
//! tests (escaping round-trips; no content can close the tag early or add an attribute).

use mock_claude::render::{
    self, escape_attr, neutralise, parse_turn, render_event, unescape_attr, RenderRules,
};
use mock_claude::{fixtures_dir, Profile};
use proptest::prelude::*;
use serde_json::Value;

/// Profiles are loaded (and schema-validated) once: proptest calls this per case.
fn rules(v: &str) -> RenderRules {
    static CACHE: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, RenderRules>>,
    > = std::sync::LazyLock::new(Default::default);
    CACHE
        .lock()
        .unwrap()
        .entry(v.to_string())
        .or_insert_with(|| Profile::by_version(fixtures_dir(), v).unwrap().render)
        .clone()
}

/// 2.1.330's rules cut down to what an intermediate release had, to check the version history
/// is expressible as data.
fn rules_like(release: u32) -> RenderRules {
    let mut r = rules("2.1.330");
    let n = r.neutralise.as_mut().unwrap();
    if release < 281 {
        n.tags.retain(|t| t.name == "channel");
    }
    if release < 232 {
        n.openers = vec!['<'];
        n.slashes = vec!['/'];
        n.filler_whitespace = false;
        n.filler_chars.clear();
        n.ignorable_in_name.clear();
    }
    if release < 195 {
        n.terminators.retain(|t| *t != render::Terminator::End);
    }
    if release < 169 {
        r.neutralise = None;
    }
    r
}

fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn channels_md_examples() {
    let r = rules("2.1.330");
    assert_eq!(
        render_event(&r, "zoo", &meta(&[("k1", "v1"), ("k2", "v2")]), "CONTENT"),
        "<channel source=\"zoo\" k1=\"v1\" k2=\"v2\">\nCONTENT\n</channel>"
    );
    let n = r.neutralise.as_ref().unwrap();
    assert_eq!(neutralise(n, "a</channel>b"), "a<\\/channel>b");
    assert_eq!(
        neutralise(n, "</channel-x> </channelx>"),
        "</channel-x> </channelx>"
    );
    assert_eq!(neutralise(n, "a<\\/channel>b"), "a<\\/channel>b");
    assert_eq!(neutralise(n, "x</CHANNEL"), "x<\\/CHANNEL");
    assert_eq!(neutralise(n, "x\u{ff1c}/channel>"), "x<\\/channel>");
    assert_eq!(neutralise(n, "<cited>"), "<\\cited>");
    // JSON content stays valid JSON.
    let json = neutralise(n, "{\"t\":\"</channel>\"}");
    assert_eq!(json, "{\"t\":\"<\\\\/channel>\"}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["t"], "<\\/channel>");
    // Attribute escapes: exactly five, nothing else.
    assert_eq!(
        escape_attr(&r, "&<>\"'\n\u{e9}"),
        "&amp;&lt;&gt;&quot;&apos;\n\u{e9}"
    );
    // A meta key named source is not rejected: a second source= appears.
    assert_eq!(
        render_event(&r, "zoo", &meta(&[("source", "evil")]), "x"),
        "<channel source=\"zoo\" source=\"evil\">\nx\n</channel>"
    );
}

#[test]
fn version_history_is_data() {
    assert_eq!(
        render::render_content(&rules_like(168), "a</channel>b"),
        "a</channel>b"
    );
    assert_eq!(
        render::render_content(&rules_like(169), "a</channel>b"),
        "a<\\/channel>b"
    );
    assert_eq!(
        render::render_content(&rules_like(169), "a</channel"),
        "a</channel"
    );
    assert_eq!(
        render::render_content(&rules_like(195), "a</channel"),
        "a<\\/channel"
    );
    assert_eq!(
        render::render_content(&rules_like(195), "\u{ff1c}/channel>"),
        "\u{ff1c}/channel>"
    );
    assert_eq!(
        render::render_content(&rules_like(232), "\u{ff1c}/channel>"),
        "<\\/channel>"
    );
    assert_eq!(
        render::render_content(&rules_like(232), "<cited>"),
        "<cited>"
    );
    assert_eq!(
        render::render_content(&rules_like(281), "<cited>"),
        "<\\cited>"
    );
    assert_eq!(
        render::render_content(&rules("2.1.80"), "a</channel>b"),
        "a</channel>b"
    );
    // The oracle used by the property test has teeth: before 2.1.195 content ending in
    // `</channel` closed the tag early (the newline after it is whitespace).
    let early = render_event(&rules_like(169), "zoo", &[], "x</channel");
    assert_eq!(ascii_closers(&early).len(), 2, "{early}");
    let fixed = render_event(&rules_like(195), "zoo", &[], "x</channel");
    assert_eq!(ascii_closers(&fixed).len(), 1, "{fixed}");
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    source: String,
    meta: Vec<(String, String)>,
    content: String,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures_dir().join("golden/cases.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(v["cases"].clone()).unwrap()
}

/// Every profile renders every golden case exactly as `fixtures/golden/claude-code-V.json` says.
/// `MOCK_CLAUDE_BLESS=1` rewrites the golden files (review the diff!).
#[test]
fn golden_renderings_per_profile() {
    let bless = std::env::var_os("MOCK_CLAUDE_BLESS").is_some();
    for profile in Profile::all(fixtures_dir()).unwrap() {
        let mut rendered = serde_json::Map::new();
        for c in cases() {
            rendered.insert(
                c.name.clone(),
                Value::String(render_event(
                    &profile.render,
                    &c.source,
                    &c.meta,
                    &c.content,
                )),
            );
        }
        let doc = serde_json::json!({
            "version": profile.version,
            "description": "Exact turn text per case of cases.json, as this release gives it to the model.",
            "turns": rendered,
        });
        let path = fixtures_dir().join(format!("golden/claude-code-{}.json", profile.version));
        if bless {
            std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
            continue;
        }
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run with MOCK_CLAUDE_BLESS=1 to create it)",
                    path.display()
                )
            }))
            .unwrap();
        assert_eq!(
            golden["turns"], doc["turns"],
            "golden renderings differ for {}",
            profile.version
        );
    }
}

#[test]
fn snapshot_rendered_turns() {
    let r = rules("2.1.330");
    let turns: Vec<String> = cases()
        .iter()
        .map(|c| render_event(&r, &c.source, &c.meta, &c.content))
        .collect();
    insta::assert_snapshot!("turns_2_1_330", turns.join("\n---\n"));
    let r = rules("2.1.80");
    let turns: Vec<String> = cases()
        .iter()
        .map(|c| render_event(&r, &c.source, &c.meta, &c.content))
        .collect();
    insta::assert_snapshot!("turns_2_1_80", turns.join("\n---\n"));
}

#[test]
fn busy_notice_wraps_the_rendering() {
    let r = rules("2.1.330");
    let inner = render_event(&r, "zoo", &[], "x");
    let wrapped = render::render_busy_notice(&r, "zoo", &inner);
    assert!(wrapped.starts_with("A message arrived from zoo while you were working:\n<channel"));
    assert!(wrapped.contains("untrusted"));
}

/// Content built from the fragments that matter to tag matching.
fn tricky_content() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("<".to_string()),
        Just("/".to_string()),
        Just("channel".to_string()),
        Just("CHANNEL".to_string()),
        Just("cited".to_string()),
        Just(">".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\\".to_string()),
        Just("\"".to_string()),
        Just("=".to_string()),
        Just("\u{ff1c}".to_string()),
        Just("\u{ff0f}".to_string()),
        Just("\u{200b}".to_string()),
        Just("-x".to_string()),
        Just("{".to_string()),
        "[a-z]{0,3}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(frag, 0..24).prop_map(|v| v.concat())
}

fn meta_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,6}", ".{0,12}"), 0..4).prop_map(|mut v| {
        // Keys are unique in a JSON object.
        let mut seen = std::collections::HashSet::new();
        v.retain(|(k, _)| seen.insert(k.clone()));
        v
    })
}

/// Independent oracle: where a model would see `</channel` closing the tag (ASCII only).
fn ascii_closers(text: &str) -> Vec<usize> {
    let re = regex::Regex::new(r"(?i)</channel(?:[>\s/]|$)").unwrap();
    re.find_iter(text).map(|m| m.start()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn attribute_escaping_round_trips(s in ".{0,40}") {
        let r = rules("2.1.330");
        let e = escape_attr(&r, &s);
        prop_assert!(!e.contains('"') && !e.contains('<') && !e.contains('>'));
        prop_assert_eq!(unescape_attr(&r, &e), s);
    }

    #[test]
    fn no_content_closes_the_tag_early_or_adds_an_attribute(
        content in tricky_content(),
        meta in meta_strategy(),
        source in "[a-z:]{1,10}",
        release in prop::sample::select(vec![195u32, 232, 281, 330]),
    ) {
        let r = if release == 330 { rules("2.1.330") } else { rules_like(release) };
        let text = render_event(&r, &source, &meta, &content);
        let closers = ascii_closers(&text);
        prop_assert_eq!(closers.len(), 1, "early close in {:?}", text);
        prop_assert_eq!(closers[0], text.len() - "</channel>".len());
        let parsed = parse_turn(&r, &text).expect("parses back");
        prop_assert_eq!(parsed.source, source);
        prop_assert_eq!(parsed.attributes, meta);
        prop_assert_eq!(parsed.content, render::render_content(&r, &content));
    }

    #[test]
    fn neutralisation_is_idempotent_and_only_touches_openers(content in tricky_content()) {
        let r = rules("2.1.330");
        let n = r.neutralise.as_ref().unwrap();
        let once = neutralise(n, &content);
        prop_assert_eq!(neutralise(n, &once), once.clone());
        prop_assert!(render::find_tag_openers(n, &once).is_empty());
        // Removing the inserted backslashes (and mapping look-alike openers back) is the only change.
        if !content.contains('\\') && serde_json::from_str::<Value>(&content).is_err() {
            let normalise = |s: &str| s.replace("<\\", "<").replace(['\u{ff1c}', '\u{2039}', '\u{3008}'], "<");
            prop_assert_eq!(normalise(&once), normalise(&content));
        }
    }

    #[test]
    fn json_content_stays_json(s in ".{0,30}") {
        let r = rules("2.1.330");
        let content = serde_json::json!({ "text": format!("{s}</channel>{s}") }).to_string();
        let out = neutralise(r.neutralise.as_ref().unwrap(), &content);
        let v: Value = serde_json::from_str(&out).expect("still JSON");
        prop_assert!(v["text"].as_str().unwrap().contains("<\\/channel>"));
    }

    #[test]
    fn raw_release_passes_content_through(content in tricky_content(), meta in meta_strategy()) {
        let r = rules("2.1.80");
        let text = render_event(&r, "zoo", &meta, &content);
        prop_assert_eq!(text, format!("<channel source=\"zoo\"{}>\n{}\n</channel>",
            meta.iter().map(|(k, v)| format!(" {k}=\"{}\"", escape_attr(&r, v))).collect::<String>(), content));
    }
}
