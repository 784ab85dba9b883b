//! MySQL record filters, `--sql-regex`: its command-line option, its validation and what it keeps.
//! (`--min-latency` and `--errors` are every protocol's, in `record::filter`.)

use regex::Regex;

use super::exchange::MysqlExchange;
use crate::protocol::plugin::{ExchangeFilter, FilterError};

/// MySQL filter options.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Filters")]
pub struct MysqlFilterArgs {
    /// Show only MySQL commands whose SQL matches this regular expression (`(?i)` for any case).
    #[arg(long, value_name = "REGEX")]
    pub sql_regex: Option<String>,
}

/// `--sql-regex`.
#[derive(Clone, Debug, Default)]
pub struct MysqlFilter {
    /// Keep only statements matching this; commands without SQL never match.
    pub sql_regex: Option<Regex>,
}

impl ExchangeFilter<MysqlExchange> for MysqlFilter {
    type Args = MysqlFilterArgs;

    fn from_args(args: &MysqlFilterArgs) -> Result<Self, FilterError> {
        let sql_regex = args
            .sql_regex
            .as_deref()
            .map(|re| {
                Regex::new(re).map_err(|e| FilterError {
                    flag: "--sql-regex",
                    reason: format!("{re:?} is not a regex: {e}"),
                })
            })
            .transpose()?;
        Ok(Self { sql_regex })
    }

    fn is_set(&self) -> bool {
        self.sql_regex.is_some()
    }

    fn matches(&self, mysql: &MysqlExchange) -> bool {
        match &self.sql_regex {
            None => true,
            Some(re) => mysql
                .sql
                .as_ref()
                .is_some_and(|sql| re.is_match(&String::from_utf8_lossy(&sql.data))),
        }
    }
}
