//! HTTP record filters, `--method`, `--host`, `--path-prefix`, `--path-regex` and `--status`: their
//! command-line options, their validation and what they keep.

use regex::Regex;

use super::exchange::HttpExchange;
use crate::protocol::plugin::{ExchangeFilter, FilterError};

/// HTTP filter options.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Filters")]
pub struct HttpFilterArgs {
    /// Show only HTTP requests with this method (repeatable, case-insensitive).
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// Show only HTTP requests to this host (the Host header, with or without its port).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Show only HTTP requests whose path starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub path_prefix: Option<String>,
    /// Show only HTTP requests whose path matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub path_regex: Option<String>,
    /// Show only HTTP responses with this status: 404, 5xx or 200-299 (repeatable).
    #[arg(long = "status", value_name = "STATUS")]
    pub statuses: Vec<String>,
}

/// `--method`, `--host`, `--path-prefix`, `--path-regex`, `--status`.
#[derive(Clone, Debug, Default)]
pub struct HttpFilter {
    /// Upper-cased methods; empty means all.
    pub methods: Vec<String>,
    /// Keep only requests to this host (with or without port, case-insensitive).
    pub host: Option<String>,
    /// Keep only paths starting with this.
    pub path_prefix: Option<String>,
    /// Keep only paths matching this.
    pub path_regex: Option<Regex>,
    /// Keep only statuses in one of these inclusive ranges; unanswered requests never match.
    pub statuses: Vec<(u16, u16)>,
}

impl ExchangeFilter<HttpExchange> for HttpFilter {
    type Args = HttpFilterArgs;

    fn from_args(args: &HttpFilterArgs) -> Result<Self, FilterError> {
        let path_regex = args
            .path_regex
            .as_deref()
            .map(|re| {
                Regex::new(re).map_err(|e| FilterError {
                    flag: "--path-regex",
                    reason: format!("{re:?} is not a regex: {e}"),
                })
            })
            .transpose()?;
        let statuses = args
            .statuses
            .iter()
            .map(|s| {
                parse_status(s).ok_or_else(|| FilterError {
                    flag: "--status",
                    reason: format!("{s:?} is not a status; try 404, 5xx or 200-299"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            methods: args
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            host: args.host.clone(),
            path_prefix: args.path_prefix.clone(),
            path_regex,
            statuses,
        })
    }

    fn is_set(&self) -> bool {
        !self.methods.is_empty()
            || self.host.is_some()
            || self.path_prefix.is_some()
            || self.path_regex.is_some()
            || !self.statuses.is_empty()
    }

    fn matches(&self, http: &HttpExchange) -> bool {
        let method = http.request.method.as_str();
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return false;
        }
        if let Some(want) = &self.host {
            let matches_host = http.host().is_some_and(|host| {
                let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
                host.eq_ignore_ascii_case(want) || name.eq_ignore_ascii_case(want)
            });
            if !matches_host {
                return false;
            }
        }
        let path = http.path();
        if self
            .path_prefix
            .as_ref()
            .is_some_and(|p| !path.starts_with(p.as_str()))
        {
            return false;
        }
        if self
            .path_regex
            .as_ref()
            .is_some_and(|re| !re.is_match(path))
        {
            return false;
        }
        if !self.statuses.is_empty() {
            let Some(status) = http.status() else {
                return false;
            };
            if !self
                .statuses
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&status))
            {
                return false;
            }
        }
        true
    }
}

/// Parses a `--status` value: `404`, `5xx`, or `200-299`, as an inclusive range.
pub fn parse_status(text: &str) -> Option<(u16, u16)> {
    let text = text.trim();
    let code = |s: &str| s.parse::<u16>().ok().filter(|c| (100..=999).contains(c));
    if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
        let digit = class.parse::<u16>().ok().filter(|d| (1..=9).contains(d))?;
        return Some((digit * 100, digit * 100 + 99));
    }
    if let Some((lo, hi)) = text.split_once('-') {
        let (lo, hi) = (code(lo)?, code(hi)?);
        return (lo <= hi).then_some((lo, hi));
    }
    code(text).map(|c| (c, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_take_codes_classes_and_ranges() {
        assert_eq!(parse_status("404"), Some((404, 404)));
        assert_eq!(parse_status("5xx"), Some((500, 599)));
        assert_eq!(parse_status("200-299"), Some((200, 299)));
        for bad in ["", "abc", "0xx", "299-200", "42", "1000", "5x"] {
            assert_eq!(parse_status(bad), None, "{bad}");
        }
    }
}
