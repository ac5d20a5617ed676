//! scanledger: asynchronous cloud security posture scans, every step kept as an
//! immutable fact in PostgreSQL.

pub mod api;
pub mod backfill;
pub mod cli;
pub mod ledger;
pub mod pg;
pub mod projection;
pub mod scanner;
pub mod telemetry;
pub mod worker;
