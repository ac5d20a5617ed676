//! Output formats of a local scan: a table for people, JSON for programs, SARIF 2.1.0
//! for code-scanning dashboards, CSV for spreadsheets.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{json, Value};

use super::rules::Catalogue;
use crate::domain::{Finding, ScanSummary, Severity};
use crate::worker::ScanReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Csv,
}

/// Write the report. JSON, SARIF and CSV are streamed finding by finding: a large
/// tenant's report can be hundreds of MB, and it never exists whole in memory.
pub fn write(
    format: Format,
    report: &ScanReport,
    catalogue: &Catalogue,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    match format {
        Format::Table => out.write_all(table(report).as_bytes())?,
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Doc<'a> {
                summary: &'a ScanSummary,
                findings: &'a [Finding],
            }
            let doc = Doc {
                summary: &report.summary,
                findings: &report.findings,
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            out.write_all(b"\n")?;
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut out, &sarif(report, catalogue))?;
            out.write_all(b"\n")?;
        }
        Format::Csv => csv(&report.findings, &mut out)?,
    }
    out.flush()
}

/// The report as a string (tests, small reports).
pub fn render(format: Format, report: &ScanReport, catalogue: &Catalogue) -> String {
    let mut buf = Vec::new();
    write(format, report, catalogue, &mut buf).expect("writing to memory");
    String::from_utf8(buf).expect("UTF-8")
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
                .value()
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
        "{} resources, {} rules applied: {} findings ({}); {} indeterminate, {} errored; score {}",
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

fn csv(findings: &[Finding], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    out.write_all(
        b"severity,rule_id,rule_name,category,resource_id,resource_name,resource_type,fingerprint,details\n",
    )?;
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
            f.details.as_str().to_owned(),
        ];
        let row: Vec<String> = fields.iter().map(|s| csv_field(s)).collect();
        out.write_all(row.join(",").as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
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

/// SARIF results, serialized one finding at a time.
struct SarifResults<'a> {
    findings: &'a [Finding],
    index: std::collections::HashMap<&'a str, usize>,
}

impl serde::Serialize for SarifResults<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.findings.len()))?;
        for f in self.findings {
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
            if let Some(i) = self.index.get(&*f.rule_id) {
                result["ruleIndex"] = json!(i);
            }
            seq.serialize_element(&result)?;
        }
        seq.end()
    }
}

/// A SARIF 2.1.0 log with one run. Azure resources have no file location, so each
/// result has a logical location: the resource id.
fn sarif<'a>(report: &'a ScanReport, catalogue: &'a Catalogue) -> impl serde::Serialize + 'a {
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
    let results = SarifResults {
        findings: &report.findings,
        index: catalogue
            .rules()
            .iter()
            .enumerate()
            .map(|(i, r)| (r.meta.id.as_str(), i))
            .collect(),
    };
    #[derive(serde::Serialize)]
    struct Log<'a> {
        #[serde(rename = "$schema")]
        schema: &'static str,
        version: &'static str,
        runs: [Run<'a>; 1],
    }
    #[derive(serde::Serialize)]
    struct Run<'a> {
        tool: Value,
        invocations: Value,
        results: SarifResults<'a>,
        properties: Value,
    }
    Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [Run {
            tool: json!({"driver": {
                "name": "scanledger",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/scanledger/scanledger",
                "rules": rules,
            }}),
            invocations: json!([{"executionSuccessful": true}]),
            results,
            properties: json!({"summary": report.summary}),
        }],
    }
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
