//! The Azure Resource Manager inventory source.

use std::sync::Arc;

use super::InventorySource;

/// Azure connection settings (`scan --source azure`, `worker --source azure`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AzureArgs {}

/// Open the Azure source.
pub fn open(_args: &AzureArgs) -> Result<Arc<dyn InventorySource>, super::SourceSpecError> {
    Err(super::SourceSpecError::AzureNotBuilt)
}
