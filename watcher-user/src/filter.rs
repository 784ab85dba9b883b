//! Record filters: the command-line ones (common: `--side`, `--min-latency`; Redis: `--command`,
//! `--key-prefix`; HTTP: `--method`, `--host`, `--path-prefix`, `--path-regex`, `--status`) and the TUI's
//! type-to-filter text match. One place decides what "matches" means for every view and export.

use regex::Regex;

use crate::protocol::{
    http::HttpExchange,
    redis::{ExchangeKind, RedisExchange},
};
use crate::record::{Exchange, Record, Side};

/// Filters chosen on the command line, applied before records are stored. Which protocols are kept is
/// not a filter: protocols that are not wanted are not decoded at all (`PipelineConfig::protocols`).
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    /// Keep only exchanges at least this slow (ns). Pushes have no latency and are dropped by it.
    pub min_latency_ns: Option<u64>,
    /// Keep only this side.
    pub side: Option<Side>,
    /// Redis-specific filters.
    pub redis: RedisFilter,
    /// HTTP-specific filters.
    pub http: HttpFilter,
}

/// `--command`, `--key-prefix`.
#[derive(Clone, Debug, Default)]
pub struct RedisFilter {
    /// Upper-cased command names; empty means all.
    pub commands: Vec<String>,
    /// Keep only commands with a key starting with this.
    pub key_prefix: Option<Vec<u8>>,
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

impl RedisFilter {
    /// Whether any Redis-specific filter is set.
    pub fn is_set(&self) -> bool {
        !self.commands.is_empty() || self.key_prefix.is_some()
    }

    fn matches(&self, redis: &RedisExchange) -> bool {
        if !self.commands.is_empty()
            && (redis.kind == ExchangeKind::Push || !self.commands.contains(&redis.command))
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

impl HttpFilter {
    /// Whether any HTTP-specific filter is set.
    pub fn is_set(&self) -> bool {
        !self.methods.is_empty()
            || self.host.is_some()
            || self.path_prefix.is_some()
            || self.path_regex.is_some()
            || !self.statuses.is_empty()
    }

    fn matches(&self, http: &HttpExchange) -> bool {
        if !self.methods.is_empty() && !self.methods.contains(&http.request.method) {
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

impl RecordFilter {
    /// Whether `record` passes every filter.
    pub fn matches(&self, record: &Record) -> bool {
        if self.side.is_some_and(|s| s != record.endpoint.side) {
            return false;
        }
        if let Some(min) = self.min_latency_ns {
            if record.latency_ns().is_none_or(|l| l < min) {
                return false;
            }
        }
        match &record.exchange {
            Exchange::Redis(redis) => self.redis.matches(redis),
            Exchange::Http(http) => self.http.matches(http),
        }
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

/// Case-insensitive match of `query` against what the table shows of a record: command or method,
/// arguments or target, reply summary or status, process, addresses. An empty query matches everything.
pub fn matches_text(record: &Record, query: &str) -> bool {
    if query.is_empty() {
        return true;
    }
    let needle = query.to_lowercase();
    let endpoint = &record.endpoint;
    let found_in = |s: &str| s.to_lowercase().contains(&needle);
    if found_in(&endpoint.comm) || found_in(&endpoint.pid.to_string()) {
        return true;
    }
    if found_in(endpoint.local_text()) || found_in(endpoint.remote_text()) {
        return true;
    }
    match &record.exchange {
        Exchange::Redis(redis) => {
            found_in(&redis.command)
                || redis
                    .args
                    .iter()
                    .any(|a| found_in(&String::from_utf8_lossy(&a.data)))
                || found_in(&redis.reply_summary(256))
        }
        Exchange::Http(http) => {
            found_in(&http.request.method)
                || found_in(&http.request.target)
                || http.host().is_some_and(found_in)
                || http.response.as_ref().is_some_and(|r| {
                    found_in(itoa::Buffer::new().format(r.status)) || found_in(&r.reason)
                })
        }
    }
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
