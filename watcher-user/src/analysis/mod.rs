//! Analysis of records, apart from the modes that run it: `stat` (groups, percentiles, histograms) and
//! `findings` (the `--fail-on` conditions and their report). Pure: records in, results out.

pub mod findings;
pub mod stat;
