//! How Claude Code turns an accepted `notifications/claude/channel` push into the text the model
//! sees. Pure functions over the profile's [`RenderRules`], so they can be unit-, property- and
//! benchmark-tested without a process.
//!
//! Shape (observed): `<channel source="NAME" k1="v1">\nCONTENT\n</channel>`. Attribute values
//! and NAME are entity-escaped; content is never HTML-escaped but, depending on the release,
//! tag-like sequences in it are *neutralised* by turning their opener into `<\` (see
//! [`NeutraliseRules`]).

use serde::{Deserialize, Serialize};

/// Rendering rules of one release (the profile's `render` object).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RenderRules {
    /// Tag name, `channel`.
    pub tag: String,
    /// `<{tag} source="{source}"{attributes}>\n{content}\n</{tag}>`, filled in one pass.
    pub turn_template: String,
    /// ` {key}="{value}"`, one per meta entry, in insertion order.
    pub attribute_template: String,
    /// `(char, replacement)` pairs applied to attribute values and the source name.
    pub attribute_escapes: Vec<(String, String)>,
    /// Content neutralisation; `None` = content inserted raw (before 2.1.169).
    pub neutralise: Option<NeutraliseRules>,
    /// Wrapper for an event that arrived while the model was busy: `{source}`, `{rendered}`.
    pub busy_notice_template: String,
    /// Between the parts of a batched turn.
    #[serde(default = "default_separator")]
    pub batch_separator: String,
}

fn default_separator() -> String {
    "\n\n".into()
}

/// Which tag-like sequences in content are neutralised, as data, so every release from 2.1.169
/// (closing `</channel` + `>`/space/`/`), 2.1.195 (+ end of string), 2.1.232 (look-alikes,
/// filler, zero-width in the name) and 2.1.281 (more tags, opening too) is a profile, not code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NeutraliseRules {
    /// What the matched opener is replaced by: `<\`.
    pub replacement_opener: String,
    /// Tag names match ASCII-case-insensitively.
    pub case_insensitive: bool,
    /// Tags and which forms (closing `</x`, opening `<x`) are neutralised.
    pub tags: Vec<NeutralisedTag>,
    /// What may follow the name: `gt`, `whitespace`, `slash`, `end`.
    pub terminators: Vec<Terminator>,
    /// Characters that count as `<` (ASCII plus look-alikes from 2.1.232).
    pub openers: Vec<char>,
    /// Characters that count as `/`.
    pub slashes: Vec<char>,
    /// Whitespace may sit between opener, slash and name.
    #[serde(default)]
    pub filler_whitespace: bool,
    /// Other characters that may sit there (zero-width...).
    #[serde(default)]
    pub filler_chars: Vec<char>,
    /// Characters skipped inside the name (zero-width...).
    #[serde(default)]
    pub ignorable_in_name: Vec<char>,
    /// When the whole content is JSON, the inserted backslash is escaped too, so the JSON stays
    /// valid.
    #[serde(default)]
    pub json_aware: bool,
}

/// One neutralised tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NeutralisedTag {
    /// Tag name, e.g. `channel`.
    pub name: String,
    /// `</name` is neutralised.
    pub closing: bool,
    /// `<name` is neutralised.
    pub opening: bool,
}

/// What may follow a tag name for the sequence to count as a tag.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Terminator {
    /// `>` (or a look-alike closer is NOT included: only `>`).
    Gt,
    /// Any Unicode whitespace.
    Whitespace,
    /// `/` or one of the profile's slashes.
    Slash,
    /// End of the content.
    End,
}

/// Replace `{name}` placeholders in one pass: substituted text is never re-scanned, so content
/// that contains `{source}` stays literal. Unknown placeholders are kept as they are.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(key);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Entity-escape an attribute value (or the source name) per the profile's table.
pub fn escape_attr(rules: &RenderRules, value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match rules
            .attribute_escapes
            .iter()
            .find(|(from, _)| from.starts_with(c))
        {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

/// Inverse of [`escape_attr`] (used to parse a rendered turn back).
pub fn unescape_attr(rules: &RenderRules, value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    'outer: while !rest.is_empty() {
        for (from, to) in &rules.attribute_escapes {
            if rest.starts_with(to.as_str()) {
                out.push_str(from);
                rest = &rest[to.len()..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("non-empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn is_filler(rules: &NeutraliseRules, c: char) -> bool {
    (rules.filler_whitespace && c.is_whitespace()) || rules.filler_chars.contains(&c)
}

fn name_char_eq(rules: &NeutraliseRules, a: char, b: char) -> bool {
    if rules.case_insensitive {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// If a tag-like sequence the rules cover starts at `chars[i]` (an opener), return true.
fn matches_at(rules: &NeutraliseRules, chars: &[char], i: usize) -> bool {
    let mut j = i + 1;
    while j < chars.len() && is_filler(rules, chars[j]) {
        j += 1;
    }
    let closing = j < chars.len() && rules.slashes.contains(&chars[j]);
    if closing {
        j += 1;
        while j < chars.len() && is_filler(rules, chars[j]) {
            j += 1;
        }
    }
    'tags: for tag in &rules.tags {
        if (closing && !tag.closing) || (!closing && !tag.opening) {
            continue;
        }
        let mut k = j;
        for (n, want) in tag.name.chars().enumerate() {
            if n > 0 {
                while k < chars.len() && rules.ignorable_in_name.contains(&chars[k]) {
                    k += 1;
                }
            }
            if k >= chars.len() || !name_char_eq(rules, chars[k], want) {
                continue 'tags;
            }
            k += 1;
        }
        let ok = match chars.get(k) {
            None => rules.terminators.contains(&Terminator::End),
            Some('>') => rules.terminators.contains(&Terminator::Gt),
            Some(c) if c.is_whitespace() => rules.terminators.contains(&Terminator::Whitespace),
            Some(c) if *c == '/' || rules.slashes.contains(c) => {
                rules.terminators.contains(&Terminator::Slash)
            }
            Some(_) => false,
        };
        if ok {
            return true;
        }
    }
    false
}

/// Positions (char indices) of every opener that starts a covered tag-like sequence.
pub fn find_tag_openers(rules: &NeutraliseRules, content: &str) -> Vec<usize> {
    let chars: Vec<char> = content.chars().collect();
    (0..chars.len())
        .filter(|&i| rules.openers.contains(&chars[i]) && matches_at(rules, &chars, i))
        .collect()
}

/// Neutralise content per the rules: each covered tag-like sequence gets its opener replaced by
/// `replacement_opener` (`<\`), doubled backslashes when the content is JSON and `json_aware`.
/// Idempotent; text that is already neutralised is untouched.
pub fn neutralise(rules: &NeutraliseRules, content: &str) -> String {
    let hits = find_tag_openers(rules, content);
    if hits.is_empty() {
        return content.to_string();
    }
    let replacement =
        if rules.json_aware && serde_json::from_str::<serde_json::Value>(content).is_ok() {
            rules.replacement_opener.replace('\\', "\\\\")
        } else {
            rules.replacement_opener.clone()
        };
    let mut out = String::with_capacity(content.len() + hits.len() * 2);
    let mut next = hits.iter().peekable();
    for (i, c) in content.chars().enumerate() {
        if next.peek() == Some(&&i) {
            next.next();
            out.push_str(&replacement);
        } else {
            out.push(c);
        }
    }
    out
}

/// Content as the release puts it in the turn (neutralised or raw).
pub fn render_content(rules: &RenderRules, content: &str) -> String {
    match &rules.neutralise {
        Some(n) => neutralise(n, content),
        None => content.to_string(),
    }
}

/// Render one accepted event as the model sees it. `meta` must already be filtered by the key
/// rule (the session does that and records the drops); entries are rendered in the given order.
pub fn render_event(
    rules: &RenderRules,
    source_name: &str,
    meta: &[(String, String)],
    content: &str,
) -> String {
    let mut attributes = String::new();
    for (k, v) in meta {
        let value = escape_attr(rules, v);
        attributes.push_str(&fill_template(
            &rules.attribute_template,
            &[("key", k), ("value", &value)],
        ));
    }
    let source = escape_attr(rules, source_name);
    let content = render_content(rules, content);
    fill_template(
        &rules.turn_template,
        &[
            ("tag", &rules.tag),
            ("source", &source),
            ("attributes", &attributes),
            ("content", &content),
        ],
    )
}

/// Wrap a rendered event that arrived while the model was busy.
pub fn render_busy_notice(rules: &RenderRules, source_name: &str, rendered: &str) -> String {
    fill_template(
        &rules.busy_notice_template,
        &[("source", source_name), ("rendered", rendered)],
    )
}

/// A rendered turn parsed back (inverse of [`render_event`] for the standard template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTurn {
    /// Unescaped source.
    pub source: String,
    /// Unescaped attributes after `source`, in order.
    pub attributes: Vec<(String, String)>,
    /// Content between the opening line and the final closing tag.
    pub content: String,
}

/// Parse `<tag source="..." k="v">\nCONTENT\n</tag>`. Returns `None` when the text does not
/// have exactly that shape. Attributes are read with a strict scanner: an attribute value ends
/// at the first `"`, so a value that managed to inject `"` would show up as extra attributes.
pub fn parse_turn(rules: &RenderRules, text: &str) -> Option<ParsedTurn> {
    let open_prefix = format!("<{} ", rules.tag);
    let close = format!("\n</{}>", rules.tag);
    let body = text.strip_prefix(&open_prefix)?.strip_suffix(&close)?;
    let header_end = body.find(">\n")?;
    let (header, content) = (&body[..header_end], &body[header_end + 2..]);
    let mut attrs = Vec::new();
    let mut rest = header;
    loop {
        let eq = rest.find("=\"")?;
        let key = &rest[..eq];
        if key.is_empty() || key.contains(' ') || key.contains('"') {
            return None;
        }
        let after = &rest[eq + 2..];
        let end = after.find('"')?;
        attrs.push((key.to_string(), unescape_attr(rules, &after[..end])));
        rest = &after[end + 1..];
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(' ')?;
    }
    let (first_key, source) = attrs.first()?.clone();
    if first_key != "source" {
        return None;
    }
    Some(ParsedTurn {
        source,
        attributes: attrs[1..].to_vec(),
        content: content.to_string(),
    })
}
