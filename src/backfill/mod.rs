//! Explicit imports of history from older systems. Historical scans land terminal, so no
//! worker ever re-runs them; rows that were still pending or running there are never
//! queued silently: the operator says what to do with them.

pub mod openshield;

pub use openshield::{BackfillError, BackfillOptions, BackfillReport, NonTerminal};
