//! The renderer (`mock_claude::render`) under every profile in `fixtures/profiles/`.
//!
//! Input: NUL-separated fields: source name, then (key, value) pairs, then the content
//! (the last field). Keys that Claude Code would drop are left out, as the session does.
//!
//! Properties:
//! * a rendered turn parses back (`parse_turn`) to the same source, the same attributes in
//!   the same order, and the content as the release renders it: nothing in an attribute
//!   value or in the content can add an attribute or end the tag early;
//! * neutralisation leaves no covered tag-like sequence behind and is idempotent.
//!
//! Shared by the fuzz target `fuzz_targets/render.rs` and the stable replay test
//! `mock-claude/tests/regressions_fuzz.rs` (seeds and every crash input, on every CI run).

use std::sync::OnceLock;

use mock_claude::render::{
    find_tag_openers, neutralise, parse_turn, render_content, render_event, ParsedTurn,
};
use mock_claude::{fixtures_dir, Profile};

fn profiles() -> &'static Vec<Profile> {
    static P: OnceLock<Vec<Profile>> = OnceLock::new();
    P.get_or_init(|| {
        let all = Profile::all(fixtures_dir()).expect("profiles load");
        assert!(
            !all.is_empty(),
            "no profiles under {}",
            fixtures_dir().display()
        );
        all
    })
}

/// `^[a-zA-Z_][a-zA-Z0-9_]*$`, the key rule of every profile so far.
fn key_kept(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields: Vec<&str> = text.split('\0').collect();
    let content = fields.pop().unwrap_or_default();
    let source = if fields.is_empty() {
        "zoo"
    } else {
        fields.remove(0)
    };
    let meta: Vec<(String, String)> = fields
        .chunks(2)
        .filter(|pair| pair.len() == 2 && key_kept(pair[0]))
        .map(|pair| (pair[0].to_string(), pair[1].to_string()))
        .collect();

    for profile in profiles() {
        let rules = &profile.render;
        let rendered = render_event(rules, source, &meta, content);
        let expected = ParsedTurn {
            source: source.to_string(),
            attributes: meta.clone(),
            content: render_content(rules, content),
        };
        assert_eq!(
            parse_turn(rules, &rendered).as_ref(),
            Some(&expected),
            "profile {}: rendered turn does not parse back: {rendered:?}",
            profile.version()
        );
        if let Some(n) = &rules.neutralise {
            let once = neutralise(n, content);
            assert_eq!(
                find_tag_openers(n, &once),
                Vec::<usize>::new(),
                "profile {}: a covered tag survived neutralisation: {once:?}",
                profile.version()
            );
            assert_eq!(
                neutralise(n, &once),
                once,
                "profile {}: not idempotent",
                profile.version()
            );
        }
    }
}
