//! `watcher stat`: gathers records from a live capture or an NDJSON capture file into statistics groups
//! and prints them, as a table for people or one JSON document for machines (stdout); notes go to stderr.
//!
//! Also home of [`open_capture`], the one way `show` and `stat` read a capture file, so both report bad
//! lines the same way.

use std::{fs::File, io::BufReader, path::Path};

use anyhow::{Context, Result};

use super::{headless, stdio};
use crate::{
    analysis::stat::{render_table, sort_groups, Aggregator, Report},
    cli::config::{StatConfig, StatSource},
    ndjson::read::{self, Imported},
    protocol::redact::Redaction,
};

/// Bad lines listed one by one; the rest are only counted.
const BAD_LINES_LISTED: usize = 10;

/// Reads a capture file. Lines that are not records are skipped, and listed on stderr with their line
/// numbers; only a file that cannot be read at all is an error.
pub fn open_capture(path: &Path, redaction: &Redaction) -> Result<Imported> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let imported = read::read(BufReader::new(file), redaction)
        .with_context(|| format!("reading {}", path.display()))?;
    for bad in imported.bad_lines.iter().take(BAD_LINES_LISTED) {
        crate::stderr_line!(
            "watcher: {}:{}: skipped: {}",
            path.display(),
            bad.line,
            bad.reason
        );
    }
    if imported.bad_lines.len() > BAD_LINES_LISTED {
        crate::stderr_line!(
            "watcher: {}: ... and {} more bad lines skipped",
            path.display(),
            imported.bad_lines.len() - BAD_LINES_LISTED
        );
    }
    Ok(imported)
}

/// Runs `stat`.
pub fn run(cfg: StatConfig) -> Result<()> {
    let mut aggregator = Aggregator::new(cfg.group_by);
    match cfg.source {
        StatSource::Live(watch) => {
            let (summary, gathered) = headless::run_with_stats(&watch, Some(aggregator))?;
            crate::stderr_line!("{summary}");
            aggregator = gathered.unwrap_or_else(|| Aggregator::new(cfg.group_by));
        }
        StatSource::File {
            path,
            filter,
            redaction,
        } => {
            let imported = open_capture(&path, &redaction)?;
            for record in imported.records.iter().filter(|r| filter.matches(r)) {
                aggregator.add(record);
            }
        }
    }
    let mut groups = aggregator.finish();
    sort_groups(&mut groups, cfg.sort);
    let text = if cfg.json {
        let shown = &groups[..cfg.top.unwrap_or(usize::MAX).min(groups.len())];
        let mut text = serde_json::to_string(&Report::new(cfg.group_by, shown))
            .context("encoding the statistics")?;
        text.push('\n');
        text
    } else {
        render_table(&groups, cfg.group_by, cfg.top)
    };
    stdio::print(&text).context("writing the statistics")
}
