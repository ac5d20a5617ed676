//! Read models folded from the ledger. Each projection has one pure fold function,
//! used both inline (in the append transaction) and by rebuilds, so the two cannot
//! disagree. Nothing outside this module writes projection tables.

pub mod finding_history;
pub mod rebuild;
pub mod scan_status;

pub use scan_status::{fold, FoldError, ScanState, ScanStatus};
