//! Reports of a scan: a table for people, JSON for programs, SARIF 2.1.0 for
//! code-scanning services, CSV for spreadsheets, OCSF Detection Findings for SIEMs.
//!
//! One [`Writer`] serves the CLI and the API: it takes the findings one at a time and
//! writes as it goes (all formats but the table), so a report of a large tenant never
//! exists whole in memory, and the API can page findings from the database into it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::rules::Catalogue;
use crate::domain::governance::{Mute, MuteList};
use crate::domain::{Finding, ScanSummary, Severity};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Csv,
    /// OCSF 1.x Detection Findings (class 2004), one JSON object per line.
    Ocsf,
}

impl Format {
    /// The media type a report of this format is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Table => "text/plain; charset=utf-8",
            Self::Json => "application/json",
            Self::Sarif => "application/sarif+json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ocsf => "application/x-ndjson",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Table => "txt",
            Self::Json => "json",
            Self::Sarif => "sarif",
            Self::Csv => "csv",
            Self::Ocsf => "ocsf.jsonl",
        }
    }
}

/// The OCSF schema version the `ocsf` format follows (it has the `Azure Subscription`
/// account type, added in 1.4.0).
pub const OCSF_VERSION: &str = "1.6.0";

/// GitHub code scanning rejects a run with more results than this; the SARIF report
/// keeps the first ones (scans order findings worst first) and says how many it left out.
pub const SARIF_MAX_RESULTS: usize = 25_000;
/// GitHub code scanning rejects a rule with more tags than this.
pub const SARIF_MAX_TAGS: usize = 20;

/// What a report says besides its findings.
#[derive(Clone, Debug)]
pub struct Header {
    /// The scanned subscription (canonical form).
    pub subscription: String,
    /// When the scan completed: the OCSF event time of findings without their own.
    pub completed_at: DateTime<Utc>,
    pub summary: ScanSummary,
    /// Mutes to mark findings with (empty: none is marked).
    pub mutes: Arc<MuteList>,
}

/// What [`Writer::finish`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Finished {
    pub findings: u64,
    /// Findings beyond [`SARIF_MAX_RESULTS`] that a SARIF report left out.
    pub sarif_omitted: u64,
}

/// Writes one report, finding by finding.
pub struct Writer<W: Write> {
    format: Format,
    header: Header,
    out: W,
    count: u64,
    table: Vec<[String; 4]>,
    sarif: SarifRules,
    rule_json: RuleJson,
}

#[derive(Default)]
struct SarifRules {
    rules: Vec<Value>,
    index: HashMap<String, usize>,
    omitted: u64,
}

impl<W: Write> Writer<W> {
    /// Start a report: writes what comes before the findings.
    pub fn start(format: Format, header: Header, mut out: W) -> std::io::Result<Self> {
        match format {
            Format::Table | Format::Ocsf => {}
            Format::Json => {
                out.write_all(b"{\n  \"summary\": ")?;
                pretty_at(&mut out, &header.summary, 2)?;
                out.write_all(b",\n  \"findings\": [")?;
            }
            Format::Sarif => {
                // `results` comes first in the run: the rules are known only once every
                // result is written (JSON members have no order; SARIF asks none).
                out.write_all(
                    b"{\n  \"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\",\n  \
                      \"version\": \"2.1.0\",\n  \"runs\": [\n    {\n      \"results\": [",
                )?;
            }
            Format::Csv => out.write_all(CSV_HEADER)?,
        }
        Ok(Self {
            format,
            header,
            out,
            count: 0,
            table: Vec::new(),
            sarif: SarifRules::default(),
            rule_json: RuleJson::default(),
        })
    }

    /// The sink, e.g. to take what has been written so far out of a `Vec<u8>`.
    pub fn sink(&mut self) -> &mut W {
        &mut self.out
    }

    /// Add one finding.
    pub fn push(&mut self, f: &Finding) -> std::io::Result<()> {
        match self.format {
            Format::Table => {
                let mut row = table_row(f);
                if self.header.mutes.mute_for(f).is_some() {
                    row[0].push_str(" (muted)");
                }
                self.table.push(row)
            }
            Format::Sarif => {
                let mute = self.header.mutes.mute_for(f);
                let written = self.count - self.sarif.omitted;
                if written as usize >= SARIF_MAX_RESULTS {
                    self.sarif.omitted += 1;
                } else {
                    let mut result = sarif_result(f, &mut self.sarif);
                    if let Some(m) = mute {
                        // SARIF's own word for a muted result; code scanning shows it
                        // as dismissed.
                        result["suppressions"] = json!([{
                            "kind": "external",
                            "status": "accepted",
                            "justification": m.reason,
                        }]);
                    }
                    self.out.write_all(if written == 0 {
                        b"\n        "
                    } else {
                        b",\n        "
                    })?;
                    pretty_at(&mut self.out, &result, 8)?;
                }
            }
            Format::Json | Format::Csv | Format::Ocsf => {
                let first = self.count == 0;
                encode(
                    self.format,
                    &self.header,
                    f,
                    first,
                    &mut self.rule_json,
                    &mut self.out,
                )?
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Add many findings. JSON, CSV and OCSF encode each finding on its own, so a large
    /// report is encoded in blocks on every core and written in order (encoding is most
    /// of the time a large report takes); memory stays at a few blocks per core.
    pub fn push_all(&mut self, findings: &[Finding]) -> std::io::Result<()> {
        const BLOCK: usize = 512;
        let encoders = std::thread::available_parallelism().map_or(1, |n| n.get());
        let independent = matches!(self.format, Format::Json | Format::Csv | Format::Ocsf);
        if !independent || encoders < 2 || findings.len() < 4 * BLOCK {
            return findings.iter().try_for_each(|f| self.push(f));
        }
        let blocks: Vec<&[Finding]> = findings.chunks(BLOCK).collect();
        let (format, header, out, before) = (self.format, &self.header, &mut self.out, self.count);
        std::thread::scope(|scope| {
            let receivers: Vec<_> = (0..encoders)
                .map(|k| {
                    // One encoded block may wait per encoder; a dropped receiver (the
                    // writer failed) ends the encoder at its next send.
                    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(1);
                    let blocks = &blocks;
                    scope.spawn(move || {
                        let mut rules = RuleJson::default();
                        for (b, block) in blocks.iter().enumerate().skip(k).step_by(encoders) {
                            let mut buf = Vec::with_capacity(block.len() * 1536);
                            let encoded = block.iter().enumerate().try_for_each(|(j, f)| {
                                let first = before == 0 && b == 0 && j == 0;
                                encode(format, header, f, first, &mut rules, &mut buf)
                            });
                            if tx.send(encoded.map(|()| buf)).is_err() {
                                return;
                            }
                        }
                    });
                    rx
                })
                .collect();
            for b in 0..blocks.len() {
                let encoded = receivers[b % encoders]
                    .recv()
                    .expect("an encoder sends every block it is given")?;
                out.write_all(&encoded)?;
            }
            Ok::<(), std::io::Error>(())
        })?;
        self.count += findings.len() as u64;
        Ok(())
    }

    /// Write what comes after the findings; returns the sink and what was written.
    pub fn finish(mut self) -> std::io::Result<(W, Finished)> {
        let finished = Finished {
            findings: self.count,
            sarif_omitted: self.sarif.omitted,
        };
        match self.format {
            Format::Table => {
                let text = table(&self.table, &self.header.summary);
                self.out.write_all(text.as_bytes())?;
            }
            Format::Json => {
                self.out.write_all(if self.count == 0 {
                    b"]\n}\n"
                } else {
                    b"\n  ]\n}\n"
                })?;
            }
            Format::Sarif => {
                let written = self.count - self.sarif.omitted;
                self.out
                    .write_all(if written == 0 { b"]" } else { b"\n      ]" })?;
                let rest = sarif_run_tail(&self.header, std::mem::take(&mut self.sarif));
                for (key, value) in rest {
                    write!(self.out, ",\n      {}: ", Value::String(key.into()))?;
                    pretty_at(&mut self.out, &value, 6)?;
                }
                self.out.write_all(b"\n    }\n  ]\n}\n")?;
            }
            Format::Csv | Format::Ocsf => {}
        }
        self.out.flush()?;
        Ok((self.out, finished))
    }
}

/// One finding of a format whose findings are independent (JSON, CSV, OCSF), with what
/// separates it from the previous one.
fn encode(
    format: Format,
    header: &Header,
    f: &Finding,
    first: bool,
    rules: &mut RuleJson,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mute = header.mutes.mute_for(f);
    match format {
        Format::Json => {
            out.write_all(if first { b"\n    " } else { b",\n    " })?;
            match mute {
                None => rules.finding(f, out),
                Some(m) => {
                    let mut v = serde_json::to_value(f)?;
                    v["muted"] = mute_mark(m);
                    pretty_at(out, &v, 4)
                }
            }
        }
        Format::Csv => csv_row(f, mute, out),
        Format::Ocsf => {
            let mut event = ocsf(f, header);
            if mute.is_some() {
                event["status_id"] = 3.into();
                event["status"] = "Suppressed".into();
            }
            serde_json::to_writer(&mut *out, &event)?;
            out.write_all(b"\n")
        }
        Format::Table | Format::Sarif => unreachable!("{format:?} findings are not independent"),
    }
}

/// A finding as `serde_json::to_vec_pretty` writes it, nested four spaces deep (what
/// [`pretty_at`] would write), without re-encoding what every finding of a rule repeats:
/// its name, description, remediation and frameworks are escaped once per rule.
/// Escaping them for each of 300,000 findings was most of a large report's encoding.
#[derive(Default)]
struct RuleJson {
    encoded: HashMap<Arc<str>, EncodedRule>,
}

/// A rule, and its fields as they appear in a finding: those between `fingerprint` and
/// `resource_id` (`head`), and those between `resource_type` and `details` (`tail`).
struct EncodedRule {
    rule: Arc<crate::domain::FindingRule>,
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// Between two members of a finding nested four deep.
const NEXT: &[u8] = b",\n      ";

impl RuleJson {
    fn finding(&mut self, f: &Finding, out: &mut impl Write) -> std::io::Result<()> {
        let EncodedRule { head, tail, .. } = self.rule(&f.rule)?;
        out.write_all(b"{\n      \"fingerprint\": ")?;
        json_str(out, &f.fingerprint)?;
        out.write_all(NEXT)?;
        out.write_all(head)?;
        out.write_all(b"\"resource_id\": ")?;
        json_str(out, &f.resource_id)?;
        out.write_all(NEXT)?;
        out.write_all(b"\"resource_name\": ")?;
        json_str(out, &f.resource_name)?;
        out.write_all(NEXT)?;
        out.write_all(b"\"resource_type\": ")?;
        json_str(out, &f.resource_type)?;
        out.write_all(NEXT)?;
        out.write_all(tail)?;
        // Compact JSON text, which the pretty printer copies as it is.
        out.write_all(b"\"details\": ")?;
        out.write_all(f.details.as_str().as_bytes())?;
        if let Some(t) = &f.detected_at {
            out.write_all(NEXT)?;
            out.write_all(b"\"detected_at\": ")?;
            serde_json::to_writer(&mut *out, t)?;
        }
        out.write_all(b"\n    }")
    }

    /// The rule's encoded fields; encoded again if a rule of the same id differs (two
    /// catalogues in one report, or findings read back from the ledger).
    fn rule(&mut self, rule: &Arc<crate::domain::FindingRule>) -> std::io::Result<&EncodedRule> {
        let fresh = match self.encoded.get(&rule.id) {
            Some(e) => !(Arc::ptr_eq(&e.rule, rule) || *e.rule == **rule),
            None => true,
        };
        if fresh {
            let mut head = Vec::new();
            for (key, value) in [
                ("rule_id", &*rule.id),
                ("rule_name", &*rule.name),
                ("severity", rule.severity.as_str()),
                ("category", &*rule.category),
            ] {
                write!(head, "\"{key}\": ")?;
                serde_json::to_writer(&mut head, value)?;
                head.extend_from_slice(NEXT);
            }
            let mut tail = Vec::new();
            for (key, value) in [
                ("description", &*rule.description),
                ("remediation", &*rule.remediation),
            ] {
                write!(tail, "\"{key}\": ")?;
                serde_json::to_writer(&mut tail, value)?;
                tail.extend_from_slice(NEXT);
            }
            tail.extend_from_slice(b"\"frameworks\": ");
            pretty_at(&mut tail, &*rule.frameworks, 6)?;
            tail.extend_from_slice(NEXT);
            let rule = rule.clone();
            self.encoded
                .insert(rule.id.clone(), EncodedRule { rule, head, tail });
        }
        Ok(&self.encoded[&*rule.id])
    }
}

/// `s` as a JSON string, as `serde_json` writes it. Ids, names and fingerprints need no
/// escape: their bytes are copied at once instead of serde's byte-by-byte escaping (most
/// of a large report's encoding after the rules' text, which is escaped once per rule).
fn json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    // A fold without an early exit, so the check runs on whole vectors of bytes.
    let plain = !s.bytes().fold(false, |bad, b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.write_all(b"\"")?;
        out.write_all(s.as_bytes())?;
        out.write_all(b"\"")
    } else {
        serde_json::to_writer(&mut *out, s).map_err(std::io::Error::from)
    }
}

/// Write a whole report of `findings`.
pub fn write(
    format: Format,
    header: Header,
    findings: &[Finding],
    out: &mut dyn Write,
) -> std::io::Result<Finished> {
    let out = std::io::BufWriter::with_capacity(1 << 16, out);
    let mut w = Writer::start(format, header, out)?;
    w.push_all(findings)?;
    w.finish().map(|(_, finished)| finished)
}

/// The report as a string (tests, small reports).
pub fn render(format: Format, header: Header, findings: &[Finding]) -> String {
    let mut buf = Vec::new();
    write(format, header, findings, &mut buf).expect("writing to memory");
    String::from_utf8(buf).expect("UTF-8")
}

/// `value` pretty-printed as if nested `indent` spaces deep. JSON strings hold no raw
/// newline, so every newline of the text is a line break of the layout.
fn pretty_at<W: Write, T: Serialize + ?Sized>(
    out: &mut W,
    value: &T,
    indent: usize,
) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(value)?;
    let pad = " ".repeat(indent);
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
            out.write_all(pad.as_bytes())?;
        }
        out.write_all(line)?;
    }
    Ok(())
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

fn table_row(f: &Finding) -> [String; 4] {
    let sub = f
        .details
        .value()
        .get("rule")
        .and_then(|r| r.as_str())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    [
        f.rule.severity.as_str().to_uppercase(),
        f.rule.id.to_string(),
        format!("{}{sub}", f.resource_name),
        f.rule.name.to_string(),
    ]
}

fn table(rows: &[[String; 4]], s: &ScanSummary) -> String {
    let mut out = String::new();
    let headers = ["SEVERITY", "RULE", "RESOURCE", "FINDING"];
    let mut widths = headers.map(str::len);
    for row in rows {
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
        for row in rows {
            line([&row[0], &row[1], &row[2], &row[3]], &mut out);
        }
        out.push('\n');
    }
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
    if s.resources_seen == 0 {
        let _ = writeln!(
            out,
            "no resource was seen for the subscription: nothing was checked"
        );
    }
    out
}

const CSV_HEADER: &[u8] =
    b"severity,rule_id,rule_name,category,resource_id,resource_name,resource_type,fingerprint,details,muted_by\n";

/// One CSV cell. A cell a spreadsheet would read as a formula (starting with `=`, `+`,
/// `-`, `@`, tab or carriage return: OWASP's CSV injection list) gets a leading `'`,
/// which spreadsheets show as text; then the usual RFC 4180 quoting.
pub(crate) fn csv_field(s: &str) -> String {
    let guarded;
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{s}");
        guarded.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_row(f: &Finding, mute: Option<&Mute>, out: &mut dyn Write) -> std::io::Result<()> {
    let muted_by = mute.map(|m| m.mute_id.to_string()).unwrap_or_default();
    let fields: [&str; 10] = [
        f.rule.severity.as_str(),
        &f.rule.id,
        &f.rule.name,
        &f.rule.category,
        &f.resource_id,
        &f.resource_name,
        &f.resource_type,
        &f.fingerprint,
        f.details.as_str(),
        &muted_by,
    ];
    let row: Vec<String> = fields.iter().map(|s| csv_field(s)).collect();
    out.write_all(row.join(",").as_bytes())?;
    out.write_all(b"\n")
}

/// How a muted finding is marked in JSON outputs.
pub fn mute_mark(m: &Mute) -> Value {
    serde_json::to_value(crate::domain::governance::MuteMark::from(m)).expect("serializes")
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

/// The base every SARIF artifact URI is relative to: resolved, a result's location is
/// `azure:///subscriptions/…`. Written relative because GitHub rejects an upload whose
/// absolute URIs have another scheme than its source root (`file:` in Actions).
const SARIF_URI_BASE: &str = "AZURE";

/// Characters kept as they are in a resource id's URI path: RFC 3986's unreserved ones
/// and the separator.
const URI_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A resource id as a URI path relative to `azure:///`. Lower-cased: ARM ids are
/// case-insensitive and ARM spells one id in several cases, while GitHub keys alerts by
/// path.
pub fn resource_uri_path(resource_id: &str) -> String {
    let id = resource_id.trim_start_matches('/').to_ascii_lowercase();
    percent_encoding::utf8_percent_encode(&id, URI_PATH).to_string()
}

/// `s` cut to `max` characters (GitHub's limits on rule texts).
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => {
            let mut cut = s[..at].to_string();
            cut.pop();
            cut.push('…');
            cut
        }
        None => s.to_string(),
    }
}

/// The first of `texts` that is not blank (GitHub refuses empty required texts; imported
/// findings may lack a description or remediation).
fn first_text<'a>(texts: &[&'a str]) -> &'a str {
    texts
        .iter()
        .copied()
        .find(|t| !t.trim().is_empty())
        .unwrap_or("-")
}

/// The rule of `f`, as a SARIF reporting descriptor. Reports are built from findings
/// alone (the API has no rule catalogue), so a rule appears when it has a result.
fn sarif_rule(f: &Finding) -> Value {
    let mut tags = vec!["security".to_string(), f.rule.category.to_string()];
    if let Some(frameworks) = f.rule.frameworks.as_object() {
        for (framework, ids) in frameworks {
            for id in ids.as_array().into_iter().flatten() {
                if let Some(id) = id.as_str() {
                    tags.push(format!("{framework}:{id}"));
                }
            }
        }
    }
    tags.dedup();
    tags.truncate(SARIF_MAX_TAGS);
    let title = first_text(&[&f.rule.name, &f.rule.id]);
    json!({
        "id": f.rule.id,
        "name": clip(title, 255),
        "shortDescription": {"text": clip(title, 1024)},
        "fullDescription": {"text": clip(first_text(&[&f.rule.description, title]), 1024)},
        "help": {"text": first_text(&[&f.rule.remediation, &f.rule.description, title])},
        "defaultConfiguration": {"level": level(f.rule.severity)},
        "properties": {
            "security-severity": security_severity(f.rule.severity),
            "severity": f.rule.severity.as_str(),
            "category": f.rule.category,
            "tags": tags,
        },
    })
}

fn sarif_result(f: &Finding, rules: &mut SarifRules) -> Value {
    let index = match rules.index.get(&*f.rule.id) {
        Some(i) => *i,
        None => {
            rules.rules.push(sarif_rule(f));
            rules
                .index
                .insert(f.rule.id.to_string(), rules.rules.len() - 1);
            rules.rules.len() - 1
        }
    };
    json!({
        "ruleId": f.rule.id,
        "ruleIndex": index,
        "level": level(f.rule.severity),
        "message": {"text": format!("{}: {}", f.resource_name, f.rule.name)},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {
                    "uri": resource_uri_path(&f.resource_id),
                    "uriBaseId": SARIF_URI_BASE,
                },
                // GitHub requires a region; a resource has no lines, so its first one.
                "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
            },
            "logicalLocations": [{
                "name": f.resource_name,
                "fullyQualifiedName": f.resource_id,
                "kind": "resource",
            }],
        }],
        // GitHub matches alerts across uploads by `primaryLocationLineHash` only; the
        // finding fingerprint is that identity here (the same misconfiguration on the
        // same resource), so it fills both keys.
        "partialFingerprints": {
            "primaryLocationLineHash": f.fingerprint,
            "scanledger/v1": f.fingerprint,
        },
        "properties": {
            "severity": f.rule.severity.as_str(),
            "resourceType": f.resource_type,
            "details": f.details,
        },
    })
}

/// The members of the run after `results`, in order.
fn sarif_run_tail(header: &Header, rules: SarifRules) -> Vec<(&'static str, Value)> {
    let mut notifications = Vec::new();
    if rules.omitted > 0 {
        notifications.push(json!({
            "level": "warning",
            "message": {"text": format!(
                "{} findings are left out: GitHub code scanning accepts at most {SARIF_MAX_RESULTS} \
                 results per run. The JSON, CSV and OCSF reports hold every finding.",
                rules.omitted
            )},
        }));
    }
    let mut invocation = json!({"executionSuccessful": true});
    if !notifications.is_empty() {
        invocation["toolExecutionNotifications"] = Value::Array(notifications);
    }
    vec![
        (
            "tool",
            json!({"driver": {
                "name": "scanledger",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules.rules,
            }}),
        ),
        (
            "originalUriBaseIds",
            json!({SARIF_URI_BASE: {
                "uri": "azure:///",
                "description": {"text": "Azure Resource Manager: a result's path is its resource id."},
            }}),
        ),
        // One analysis category per subscription, so reports of several subscriptions
        // can be uploaded for one commit.
        (
            "automationDetails",
            json!({"id": format!("scanledger/{}/", header.subscription)}),
        ),
        ("invocations", json!([invocation])),
        (
            "properties",
            json!({
                "subscription": header.subscription,
                "omittedResults": rules.omitted,
                "summary": header.summary,
            }),
        ),
    ]
}

/// OCSF `severity_id` and its caption.
fn ocsf_severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// One finding as an OCSF Detection Finding (class 2004) with the cloud profile; the
/// mapping is in docs/api.md ("Report formats").
fn ocsf(f: &Finding, header: &Header) -> Value {
    let (severity_id, severity) = ocsf_severity(f.rule.severity);
    let time = f.detected_at.unwrap_or(header.completed_at);
    let title = first_text(&[&f.rule.name, &f.rule.id]);
    let mut finding_info = json!({
        "uid": f.fingerprint,
        "title": title,
        "types": [f.rule.category],
        "analytic": {"uid": f.rule.id, "name": title, "type_id": 1, "type": "Rule"},
    });
    if !f.rule.description.trim().is_empty() {
        finding_info["desc"] = json!(f.rule.description);
    }
    let mut event = json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "time": time.timestamp_millis(),
        "message": format!("{}: {}", f.resource_name, title),
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "scanledger",
                "vendor_name": "scanledger",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "profiles": ["cloud"],
        },
        "finding_info": finding_info,
        "cloud": {
            "provider": "Azure",
            "account": {"uid": header.subscription, "type_id": 13, "type": "Azure Subscription"},
        },
        "resources": [{
            "uid": f.resource_id,
            "name": f.resource_name,
            "type": f.resource_type,
        }],
        "unmapped": {
            "frameworks": f.rule.frameworks,
            "details": f.details,
        },
    });
    if !f.rule.remediation.trim().is_empty() {
        event["remediation"] = json!({"desc": f.rule.remediation});
    }
    event
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
         `cis_v3` = the same benchmark's v3.0.0 control ids (v3 renumbers every section),\n\
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
    use std::sync::Arc;

    use super::*;

    fn finding(resource_name: &str, details: Value) -> Finding {
        Finding {
            fingerprint: Finding::fingerprint("AZ-T-001", "/subscriptions/s/x", resource_name),
            rule: Arc::new(crate::domain::FindingRule {
                id: "AZ-T-001".into(),
                name: "A test rule".into(),
                severity: Severity::High,
                category: "network".into(),
                description: "d".into(),
                remediation: "r".into(),
                frameworks: Arc::new(json!({"cis_azure": ["1.1"]})),
            }),
            resource_id: format!(
                "/subscriptions/S/resourceGroups/RG/providers/T/x/{resource_name}"
            )
            .into(),
            resource_name: resource_name.into(),
            resource_type: "T/x".into(),
            details: details.into(),
            detected_at: None,
        }
    }

    fn header() -> Header {
        Header {
            subscription: "6f1c1a9e-5d7b-4c2e-9a41-0d3e5f7a9b10".into(),
            completed_at: DateTime::UNIX_EPOCH,
            summary: ScanSummary::default(),
            mutes: Default::default(),
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_as_formulas_are_text() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "\"'\rcmd\""),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(csv_field(cell), want, "{cell:?}");
        }
        // Through the whole writer: a resource named like a formula.
        let csv = render(
            Format::Csv,
            header(),
            &[finding("=cmd|' /C calc'!A0", json!({}))],
        );
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains(",'=cmd|' /C calc'!A0,"), "{row}");
        assert!(!row.split(',').any(|c| c.starts_with('=')), "{row}");
    }

    #[test]
    fn resource_ids_become_lower_case_uri_paths() {
        assert_eq!(
            resource_uri_path("/subscriptions/ABC/resourceGroups/My RG/providers/A.B/c/n#1"),
            "subscriptions/abc/resourcegroups/my%20rg/providers/a.b/c/n%231"
        );
    }

    #[test]
    fn sarif_keeps_githubs_result_limit_and_says_what_it_left_out() {
        let findings: Vec<Finding> = (0..SARIF_MAX_RESULTS + 3)
            .map(|i| finding(&format!("r{i}"), json!({})))
            .collect();
        let mut w = Writer::start(Format::Sarif, header(), Vec::new()).unwrap();
        for f in &findings {
            w.push(f).unwrap();
        }
        let (out, finished) = w.finish().unwrap();
        assert_eq!(finished.sarif_omitted, 3);
        let log: Value = serde_json::from_slice(&out).unwrap();
        let run = &log["runs"][0];
        assert_eq!(run["results"].as_array().unwrap().len(), SARIF_MAX_RESULTS);
        assert_eq!(run["properties"]["omittedResults"], 3);
        let note = run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap();
        assert!(note.starts_with("3 findings are left out"), "{note}");
    }

    #[test]
    fn sarif_rules_keep_githubs_tag_and_text_limits() {
        let mut f = finding("r", json!({}));
        let ids: Vec<String> = (0..40).map(|i| format!("{i}.1")).collect();
        Arc::make_mut(&mut f.rule).frameworks = Arc::new(json!({ "cis_azure": ids }));
        Arc::make_mut(&mut f.rule).name = "t".repeat(2000).into();
        Arc::make_mut(&mut f.rule).description = "".into();
        let rule = sarif_rule(&f);
        assert_eq!(
            rule["properties"]["tags"].as_array().unwrap().len(),
            SARIF_MAX_TAGS
        );
        assert_eq!(rule["name"].as_str().unwrap().chars().count(), 255);
        let short = rule["shortDescription"]["text"].as_str().unwrap();
        assert_eq!(short.chars().count(), 1024);
        // An empty description falls back to the title: GitHub refuses empty texts.
        assert_eq!(
            rule["fullDescription"]["text"],
            rule["shortDescription"]["text"]
        );
    }

    #[test]
    fn an_empty_report_is_well_formed_in_every_streamed_format() {
        for format in [Format::Json, Format::Sarif] {
            let text = render(format, header(), &[]);
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{format:?}: {e}\n{text}"));
        }
        assert_eq!(render(Format::Ocsf, header(), &[]), "");
        assert_eq!(render(Format::Csv, header(), &[]).lines().count(), 1);
    }

    #[test]
    fn streamed_json_is_what_serde_pretty_prints() {
        let mut odd = finding("c\"\n", json!({"s": "x\u{1}é"}));
        odd.detected_at = Some(DateTime::UNIX_EPOCH);
        let rule = Arc::make_mut(&mut odd.rule);
        rule.description = "quotes \" and\nnewlines, é and 😀 \\ \u{7f}".into();
        rule.frameworks = Arc::new(json!({}));
        rule.severity = Severity::Critical;
        // Same rule id, other content: encoded again, not taken from the first finding.
        // Each kind of byte that needs an escape alone in a string written without serde
        // (ids, names, types), beside bytes that do not.
        let mut escapes = Vec::new();
        for odd in ["back\\slash/", "quote\"é", "tab\t\u{7f}", "\u{0}", "\u{1f}"] {
            let mut f = finding(odd, json!(null));
            f.resource_type = format!("T/{odd}").into();
            escapes.push(f);
        }
        let mut findings = vec![
            finding("a", json!({"port": 22})),
            odd,
            finding("b", json!([1, 2])),
        ];
        findings.extend(escapes);
        let text = render(Format::Json, header(), &findings);
        #[derive(Serialize)]
        struct Doc<'a> {
            summary: ScanSummary,
            findings: &'a [Finding],
        }
        let want = serde_json::to_string_pretty(&Doc {
            summary: ScanSummary::default(),
            findings: &findings,
        })
        .unwrap();
        assert_eq!(text, want + "\n");
    }

    /// A large report is encoded in blocks on several threads: byte for byte what
    /// encoding it finding by finding gives, muted findings included.
    #[test]
    fn a_large_report_encoded_in_parallel_is_what_one_thread_writes() {
        use crate::domain::governance::{Mute, MuteList, MuteSelector};
        let findings: Vec<Finding> = (0..5000)
            .map(|i| finding(&format!("r{i:05}"), json!({"i": i, "text": "a,\"b\"\n"})))
            .collect();
        let mute = Mute {
            mute_id: uuid::Uuid::nil(),
            selector: MuteSelector::Rule {
                rule_id: "AZ-T-001".into(),
                resource_pattern: "*/r03*".into(),
            },
            reason: "accepted".into(),
            created_by: "test".into(),
            created_at: DateTime::UNIX_EPOCH,
            expires_at: None,
            removed_at: None,
            removed_by: None,
            version: 1,
        };
        let muting = Header {
            mutes: Arc::new(MuteList::active(&[mute], DateTime::UNIX_EPOCH)),
            ..header()
        };
        for format in [Format::Json, Format::Csv, Format::Ocsf] {
            let mut w = Writer::start(format, muting.clone(), Vec::new()).unwrap();
            for f in &findings {
                w.push(f).unwrap();
            }
            let (one_by_one, finished) = w.finish().unwrap();
            assert_eq!(finished.findings, 5000);
            let parallel = render(format, muting.clone(), &findings);
            assert!(
                parallel.as_bytes() == one_by_one.as_slice(),
                "{format:?} differs"
            );
            // The mute reached the encoders.
            assert_ne!(parallel, render(format, header(), &findings), "{format:?}");
        }
    }
}
