//! OTLP export over HTTP with protobuf: where to (`--otlp-endpoint` and the standard `OTEL_EXPORTER_OTLP_*`
//! variables, here), records as spans (`spans`, written field by field by `wire`), metrics as OTLP
//! messages (`metrics`), and the exporter thread that batches, sends and retries without ever making
//! capture wait (`export`).

pub mod export;
pub mod metrics;
pub mod spans;
mod wire;

use std::time::Duration;

/// The instrumentation scope of everything exported: watcher, at this version.
const SCOPE_NAME: &str = "watcher";
const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where and how to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpConfig {
    /// Full URL spans are posted to (`…/v1/traces`).
    pub traces_url: String,
    /// Full URL metrics are posted to (`…/v1/metrics`).
    pub metrics_url: String,
    /// Extra request headers (e.g. an authorization token).
    pub headers: Vec<(String, String)>,
    /// How long one request may take.
    pub timeout: Duration,
    /// How often metrics are pushed.
    pub metric_interval: Duration,
    /// How long spans wait for more to share their request (`OTEL_BSP_SCHEDULE_DELAY`).
    pub span_delay: Duration,
}

/// A bad OTLP setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtlpConfigError {
    /// Not an `http://` URL.
    #[error("{source_name}: {url:?} is not an http:// URL. watcher sends OTLP over plain HTTP (a collector's OTLP/HTTP receiver, port 4318 by default); for https, run a local collector that forwards")]
    NotHttp {
        /// The flag or variable.
        source_name: &'static str,
        /// What it held.
        url: String,
    },
    /// A protocol other than http/protobuf.
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0}: watcher exports http/protobuf only (port 4318 of a collector, not gRPC's 4317)")]
    Protocol(String),
    /// A malformed header list.
    #[error(
        "OTEL_EXPORTER_OTLP_HEADERS: {0:?} is not a list of key=value pairs separated by commas"
    )]
    Headers(String),
    /// A malformed number of milliseconds.
    #[error("{name}={value:?}: expected a whole number of milliseconds")]
    Millis {
        /// The variable.
        name: &'static str,
        /// What it held.
        value: String,
    },
}

/// Default per-request timeout (the OTLP exporter specification's).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default metric push interval (`OTEL_METRIC_EXPORT_INTERVAL`'s default).
const DEFAULT_INTERVAL: Duration = Duration::from_mins(1);
/// Default span delay: shorter than the SDKs' batch span processor's 5 s, so spans of a short
/// `record` or a test show up soon, and long enough that a busy service's spans go 512 to a request.
const DEFAULT_SPAN_DELAY: Duration = Duration::from_secs(1);

impl OtlpConfig {
    /// The export asked for by `--otlp-endpoint` (which wins) or the environment, read through `env`;
    /// `None` when neither names an endpoint.
    pub fn from_sources(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, OtlpConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(protocol) = env("OTEL_EXPORTER_OTLP_PROTOCOL") {
            if protocol.trim() != "http/protobuf" {
                return Err(OtlpConfigError::Protocol(protocol));
            }
        }
        let base = match flag {
            Some(url) => Some(("--otlp-endpoint", url.to_owned())),
            None => env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|u| ("OTEL_EXPORTER_OTLP_ENDPOINT", u)),
        };
        // Signal-specific variables are used as given; a base endpoint gets the signal's path.
        let signal = |variable: &'static str,
                      path: &str|
         -> Result<Option<String>, OtlpConfigError> {
            let (source_name, url) = match (flag, env(variable)) {
                (None, Some(url)) => (variable, url),
                _ => match &base {
                    Some((name, url)) => (*name, format!("{}/{path}", url.trim_end_matches('/'))),
                    None => return Ok(None),
                },
            };
            check_http(source_name, &url)?;
            Ok(Some(url))
        };
        let traces = signal("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "v1/traces")?;
        let metrics = signal("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "v1/metrics")?;
        let (Some(traces_url), Some(metrics_url)) = (traces, metrics) else {
            return Ok(None);
        };
        let headers = match env("OTEL_EXPORTER_OTLP_HEADERS") {
            Some(list) => parse_headers(&list)?,
            None => Vec::new(),
        };
        Ok(Some(Self {
            traces_url,
            metrics_url,
            headers,
            timeout: millis(&env, "OTEL_EXPORTER_OTLP_TIMEOUT")?.unwrap_or(DEFAULT_TIMEOUT),
            metric_interval: millis(&env, "OTEL_METRIC_EXPORT_INTERVAL")?
                .unwrap_or(DEFAULT_INTERVAL),
            span_delay: millis(&env, "OTEL_BSP_SCHEDULE_DELAY")?.unwrap_or(DEFAULT_SPAN_DELAY),
        }))
    }
}

fn check_http(source_name: &'static str, url: &str) -> Result<(), OtlpConfigError> {
    let host = url.strip_prefix("http://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') {
        return Err(OtlpConfigError::NotHttp {
            source_name,
            url: url.to_owned(),
        });
    }
    Ok(())
}

/// `key1=value1,key2=value2`, values percent-decoded (the W3C baggage form the variable uses).
fn parse_headers(list: &str) -> Result<Vec<(String, String)>, OtlpConfigError> {
    let bad = || OtlpConfigError::Headers(list.to_owned());
    list.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let key = key.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad());
            }
            Ok((
                key.to_owned(),
                percent_decode(value.trim()).ok_or_else(bad)?,
            ))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn millis(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<Duration>, OtlpConfigError> {
    env(name)
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or(OtlpConfigError::Millis { name, value })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        flag: Option<&str>,
        vars: &[(&str, &str)],
    ) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        OtlpConfig::from_sources(flag, |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_flag_or_the_environment_names_the_endpoint() {
        assert_eq!(config(None, &[]), Ok(None));
        let from_flag = config(Some("http://collector:4318/"), &[])
            .unwrap()
            .unwrap();
        assert_eq!(from_flag.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(from_flag.metrics_url, "http://collector:4318/v1/metrics");
        assert_eq!(from_flag.metric_interval, DEFAULT_INTERVAL);
        assert_eq!(from_flag.span_delay, DEFAULT_SPAN_DELAY);
        let from_env = config(
            None,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://tempo:4318/otlp/traces",
                ),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "Authorization=Bearer%20abc, x-tenant = t1",
                ),
                ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(from_env.traces_url, "http://tempo:4318/otlp/traces");
        assert_eq!(from_env.metrics_url, "http://localhost:4318/v1/metrics");
        assert_eq!(
            from_env.headers,
            [
                ("Authorization".to_owned(), "Bearer abc".to_owned()),
                ("x-tenant".to_owned(), "t1".to_owned())
            ]
        );
        assert_eq!(from_env.metric_interval, Duration::from_secs(1));
        assert_eq!(from_env.span_delay, Duration::from_millis(200));
        // The flag wins over every variable.
        let flag_wins = config(
            Some("http://a:1"),
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/v1/traces")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(flag_wins.traces_url, "http://a:1/v1/traces");
    }

    #[test]
    fn bad_settings_are_refused_with_their_source() {
        let https = config(Some("https://otlp.example.com"), &[]).unwrap_err();
        assert!(https.to_string().contains("--otlp-endpoint"), "{https}");
        assert!(matches!(
            config(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")]),
            Err(OtlpConfigError::NotHttp {
                source_name: "OTEL_EXPORTER_OTLP_ENDPOINT",
                ..
            })
        ));
        assert!(matches!(
            config(
                Some("http://a:1"),
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]
            ),
            Err(OtlpConfigError::Protocol(_))
        ));
        assert!(matches!(
            config(
                Some("http://a:1"),
                &[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")]
            ),
            Err(OtlpConfigError::Headers(_))
        ));
        assert!(matches!(
            config(Some("http://a:1"), &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]),
            Err(OtlpConfigError::Millis { .. })
        ));
    }
}
