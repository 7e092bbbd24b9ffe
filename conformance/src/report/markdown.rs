//! `summary.md`: short enough for a CI step summary
//! (`cat summary.md >> $GITHUB_STEP_SUMMARY`): the verdict, a matrix of
//! checks × versions, then the details of every failure and warning.

use super::Report;
use crate::outcome::Status;

pub fn render(report: &Report) -> String {
    let versions = report.versions();
    let s = &report.summary;
    let mut out = format!(
        "# channel-conformance: {}\n\nPlugin `{}`, trigger `{}`, Claude Code {}.\n\n**{} success, {} failure ({} required, {} expected), {} warning, {} skipped** — exit {}: {}\n\n",
        if report.exit.code == 0 { "PASS" } else { "FAIL" },
        report.plugin_command.replace('`', "'"),
        report.trigger.replace('`', "'"),
        versions.join(", "),
        s.success,
        s.failure,
        s.required_failures,
        s.expected_failures,
        s.warning,
        s.skipped,
        report.exit.code,
        report.exit.reason
    );
    out.push_str("| check |");
    for v in &versions {
        out.push_str(&format!(" {v} |"));
    }
    out.push_str("\n|---|");
    for _ in &versions {
        out.push_str("---|");
    }
    out.push('\n');
    for check in report.check_ids() {
        out.push_str(&format!("| `{}` |", check.id));
        for v in &versions {
            let cell = match report.result(check.id, v) {
                Some(r) => match (r.status, r.expected_failure, r.required) {
                    (Status::Success, ..) => "✅".to_string(),
                    (Status::Failure, true, _) => "❌ expected".to_string(),
                    (Status::Failure, false, true) => "❌".to_string(),
                    (Status::Failure, false, false) => "⚠️ (recommended)".to_string(),
                    (Status::Warning, ..) => "⚠️".to_string(),
                    (Status::Skipped, ..) => "⏭️".to_string(),
                },
                None => "—".to_string(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    let notable: Vec<_> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Failure | Status::Warning))
        .collect();
    if !notable.is_empty() {
        out.push_str("\n## Failures and warnings\n\n");
        for r in notable {
            out.push_str(&format!(
                "- **{}** `{}` under {}: {} _(spec: {})_\n",
                r.status.as_str(),
                r.id,
                r.profile,
                r.details.replace('\n', " "),
                r.spec
            ));
        }
    }
    if !report.stale_baseline.is_empty() {
        out.push_str("\n## Stale baseline entries\n\n");
        for e in &report.stale_baseline {
            out.push_str(&format!("- `{e}`\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn matrix_has_a_row_per_check_and_a_column_per_version() {
        let md = super::render(&crate::report::sample::report());
        assert!(md.contains("| check | 2.1.80 | 2.1.330 |"), "{md}");
        assert!(
            md.contains("| `handshake.capability-experimental` | ✅ | ❌ |"),
            "{md}"
        );
        assert!(
            md.contains("**FAILURE** `handshake.capability-experimental` under 2.1.330"),
            "{md}"
        );
    }
}
