//! Drift between two profiles: every leaf that was added, removed or changed, by JSON path.
//!
//! Provenance (`source`, `$schema`) and the version number itself are not drift; the version is
//! also blanked inside strings (`AI_AGENT=claude-code_2-1-330_harness`) so only real changes show.

use serde_json::Value;

/// Exit code of `release-gate diff` when the profiles differ (0: identical, 1: error).
pub const DRIFT_EXIT_CODE: i32 = 3;

/// One difference.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    /// JSON path, e.g. `client_capabilities.roots.listChanged` or `env[2].name`.
    pub field: String,
    /// `null` when the field is new.
    pub old: Option<Value>,
    /// `null` when the field is gone.
    pub new: Option<Value>,
}

const IGNORED: &[&str] = &["source", "$schema", "version", "profile_format"];

fn blank_version(v: &Value, version: &str) -> Value {
    let dashed = version.replace('.', "-");
    match v {
        Value::String(s) => Value::String(
            s.replace(version, "<VERSION>")
                .replace(&dashed, "<VERSION>"),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| blank_version(x, version)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), blank_version(x, version)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn walk(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if path.is_empty() && IGNORED.contains(&k.as_str()) {
                    continue;
                }
                // Free-text annotations are documentation, not behaviour.
                if k == "note" || k == "notes" {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(&p, a.get(k), b.get(k), out);
            }
        }
        // Lists of named entries (env, gate checks) are compared by name, so one insertion does
        // not show as every later entry changing.
        (Some(Value::Array(a)), Some(Value::Array(b))) if keyed(a) && keyed(b) => {
            let key = |v: &Value| {
                v.get("name")
                    .or_else(|| v.get("check"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            let mut names: Vec<String> = a.iter().chain(b.iter()).map(key).collect();
            names.dedup();
            let mut seen = std::collections::BTreeSet::new();
            for n in names {
                if !seen.insert(n.clone()) {
                    continue;
                }
                let x = a.iter().find(|v| key(v) == n);
                let y = b.iter().find(|v| key(v) == n);
                walk(&format!("{path}[{n}]"), x, y, out);
            }
            let order_a: Vec<String> = a.iter().map(key).collect();
            let order_b: Vec<String> = b.iter().map(key).collect();
            let common_a: Vec<&String> = order_a.iter().filter(|n| order_b.contains(n)).collect();
            let common_b: Vec<&String> = order_b.iter().filter(|n| order_a.contains(n)).collect();
            if common_a != common_b {
                out.push(Change {
                    field: format!("{path} (order)"),
                    old: Some(Value::from(order_a)),
                    new: Some(Value::from(order_b)),
                });
            }
        }
        (Some(a), Some(b)) if a == b => {}
        (None, None) => {}
        (a, b) => out.push(Change {
            field: path.to_owned(),
            old: a.cloned(),
            new: b.cloned(),
        }),
    }
}

fn keyed(a: &[Value]) -> bool {
    !a.is_empty()
        && a.iter().all(|v| {
            v.get("name")
                .or_else(|| v.get("check"))
                .is_some_and(Value::is_string)
        })
}

/// Every difference from `old` to `new`.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let ov = old["version"].as_str().unwrap_or("\u{0}");
    let nv = new["version"].as_str().unwrap_or("\u{0}");
    let old = blank_version(old, ov);
    let new = blank_version(new, nv);
    let mut out = Vec::new();
    walk("", Some(&old), Some(&new), &mut out);
    out
}

fn short(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 120 {
                format!("{}…", s.chars().take(119).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// A plain-text table: `field: old -> new`, one per line.
pub fn render_text(old_version: &str, new_version: &str, changes: &[Change]) -> String {
    if changes.is_empty() {
        return format!("no drift: {new_version} behaves like {old_version}\n");
    }
    let mut s = format!(
        "DRIFT: {} field(s) differ from {old_version} to {new_version}\n",
        changes.len()
    );
    for c in changes {
        s.push_str(&format!(
            "  {}\n      old: {}\n      new: {}\n",
            c.field,
            short(&c.old),
            short(&c.new)
        ));
    }
    s
}

/// A Markdown table of the changes.
pub fn render_markdown(old_version: &str, new_version: &str, changes: &[Change]) -> String {
    if changes.is_empty() {
        return format!("No drift: {new_version} behaves like {old_version}.\n");
    }
    let mut s = format!(
        "{} field(s) differ from {old_version} to {new_version}.\n\n| field | {old_version} | {new_version} |\n|---|---|---|\n",
        changes.len()
    );
    let cell = |v: &Option<Value>| short(v).replace('|', "\\|");
    for c in changes {
        s.push_str(&format!(
            "| `{}` | `{}` | `{}` |\n",
            c.field,
            cell(&c.old),
            cell(&c.new)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identical_profiles_modulo_version_and_source_do_not_drift() {
        let a = json!({"version": "2.1.1", "source": {"kind": "a"}, "client_info": {"version": "2.1.1"},
            "env": [{"name": "AI_AGENT", "value": {"kind": "literal", "value": "claude-code_2-1-1_harness"}}]});
        let b = json!({"version": "2.1.2", "source": {"kind": "b"}, "client_info": {"version": "2.1.2"},
            "env": [{"name": "AI_AGENT", "value": {"kind": "literal", "value": "claude-code_2-1-2_harness"}}]});
        assert_eq!(diff(&a, &b), vec![]);
    }

    #[test]
    fn changes_are_reported_by_path_with_old_and_new() {
        let a = json!({"version": "1.0.0", "client_capabilities": {"roots": {}},
            "env": [{"name": "A", "value": 1}, {"name": "B", "value": 2}]});
        let b = json!({"version": "1.0.1", "client_capabilities": {"roots": {"listChanged": true}},
            "env": [{"name": "A", "value": 1}, {"name": "C", "value": 3}, {"name": "B", "value": 2}]});
        let d = diff(&a, &b);
        assert_eq!(
            d,
            vec![
                Change {
                    field: "client_capabilities.roots.listChanged".into(),
                    old: None,
                    new: Some(json!(true))
                },
                Change {
                    field: "env[C]".into(),
                    old: None,
                    new: Some(json!({"name": "C", "value": 3}))
                },
            ]
        );
        let text = render_text("1.0.0", "1.0.1", &d);
        assert!(text.starts_with("DRIFT: 2 field(s)"), "{text}");
        assert!(text.contains("(absent)"));
    }

    #[test]
    fn reordered_gate_checks_are_drift() {
        let a = json!({"gate": {"checks": [{"check": "x", "reason": "1"}, {"check": "y", "reason": "2"}]}});
        let b = json!({"gate": {"checks": [{"check": "y", "reason": "2"}, {"check": "x", "reason": "1"}]}});
        let d = diff(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "gate.checks (order)");
    }
}
