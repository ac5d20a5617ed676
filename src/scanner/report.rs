//! Output formats of a local scan: a table for people, JSON for programs, SARIF 2.1.0
//! for code-scanning dashboards, CSV for spreadsheets.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::rules::Catalogue;
use crate::ledger::{Finding, ScanSummary, Severity};
use crate::worker::ScanReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Csv,
}

pub fn render(format: Format, report: &ScanReport, catalogue: &Catalogue) -> String {
    match format {
        Format::Table => table(report),
        Format::Json => {
            let v = json!({"summary": report.summary, "findings": report.findings});
            serde_json::to_string_pretty(&v).expect("serializable") + "\n"
        }
        Format::Sarif => {
            serde_json::to_string_pretty(&sarif(report, catalogue)).expect("serializable") + "\n"
        }
        Format::Csv => csv(&report.findings),
    }
}

/// `critical: 1, high: 3, ...` in severity order, zeros omitted.
pub fn severity_counts(summary: &ScanSummary) -> String {
    let parts: Vec<String> = Severity::ALL
        .iter()
        .filter_map(|s| {
            let n = summary.findings_by_severity.get(s.as_str()).copied()?;
            (n > 0).then(|| format!("{}: {n}", s.as_str()))
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn table(report: &ScanReport) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 4]> = report
        .findings
        .iter()
        .map(|f| {
            let sub = f
                .details
                .get("rule")
                .and_then(|r| r.as_str())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            [
                f.severity.as_str().to_uppercase(),
                f.rule_id.to_string(),
                format!("{}{sub}", f.resource_name),
                f.rule_name.to_string(),
            ]
        })
        .collect();
    let headers = ["SEVERITY", "RULE", "RESOURCE", "FINDING"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4], out: &mut String| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    if !rows.is_empty() {
        line(headers, &mut out);
        for row in &rows {
            line([&row[0], &row[1], &row[2], &row[3]], &mut out);
        }
        out.push('\n');
    }
    let s = &report.summary;
    let (mut indeterminate, mut errored) = (0, 0);
    for t in s.rules.values() {
        indeterminate += t.indeterminate;
        errored += t.errored;
    }
    let _ = writeln!(
        out,
        "{} resources, {} rules: {} findings ({}); {} indeterminate, {} errored; score {}",
        s.resources_seen,
        s.rules.len(),
        s.findings,
        severity_counts(s),
        indeterminate,
        errored,
        s.score.map_or("-".into(), |v| format!("{v:.1}")),
    );
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(findings: &[Finding]) -> String {
    let mut out = String::from(
        "severity,rule_id,rule_name,category,resource_id,resource_name,resource_type,fingerprint,details\n",
    );
    for f in findings {
        let fields = [
            f.severity.as_str().to_owned(),
            f.rule_id.to_string(),
            f.rule_name.to_string(),
            f.category.to_string(),
            f.resource_id.clone(),
            f.resource_name.clone(),
            f.resource_type.clone(),
            f.fingerprint.clone(),
            f.details.to_string(),
        ];
        let row: Vec<String> = fields.iter().map(|s| csv_field(s)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning reads `security-severity` (0.0–10.0) to rank results.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A SARIF 2.1.0 log with one run. Azure resources have no file location, so each
/// result has a logical location: the resource id.
pub fn sarif(report: &ScanReport, catalogue: &Catalogue) -> Value {
    let rules: Vec<Value> = catalogue
        .rules()
        .iter()
        .map(|r| {
            let m = &r.meta;
            let mut tags = vec![json!("security"), json!(m.category)];
            for (framework, ids) in &m.frameworks {
                for id in ids {
                    tags.push(json!(format!("{framework}:{id}")));
                }
            }
            json!({
                "id": m.id,
                "name": m.title,
                "shortDescription": {"text": m.title},
                "fullDescription": {"text": m.description},
                "help": {"text": m.remediation.text()},
                "defaultConfiguration": {"level": level(m.severity)},
                "properties": {
                    "security-severity": security_severity(m.severity),
                    "severity": m.severity.as_str(),
                    "tags": tags,
                    "resourceTypes": m.resource_types,
                },
            })
        })
        .collect();
    let index_of = |id: &str| catalogue.rules().iter().position(|r| r.meta.id == id);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.rule_id,
                "level": level(f.severity),
                "message": {"text": format!("{}: {}", f.resource_name, f.rule_name)},
                "locations": [{
                    "logicalLocations": [{
                        "name": f.resource_name,
                        "fullyQualifiedName": f.resource_id,
                        "kind": "resource",
                    }],
                }],
                "partialFingerprints": {"scanledger/v1": f.fingerprint},
                "properties": {
                    "severity": f.severity.as_str(),
                    "resourceType": f.resource_type,
                    "details": f.details,
                },
            });
            if let Some(i) = index_of(&f.rule_id) {
                result["ruleIndex"] = json!(i);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "scanledger",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/scanledger/scanledger",
                "rules": rules,
            }},
            "invocations": [{"executionSuccessful": true}],
            "results": results,
            "properties": {"summary": report.summary},
        }],
    })
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// docs/rules.md: generated, so it always matches the catalogue.
pub fn catalogue_markdown(catalogue: &Catalogue) -> String {
    let mut out = String::from(
        "# Rule catalogue\n\n\
         Generated by `scanledger rules list --format markdown > docs/rules.md`; do not edit by hand.\n\
         Frameworks: `cis_azure` = CIS Microsoft Azure Foundations Benchmark v2.1.0 control ids,\n\
         `nist_csf` = NIST Cybersecurity Framework 1.1 subcategories, `iso27001` = ISO/IEC 27001:2022 Annex A controls.\n\n",
    );
    let mut categories: Vec<&str> = catalogue
        .rules()
        .iter()
        .map(|r| r.meta.category.as_str())
        .collect();
    categories.sort();
    categories.dedup();
    out.push_str(&format!(
        "{} rules in {} categories.\n\n",
        catalogue.rules().len(),
        categories.len()
    ));
    for category in categories {
        out.push_str(&format!("## {category}\n\n"));
        out.push_str(
            "| id | severity | title | resource types | frameworks |\n|---|---|---|---|---|\n",
        );
        for r in catalogue
            .rules()
            .iter()
            .filter(|r| r.meta.category == category)
        {
            let m = &r.meta;
            let frameworks: Vec<String> = m
                .frameworks
                .iter()
                .filter(|(_, ids)| !ids.is_empty())
                .map(|(f, ids)| format!("{f}: {}", ids.join(", ")))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                m.id,
                m.severity.as_str(),
                md_cell(&m.title),
                md_cell(&m.resource_types.join(", ")),
                md_cell(&frameworks.join("; "))
            ));
        }
        out.push('\n');
        for r in catalogue
            .rules()
            .iter()
            .filter(|r| r.meta.category == category)
        {
            let m = &r.meta;
            out.push_str(&format!(
                "### {} — {}\n\n{}\n\n- Severity: {}\n- Rule: `rules/{}`\n- Portal: {}\n- CLI: `{}`\n",
                m.id,
                m.title,
                m.description,
                m.severity.as_str(),
                r.file.display(),
                m.remediation.portal,
                m.remediation.cli
            ));
            if !m.related.is_empty() {
                let related: Vec<String> = m.related.keys().map(|k| format!("`{k}`")).collect();
                out.push_str(&format!(
                    "- Reads related documents: {}\n",
                    related.join(", ")
                ));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
