//! What a scan finds: a finding on one resource by one rule, its severity, and per-rule
//! tallies. Stored with `Completed` events and read by every layer above.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Info,
    ];

    /// Weight in the score: a failed critical check costs ten low ones.
    pub fn weight(self) -> f64 {
        match self {
            Self::Info => 0.0,
            Self::Low => 1.0,
            Self::Medium => 3.0,
            Self::High => 6.0,
            Self::Critical => 10.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// A finding's details (what matched), held as compact JSON text: a large scan keeps
/// hundreds of thousands of findings until its `Completed` is written, and a parsed
/// JSON tree costs several times the text.
#[derive(Clone, Debug)]
pub struct Details(Box<serde_json::value::RawValue>);

impl Details {
    /// From anything that serializes to JSON (a `serde_json::Value`, a Rego value).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Parsed, for the few readers that look inside.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl From<serde_json::Value> for Details {
    fn from(v: serde_json::Value) -> Self {
        Self::of(&v).expect("a JSON value serializes")
    }
}

impl PartialEq for Details {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Details {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Details {
    // Through a Value, so any deserializer works (not only serde_json's own reader).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(v.into())
    }
}

/// What every finding of one rule says about the rule. Shared (`Arc`) by all findings of
/// the rule: a large scan holds hundreds of thousands of findings until its `Completed`
/// is written, and one pointer per finding instead of seven fields kept a 100,000-resource
/// scan's list 80 bytes a finding smaller.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingRule {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub severity: Severity,
    pub category: Arc<str>,
    pub description: Arc<str>,
    pub remediation: Arc<str>,
    /// Framework → control ids, e.g. `{"cis_azure": ["3.1"], "nist_csf": ["PR.DS-2"]}`.
    pub frameworks: Arc<serde_json::Value>,
}

/// One misconfiguration found on one resource by one rule. Serialized flat, as it has
/// always been stored: `fingerprint`, `rule_id`, `rule_name`, `severity`, `category`,
/// `resource_id`, `resource_name`, `resource_type`, `description`, `remediation`,
/// `frameworks`, `details`, and `detected_at` when set.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// `sha256(rule_id | lower(resource_id) | sub_item)`, hex: follows one
    /// misconfiguration across scans.
    pub fingerprint: String,
    pub rule: Arc<FindingRule>,
    // Shared (`Arc`) by the findings of one resource: a resource has several findings,
    // and its id is the longest string a finding holds.
    pub resource_id: Arc<str>,
    pub resource_name: Arc<str>,
    pub resource_type: Arc<str>,
    /// What matched (e.g. the offending NSG rule and port range).
    pub details: Details,
    /// When it was detected, if not when its scan completed (imported history).
    pub detected_at: Option<DateTime<Utc>>,
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = &*self.rule;
        let mut st = s.serialize_struct("Finding", 12 + usize::from(self.detected_at.is_some()))?;
        st.serialize_field("fingerprint", &self.fingerprint)?;
        st.serialize_field("rule_id", &*r.id)?;
        st.serialize_field("rule_name", &*r.name)?;
        st.serialize_field("severity", &r.severity)?;
        st.serialize_field("category", &*r.category)?;
        st.serialize_field("resource_id", &*self.resource_id)?;
        st.serialize_field("resource_name", &*self.resource_name)?;
        st.serialize_field("resource_type", &*self.resource_type)?;
        st.serialize_field("description", &*r.description)?;
        st.serialize_field("remediation", &*r.remediation)?;
        st.serialize_field("frameworks", &*r.frameworks)?;
        st.serialize_field("details", &self.details)?;
        match &self.detected_at {
            Some(t) => st.serialize_field("detected_at", t)?,
            None => st.skip_field("detected_at")?,
        }
        st.end()
    }
}

/// A finding as stored: the flat form [`Finding`] serializes to.
#[derive(Deserialize)]
struct FindingWire {
    fingerprint: String,
    rule_id: Arc<str>,
    rule_name: Arc<str>,
    severity: Severity,
    category: Arc<str>,
    resource_id: Arc<str>,
    resource_name: Arc<str>,
    resource_type: Arc<str>,
    description: Arc<str>,
    remediation: Arc<str>,
    frameworks: Arc<serde_json::Value>,
    details: Details,
    #[serde(default)]
    detected_at: Option<DateTime<Utc>>,
}

impl<'de> Deserialize<'de> for Finding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = FindingWire::deserialize(d)?;
        Ok(Self {
            fingerprint: f.fingerprint,
            rule: Arc::new(FindingRule {
                id: f.rule_id,
                name: f.rule_name,
                severity: f.severity,
                category: f.category,
                description: f.description,
                remediation: f.remediation,
                frameworks: f.frameworks,
            }),
            resource_id: f.resource_id,
            resource_name: f.resource_name,
            resource_type: f.resource_type,
            details: f.details,
            detected_at: f.detected_at,
        })
    }
}

impl Finding {
    /// The stable fingerprint of (rule, resource, sub-item). ARM ids are case-insensitive.
    pub fn fingerprint(rule_id: &str, resource_id: &str, sub_item: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(rule_id.as_bytes());
        h.update(b"|");
        h.update(resource_id.to_ascii_lowercase().as_bytes());
        h.update(b"|");
        h.update(sub_item.as_bytes());
        // Hex by table: this runs once per finding, hundreds of thousands per large scan,
        // and `format!` per byte cost more than the hash.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in h.finalize() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }
}

/// Per-rule counts, over resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleTally {
    /// Resources the rule was given.
    pub evaluated: u64,
    /// Resources with at least one finding.
    pub failed: u64,
    /// Resources the rule could not decide (and did not fail).
    pub indeterminate: u64,
    /// Resources on which the rule raised an error.
    pub errored: u64,
    /// Resources whose every finding of the rule is muted: neither pass nor fail.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub muted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RuleTally {
    pub fn add(&mut self, other: &RuleTally) {
        self.evaluated += other.evaluated;
        self.failed += other.failed;
        self.indeterminate += other.indeterminate;
        self.errored += other.errored;
        self.muted += other.muted;
    }
}
