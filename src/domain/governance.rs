//! Governance facts: mutes and schedules. Each mute and each schedule is a stream of
//! `governance_events` (an append-only table of its own, checked and hash-chained by the
//! database like `scan_events`); the current mute list and schedule table are pure folds
//! of those streams.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Finding, SubscriptionId};

const PAYLOAD_VERSION: u64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum GovernanceKind {
    MuteAdded,
    MuteRemoved,
    ScheduleSet,
    ScheduleRemoved,
}

impl GovernanceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MuteAdded => "MuteAdded",
            Self::MuteRemoved => "MuteRemoved",
            Self::ScheduleSet => "ScheduleSet",
            Self::ScheduleRemoved => "ScheduleRemoved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::MuteAdded,
            Self::MuteRemoved,
            Self::ScheduleSet,
            Self::ScheduleRemoved,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What a mute applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MuteSelector {
    /// One finding: a rule on one resource (and sub-item).
    Fingerprint { fingerprint: String },
    /// A rule on every resource whose id matches the pattern (`*` matches any run of
    /// characters; case-insensitive, as Azure resource ids are).
    Rule {
        rule_id: String,
        resource_pattern: String,
    },
}

impl MuteSelector {
    pub fn matches(&self, fingerprint: &str, rule: &str, resource_id: &str) -> bool {
        match self {
            Self::Fingerprint { fingerprint: fp } => fp == fingerprint,
            Self::Rule {
                rule_id,
                resource_pattern,
            } => rule_id.eq_ignore_ascii_case(rule) && glob_matches(resource_pattern, resource_id),
        }
    }
}

/// `*` matches any run of characters (including `/`); everything else literally,
/// ASCII case-insensitively.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

// No `deny_unknown_fields`: serde does not support it with `flatten`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MuteAdded {
    #[serde(flatten)]
    pub selector: MuteSelector,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteRemoved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// When a schedule fires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cadence {
    /// Every so many seconds (at least 60), counted from the schedule's creation.
    Every { every_s: u64 },
    /// A five-field cron expression, in UTC.
    Cron { cron: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSet {
    pub subscription_id: SubscriptionId,
    #[serde(flatten)]
    pub cadence: Cadence,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRemoved {}

#[derive(Clone, Debug, PartialEq)]
pub enum GovernanceEvent {
    MuteAdded(MuteAdded),
    MuteRemoved(MuteRemoved),
    ScheduleSet(ScheduleSet),
    ScheduleRemoved(ScheduleRemoved),
}

#[derive(Debug, thiserror::Error)]
pub enum GovernanceDecodeError {
    #[error("unknown governance kind {0:?}")]
    UnknownKind(String),
    #[error("{kind:?} payload has unsupported schema version {v}")]
    UnknownVersion { kind: GovernanceKind, v: u64 },
    #[error("{kind:?} payload is malformed: {source}")]
    Malformed {
        kind: GovernanceKind,
        #[source]
        source: serde_json::Error,
    },
}

impl GovernanceEvent {
    pub fn kind(&self) -> GovernanceKind {
        match self {
            Self::MuteAdded(_) => GovernanceKind::MuteAdded,
            Self::MuteRemoved(_) => GovernanceKind::MuteRemoved,
            Self::ScheduleSet(_) => GovernanceKind::ScheduleSet,
            Self::ScheduleRemoved(_) => GovernanceKind::ScheduleRemoved,
        }
    }

    pub fn payload(&self) -> serde_json::Value {
        let body = match self {
            Self::MuteAdded(p) => serde_json::to_value(p),
            Self::MuteRemoved(p) => serde_json::to_value(p),
            Self::ScheduleSet(p) => serde_json::to_value(p),
            Self::ScheduleRemoved(p) => serde_json::to_value(p),
        };
        let mut body = body.expect("governance payloads always serialize");
        if let Some(obj) = body.as_object_mut() {
            obj.insert("v".into(), PAYLOAD_VERSION.into());
        }
        body
    }

    pub fn decode(
        kind: &str,
        mut payload: serde_json::Value,
    ) -> Result<Self, GovernanceDecodeError> {
        let kind = GovernanceKind::parse(kind)
            .ok_or_else(|| GovernanceDecodeError::UnknownKind(kind.into()))?;
        let v = payload.get("v").and_then(|v| v.as_u64()).unwrap_or(0);
        if v != PAYLOAD_VERSION {
            return Err(GovernanceDecodeError::UnknownVersion { kind, v });
        }
        if let Some(obj) = payload.as_object_mut() {
            obj.remove("v");
        }
        let malformed = |source| GovernanceDecodeError::Malformed { kind, source };
        Ok(match kind {
            GovernanceKind::MuteAdded => {
                Self::MuteAdded(serde_json::from_value(payload).map_err(malformed)?)
            }
            GovernanceKind::MuteRemoved => {
                Self::MuteRemoved(serde_json::from_value(payload).map_err(malformed)?)
            }
            GovernanceKind::ScheduleSet => {
                Self::ScheduleSet(serde_json::from_value(payload).map_err(malformed)?)
            }
            GovernanceKind::ScheduleRemoved => {
                Self::ScheduleRemoved(serde_json::from_value(payload).map_err(malformed)?)
            }
        })
    }
}

/// A governance event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedGovernance {
    pub seq: i64,
    pub stream_id: Uuid,
    pub version: i32,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
    pub event: GovernanceEvent,
}

/// How a muted finding is marked where clients read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MuteMark {
    #[schema(value_type = String, format = Uuid)]
    pub mute_id: Uuid,
    pub reason: String,
    pub by: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&Mute> for MuteMark {
    fn from(m: &Mute) -> Self {
        Self {
            mute_id: m.mute_id,
            reason: m.reason.clone(),
            by: m.created_by.clone(),
            expires_at: m.expires_at,
        }
    }
}

/// A mute as the fold of its stream.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Mute {
    #[schema(value_type = String, format = Uuid)]
    pub mute_id: Uuid,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub selector: MuteSelector,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removed_by: Option<String>,
    /// The stream version the next change must follow.
    #[serde(skip)]
    pub version: i32,
}

impl Mute {
    /// Whether the mute applies at `t`: added before, not removed, not expired.
    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        self.created_at <= t
            && self.removed_at.is_none_or(|r| r > t)
            && self.expires_at.is_none_or(|e| e > t)
    }
}

/// The mutes in effect at one instant, ready to mark findings.
#[derive(Clone, Debug, Default)]
pub struct MuteList {
    mutes: Vec<Mute>,
}

impl MuteList {
    pub fn active(all: &[Mute], at: DateTime<Utc>) -> Self {
        Self {
            mutes: all.iter().filter(|m| m.active_at(at)).cloned().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.mutes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.mutes.len()
    }

    /// The mute that applies to `f`, if any (the oldest, so the answer is stable).
    pub fn mute_for(&self, f: &Finding) -> Option<&Mute> {
        self.mute_for_parts(&f.fingerprint, &f.rule.id, &f.resource_id)
    }

    /// The mute that applies to a finding of `rule` on `resource_id`.
    pub fn mute_for_parts(
        &self,
        fingerprint: &str,
        rule: &str,
        resource_id: &str,
    ) -> Option<&Mute> {
        if self.mutes.is_empty() {
            return None;
        }
        self.mutes
            .iter()
            .find(|m| m.selector.matches(fingerprint, rule, resource_id))
    }
}

/// A schedule as the fold of its stream.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    #[schema(value_type = String, format = Uuid)]
    pub schedule_id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub subscription_id: SubscriptionId,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub cadence: Cadence,
    pub rules: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// When the cadence was last set (an `every` cadence counts from here).
    pub updated_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub version: i32,
}

/// Mutes and schedules: the fold of every governance stream, in `seq` order.
#[derive(Clone, Debug, Default)]
pub struct Governance {
    pub mutes: BTreeMap<Uuid, Mute>,
    pub schedules: BTreeMap<Uuid, Schedule>,
}

impl Governance {
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a RecordedGovernance>) -> Self {
        let mut g = Self::default();
        for e in events {
            g.apply(e);
        }
        g
    }

    pub fn apply(&mut self, e: &RecordedGovernance) {
        match &e.event {
            GovernanceEvent::MuteAdded(m) => {
                self.mutes.insert(
                    e.stream_id,
                    Mute {
                        mute_id: e.stream_id,
                        selector: m.selector.clone(),
                        reason: m.reason.clone(),
                        created_by: e.actor.clone(),
                        created_at: e.recorded_at,
                        expires_at: m.expires_at,
                        removed_at: None,
                        removed_by: None,
                        version: e.version,
                    },
                );
            }
            GovernanceEvent::MuteRemoved(_) => {
                if let Some(m) = self.mutes.get_mut(&e.stream_id) {
                    m.removed_at = Some(e.recorded_at);
                    m.removed_by = Some(e.actor.clone());
                    m.version = e.version;
                }
            }
            GovernanceEvent::ScheduleSet(s) => {
                let created = self
                    .schedules
                    .get(&e.stream_id)
                    .map(|old| (old.created_by.clone(), old.created_at));
                let (created_by, created_at) = created.unwrap_or((e.actor.clone(), e.recorded_at));
                self.schedules.insert(
                    e.stream_id,
                    Schedule {
                        schedule_id: e.stream_id,
                        subscription_id: s.subscription_id.clone(),
                        cadence: s.cadence.clone(),
                        rules: s.rules.clone(),
                        created_by,
                        created_at,
                        updated_at: e.recorded_at,
                        removed_at: None,
                        version: e.version,
                    },
                );
            }
            GovernanceEvent::ScheduleRemoved(_) => {
                if let Some(s) = self.schedules.get_mut(&e.stream_id) {
                    s.removed_at = Some(e.recorded_at);
                    s.version = e.version;
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ cadence

/// A parsed five-field cron expression (minute hour day-of-month month day-of-week),
/// UTC. Fields take `*`, numbers, `a-b`, `*/n`, `a-b/n` and lists of these; day of week
/// 0–7 with 0 and 7 both Sunday. As in Vixie cron, when both day fields are restricted a
/// day matches if either does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_any: bool,
    weekdays_any: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cron expression {0}")]
pub struct CronError(&'static str);

fn cron_field(s: &str, lo: u32, hi: u32) -> Result<(u64, bool), CronError> {
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(CronError("has a bad step"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a.parse().map_err(|_| CronError("has a bad range"))?;
            let b = b.parse().map_err(|_| CronError("has a bad range"))?;
            (a, b)
        } else {
            let a: u32 = range.parse().map_err(|_| CronError("has a bad value"))?;
            // `5/15` means 5, 20, 35, 50.
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(CronError("has a value out of range"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, s == "*"))
}

impl std::str::FromStr for Cron {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, CronError> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(CronError(
                "needs five fields: minute hour day month weekday",
            ));
        }
        let (minutes, _) = cron_field(f[0], 0, 59)?;
        let (hours, _) = cron_field(f[1], 0, 23)?;
        let (days, days_any) = cron_field(f[2], 1, 31)?;
        let (months, _) = cron_field(f[3], 1, 12)?;
        let (mut weekdays, weekdays_any) = cron_field(f[4], 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Self {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_any,
            weekdays_any,
        })
    }
}

impl Cron {
    fn matches(&self, t: DateTime<Utc>) -> bool {
        let day = self.days & (1 << t.day()) != 0;
        let wday = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        let day_ok = match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => day,
            (true, false) => wday,
            (false, false) => day || wday,
        };
        self.minutes & (1 << t.minute()) != 0
            && self.hours & (1 << t.hour()) != 0
            && self.months & (1 << t.month()) != 0
            && day_ok
    }

    /// The latest firing time at or before `t` (minute precision), looking back at most
    /// 366 days.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut m = Utc
            .with_ymd_and_hms(t.year(), t.month(), t.day(), t.hour(), t.minute(), 0)
            .single()?;
        for _ in 0..366 * 24 * 60 {
            if self.matches(m) {
                return Some(m);
            }
            m -= Duration::minutes(1);
        }
        None
    }
}

impl Cadence {
    /// Check a cadence a client asked for.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Every { every_s } if *every_s < 60 => {
                Err("every must be at least one minute".into())
            }
            Self::Every { .. } => Ok(()),
            Self::Cron { cron } => cron.parse::<Cron>().map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

impl Schedule {
    /// The slot due at `now`: the latest firing time at or before `now` (never one
    /// before the cadence was set). A slot is requested at most once: it is the
    /// idempotency key of its scan request.
    pub fn due_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.removed_at.is_some() || now < self.updated_at {
            return None;
        }
        match &self.cadence {
            Cadence::Every { every_s } => {
                let every = (*every_s).max(60) as i64;
                let elapsed = (now - self.updated_at).num_seconds();
                Some(self.updated_at + Duration::seconds(elapsed / every * every))
            }
            Cadence::Cron { cron } => cron
                .parse::<Cron>()
                .ok()?
                .latest_at_or_before(now)
                .filter(|s| *s >= self.updated_at - Duration::minutes(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn globs_match_like_a_shell_star_case_insensitively() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches(
            "/subscriptions/*/resourceGroups/dev-*/*",
            "/subscriptions/1/RESOURCEGROUPS/DEV-web/providers/x"
        ));
        assert!(!glob_matches(
            "/subscriptions/*/resourceGroups/dev-*",
            "/subscriptions/1/resourceGroups/prod"
        ));
        assert!(glob_matches("a*b*c", "aXXbYYc"));
        assert!(!glob_matches("a*b*c", "aXXbYY"));
        assert!(!glob_matches("abc", "abcd"));
    }

    #[test]
    fn cron_parses_and_finds_the_latest_slot() {
        let c: Cron = "*/15 2 * * 1-5".parse().unwrap();
        // Wednesday 2026-12-02 02:37 → 02:30 the same day.
        assert_eq!(
            c.latest_at_or_before(at("2026-12-02T02:37:10Z")),
            Some(at("2026-12-02T02:30:00Z"))
        );
        // Sunday → Friday 02:45.
        assert_eq!(
            c.latest_at_or_before(at("2026-12-06T12:00:00Z")),
            Some(at("2026-12-04T02:45:00Z"))
        );
        let sunday: Cron = "0 0 * * 7".parse().unwrap();
        assert_eq!(
            sunday.latest_at_or_before(at("2026-12-08T00:00:00Z")),
            Some(at("2026-12-06T00:00:00Z"))
        );
        for bad in [
            "* * * *",
            "60 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(bad.parse::<Cron>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_cadence_counts_from_when_it_was_set() {
        let s = Schedule {
            schedule_id: Uuid::nil(),
            subscription_id: SubscriptionId::parse("6f1c1a9e-5d7b-4c2e-9a41-0d3e5f7a9b10").unwrap(),
            cadence: Cadence::Every { every_s: 600 },
            rules: vec![],
            created_by: "t".into(),
            created_at: at("2026-12-01T00:00:00Z"),
            updated_at: at("2026-12-01T00:00:00Z"),
            removed_at: None,
            version: 1,
        };
        assert_eq!(
            s.due_slot(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            s.due_slot(at("2026-12-01T00:25:00Z")),
            Some(at("2026-12-01T00:20:00Z"))
        );
        assert_eq!(s.due_slot(at("2026-11-30T23:59:00Z")), None);
        assert!(Cadence::Every { every_s: 59 }.validate().is_err());
    }

    #[test]
    fn mute_payloads_round_trip_and_refuse_other_versions_and_shapes() {
        let e = GovernanceEvent::MuteAdded(MuteAdded {
            selector: MuteSelector::Rule {
                rule_id: "AZ-NET-001".into(),
                resource_pattern: "/subscriptions/*".into(),
            },
            reason: "accepted risk".into(),
            expires_at: None,
        });
        let p = e.payload();
        assert_eq!(p["v"], 1);
        assert_eq!(GovernanceEvent::decode("MuteAdded", p).unwrap(), e);
        let bad = serde_json::json!({"v": 2, "fingerprint": "x", "reason": "r"});
        assert!(GovernanceEvent::decode("MuteAdded", bad).is_err());
        let bad = serde_json::json!({"v": 1, "reason": "r"});
        assert!(GovernanceEvent::decode("MuteAdded", bad).is_err());
    }
}
