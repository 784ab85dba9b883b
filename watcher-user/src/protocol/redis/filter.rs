//! Redis record filters, `--command` and `--key-prefix`: their command-line options and what they keep.

use super::exchange::{ExchangeKind, RedisExchange};
use crate::protocol::plugin::{ExchangeFilter, FilterError};

/// Redis filter options.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Filters")]
pub struct RedisFilterArgs {
    /// Show only Redis command NAME (repeatable, case-insensitive).
    #[arg(long = "command", value_name = "NAME")]
    pub commands: Vec<String>,
    /// Show only commands with a key starting with this prefix.
    #[arg(long, value_name = "PREFIX")]
    pub key_prefix: Option<String>,
}

/// `--command`, `--key-prefix`.
#[derive(Clone, Debug, Default)]
pub struct RedisFilter {
    /// Upper-cased command names; empty means all.
    pub commands: Vec<String>,
    /// Keep only commands with a key starting with this.
    pub key_prefix: Option<Vec<u8>>,
}

impl ExchangeFilter<RedisExchange> for RedisFilter {
    type Args = RedisFilterArgs;

    fn from_args(args: &RedisFilterArgs) -> Result<Self, FilterError> {
        Ok(Self {
            commands: args
                .commands
                .iter()
                .map(|c| c.to_ascii_uppercase())
                .collect(),
            key_prefix: args.key_prefix.clone().map(String::into_bytes),
        })
    }

    fn is_set(&self) -> bool {
        !self.commands.is_empty() || self.key_prefix.is_some()
    }

    /// Pushes have no command and no key, so either filter drops them.
    fn matches(&self, redis: &RedisExchange) -> bool {
        if !self.commands.is_empty()
            && (redis.kind == ExchangeKind::Push
                || !self.commands.iter().any(|c| *c == redis.command))
        {
            return false;
        }
        if let Some(prefix) = &self.key_prefix {
            if !redis.keys().iter().any(|k| k.data.starts_with(prefix)) {
                return false;
            }
        }
        true
    }
}
