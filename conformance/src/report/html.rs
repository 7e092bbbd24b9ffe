//! `report.html`: a self-contained page (inline CSS, no scripts, no network):
//! a matrix of checks × Claude Code versions, coloured by status; every
//! failure and warning expands (`<details>`) to its details and transcript
//! excerpt.

use super::{escape, Report};
use crate::outcome::{CheckResult, Status};

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.cell{text-align:center;font-weight:600;min-width:7em}
.SUCCESS{background:#c8efc8}.FAILURE{background:#f6b8b8}.WARNING{background:#fbe7a5}
.SKIPPED{background:#e4e4e4;color:#555}.EXPECTED{background:#f3d4f3}
details{margin:.4em 0;border:1px solid #ddd;padding:.3em .6em}summary{cursor:pointer}
pre{background:#f8f8f8;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.small{color:#666;font-size:12px}
"#;

fn class(r: &CheckResult) -> &'static str {
    if r.status == Status::Failure && r.expected_failure {
        "EXPECTED"
    } else if r.status == Status::Failure && !r.required {
        "WARNING"
    } else {
        r.status.as_str()
    }
}

fn anchor(r: &CheckResult) -> String {
    format!("{}--{}", r.id, r.profile).replace(['.', ' '], "_")
}

pub fn render(report: &Report) -> String {
    let versions = report.versions();
    let s = &report.summary;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<title>channel-conformance report</title>");
    out.push_str(&format!("<style>{STYLE}</style></head><body>\n"));
    out.push_str(&format!(
        "<h1>channel-conformance: {}</h1>\n<p>Plugin <code>{}</code>, trigger <code>{}</code>, {} {} · {}</p>\n",
        if report.exit.code == 0 { "PASS" } else { "FAIL" },
        escape(&report.plugin_command),
        escape(&report.trigger),
        escape(&report.harness.name),
        escape(&report.harness.version),
        escape(&report.started_at)
    ));
    out.push_str(&format!(
        "<p><b>{} success, {} failure ({} required, {} expected), {} warning, {} skipped</b> in {} ms. Exit {}: {}</p>\n",
        s.success, s.failure, s.required_failures, s.expected_failures, s.warning, s.skipped,
        report.duration_ms, report.exit.code, escape(&report.exit.reason)
    ));
    out.push_str(
        "<p class=\"small\">Legend: <span class=\"SUCCESS\">SUCCESS</span> \
         <span class=\"FAILURE\">FAILURE of a required check</span> \
         <span class=\"WARNING\">WARNING (or failure of a recommended check)</span> \
         <span class=\"EXPECTED\">expected failure (baseline)</span> \
         <span class=\"SKIPPED\">SKIPPED (hover for the reason)</span>. \
         Click a failure for its details and transcript excerpt.</p>\n",
    );
    out.push_str("<table><thead><tr><th>check</th><th>scenario</th>");
    for p in &report.profiles {
        out.push_str(&format!(
            "<th>Claude Code {}<br><span class=\"small\">requirements {}</span></th>",
            escape(&p.version),
            escape(&p.requirement_set)
        ));
    }
    out.push_str("<th>spec</th></tr></thead><tbody>\n");
    for check in report.check_ids() {
        out.push_str(&format!(
            "<tr><td><code>{}</code><br><span class=\"small\">{}</span></td><td>{}</td>",
            escape(check.id),
            escape(check.title),
            check.scenario.id()
        ));
        for v in &versions {
            match report.result(check.id, v) {
                Some(r) => {
                    let label = match class(r) {
                        "EXPECTED" => "FAILURE (expected)",
                        "WARNING" if r.status == Status::Failure => "FAILURE (recommended)",
                        other => other,
                    };
                    if matches!(r.status, Status::Failure | Status::Warning) {
                        out.push_str(&format!(
                            "<td class=\"cell {}\" title=\"{}\"><a href=\"#{}\">{}</a></td>",
                            class(r),
                            escape(&r.details),
                            anchor(r),
                            label
                        ));
                    } else {
                        out.push_str(&format!(
                            "<td class=\"cell {}\" title=\"{}\">{}</td>",
                            class(r),
                            escape(&r.details),
                            label
                        ));
                    }
                }
                None => out.push_str("<td class=\"cell\">—</td>"),
            }
        }
        out.push_str(&format!(
            "<td class=\"small\">{}</td></tr>\n",
            escape(check.spec)
        ));
    }
    out.push_str("</tbody></table>\n");

    let notable: Vec<_> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Failure | Status::Warning))
        .collect();
    if !notable.is_empty() {
        out.push_str("<h2>Failures and warnings</h2>\n");
        for r in notable {
            out.push_str(&format!(
                "<details id=\"{}\"><summary><span class=\"{}\">{}</span> <code>{}</code> under Claude Code {}</summary>\n",
                anchor(r),
                class(r),
                r.status.as_str(),
                escape(&r.id),
                escape(&r.profile)
            ));
            out.push_str(&format!(
                "<p>{}</p><p class=\"small\">spec: {}",
                escape(&r.details),
                escape(&r.spec)
            ));
            if let Some(t) = &r.transcript {
                // Relative link: the transcripts sit next to report.html.
                out.push_str(&format!(
                    " · transcript: <a href=\"{0}\"><code>{0}</code></a>",
                    escape(t)
                ));
            }
            out.push_str("</p>\n");
            if !r.excerpt.is_empty() {
                out.push_str("<pre>");
                for line in &r.excerpt {
                    out.push_str(&escape(line));
                    out.push('\n');
                }
                out.push_str("</pre>\n");
            }
            out.push_str("</details>\n");
        }
    }
    let skipped: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .collect();
    if !skipped.is_empty() {
        out.push_str("<details><summary>Skipped checks</summary><ul>\n");
        for r in skipped {
            out.push_str(&format!(
                "<li><code>{}</code> under {}: {}</li>\n",
                escape(&r.id),
                escape(&r.profile),
                escape(&r.details)
            ));
        }
        out.push_str("</ul></details>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_is_self_contained_and_links_failures_to_their_transcript() {
        let html = super::render(&crate::report::sample::report());
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains("<script")
        );
        assert!(html.contains("href=\"#handshake_capability-experimental--2_1_330\""));
        assert!(html.contains("<details id=\"handshake_capability-experimental--2_1_330\">"));
        assert!(html.contains("&quot;jsonrpc&quot;"), "excerpt is escaped");
        assert!(html.contains("FAILURE (recommended)") || html.contains("WARNING"));
    }
}
