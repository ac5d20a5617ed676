//! The shared vocabulary at the bottom of the house: ids, event kinds and payloads,
//! findings and tallies. Every layer imports it; it imports nothing of ours, so the
//! stored event format can never depend on the scanner, the ledger or the API.

mod event;
mod finding;
pub mod governance;
mod ids;
pub mod integrity;
pub mod merkle;

pub use event::*;
pub use finding::*;
pub use ids::*;
