//! Terminal UI (placeholder until the TUI lands).
use anyhow::Result;

use crate::cli::WatchConfig;

/// Runs the TUI.
pub fn run(_cfg: WatchConfig) -> Result<()> {
    anyhow::bail!("the TUI is not built yet; use --headless")
}
