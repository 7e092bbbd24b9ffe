//! `junit.xml`: one `<testsuite>` per scenario, one `<testcase>` per check ×
//! profile; failures carry their details and transcript excerpt. WARNINGs
//! pass (CI shows them in system-out); SKIPPED cases say why.

use super::{escape, Report};
use crate::catalogue::Scenario;
use crate::outcome::Status;

pub fn render(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total = report.results.len();
    let failures = report
        .results
        .iter()
        .filter(|r| counts_as_failure(r))
        .count();
    out.push_str(&format!(
        "<testsuites name=\"channel-conformance\" tests=\"{total}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        report.duration_ms as f64 / 1000.0
    ));
    for scenario in Scenario::ALL {
        let rows: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.scenario == scenario.id())
            .collect();
        if rows.is_empty() {
            continue;
        }
        let fails = rows.iter().filter(|r| counts_as_failure(r)).count();
        let skipped = rows.iter().filter(|r| r.status == Status::Skipped).count();
        let time: u64 = rows.iter().map(|r| r.duration_ms).sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">\n",
            scenario.id(),
            rows.len(),
            time as f64 / 1000.0
        ));
        for r in rows {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{} [claude-code {}]\" time=\"{:.3}\"",
                escape(&r.scenario),
                escape(&r.id),
                escape(&r.profile),
                r.duration_ms as f64 / 1000.0
            ));
            let body = format!("{}\nspec: {}", r.details, r.spec);
            match r.status {
                _ if counts_as_failure(r) => {
                    out.push_str(">\n");
                    out.push_str(&format!(
                        "      <failure message=\"{}\" type=\"FAILURE\">{}{}</failure>\n",
                        escape(&r.details),
                        escape(&body),
                        escape(&excerpt(r))
                    ));
                    out.push_str("    </testcase>\n");
                }
                Status::Skipped => {
                    out.push_str(&format!(
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        escape(&r.details)
                    ));
                }
                Status::Failure | Status::Warning => {
                    // Recommended-only failures, warnings, expected failures.
                    let label = if r.expected_failure {
                        "expected failure (baseline)"
                    } else if r.status == Status::Failure {
                        "FAILURE of a recommended check"
                    } else {
                        "WARNING"
                    };
                    out.push_str(&format!(
                        ">\n      <system-out>{}: {}{}</system-out>\n    </testcase>\n",
                        label,
                        escape(&body),
                        escape(&excerpt(r))
                    ));
                }
                Status::Success => out.push_str("/>\n"),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn counts_as_failure(r: &crate::outcome::CheckResult) -> bool {
    r.status == Status::Failure && r.required && !r.expected_failure
}

fn excerpt(r: &crate::outcome::CheckResult) -> String {
    if r.excerpt.is_empty() {
        return String::new();
    }
    let mut s = String::from("\ntranscript");
    if let Some(t) = &r.transcript {
        s.push_str(&format!(" ({t})"));
    }
    s.push_str(":\n");
    for line in &r.excerpt {
        s.push_str(line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn failures_carry_details_and_excerpt() {
        let xml = super::render(&crate::report::sample::report());
        assert!(
            xml.contains("<testsuite name=\"handshake\" tests=\"4\" failures=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("declared at the &lt;top&gt; level &amp; ignored"),
            "{xml}"
        );
        assert!(xml.contains("<skipped message=\"no trigger\"/>"), "{xml}");
        assert!(
            xml.contains("transcript (transcripts/2.1.330/handshake.ndjson)"),
            "{xml}"
        );
    }
}
