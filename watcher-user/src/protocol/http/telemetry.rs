//! An HTTP exchange in OpenTelemetry's terms: the HTTP conventions (`http.request.method`, `url.path`,
//! `http.response.status_code`, ...). The route is watcher's path template (`/users/{id}`), since the
//! application's own routes cannot be seen on the wire. The query is the one already redacted.

use super::{template, HttpExchange};
use crate::protocol::plugin::{Convention, MetricLabels, PayloadTelemetry, SpanAttributes};

/// Bytes of the `User-Agent` header kept.
const MAX_USER_AGENT: usize = 256;

impl PayloadTelemetry for HttpExchange {
    fn convention(&self) -> Convention {
        Convention::Http
    }

    fn span_name(&self, out: &mut String) {
        out.push_str(&self.request.method);
        out.push(' ');
        template::push_template(self.path(), out);
    }

    fn span_attributes(&self, out: &mut dyn SpanAttributes) {
        out.text("http.request.method", &self.request.method);
        out.text("url.path", self.path());
        if let Some(query) = self.query() {
            out.text("url.query", query);
        }
        let mut route = String::new();
        template::push_template(self.path(), &mut route);
        out.text("http.route", &route);
        out.text(
            "network.protocol.version",
            if self.request.version == 0 {
                "1.0"
            } else {
                "1.1"
            },
        );
        if let Some(agent) = self.request.headers.get("user-agent") {
            out.text(
                "user_agent.original",
                &String::from_utf8_lossy(&agent[..agent.len().min(MAX_USER_AGENT)]),
            );
        }
        if let Some(status) = self.status() {
            out.int("http.response.status_code", i64::from(status));
        }
    }

    /// The conventions: 5xx is an error on both sides, 4xx on the client's only (the server did its job).
    fn span_error(&self, server_side: bool) -> bool {
        let limit = if server_side { 500 } else { 400 };
        self.status().is_some_and(|s| s >= limit)
    }

    fn write_metric_labels(&self, out: &mut MetricLabels) {
        out.reset(&self.request.method);
        template::push_template(self.path(), &mut out.route);
        if let Some(code) = self.status() {
            out.status.push_str(itoa::Buffer::new().format(code));
            out.status_class = status_class(code);
        }
    }
}

fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        http::{Headers, HttpRequest, HttpResponse},
        plugin::Attribute,
    };

    fn exchange(target: &str, status: Option<u16>) -> HttpExchange {
        HttpExchange {
            request: HttpRequest {
                method: "GET".into(),
                target: target.into(),
                version: 1,
                headers: Headers::default(),
                body: crate::protocol::common::Blob::default(),
                trailers: Headers::default(),
            },
            response: status.map(|status| HttpResponse {
                status,
                ..HttpResponse::default()
            }),
        }
    }

    #[test]
    fn attributes_follow_the_conventions() {
        let x = exchange("/users/42?limit=2", Some(404));
        let mut attributes = Vec::new();
        x.span_attributes(&mut attributes);
        for expected in [
            Attribute::text("http.request.method", "GET"),
            Attribute::text("url.path", "/users/42"),
            Attribute::text("url.query", "limit=2"),
            Attribute::int("http.response.status_code", 404),
        ] {
            assert!(
                attributes.contains(&expected),
                "{expected:?} in {attributes:?}"
            );
        }
        let mut name = String::new();
        x.span_name(&mut name);
        assert!(name.starts_with("GET /users/"), "{name}");
    }

    #[test]
    fn a_4xx_is_an_error_of_the_client_only() {
        let not_found = exchange("/", Some(404));
        assert!(!not_found.span_error(true));
        assert!(not_found.span_error(false));
        let failed = exchange("/", Some(503));
        assert!(failed.span_error(true) && failed.span_error(false));
        assert!(!exchange("/", None).span_error(false));
        let labels = failed.metric_labels();
        assert_eq!(
            (labels.status.as_str(), labels.status_class),
            ("503", "5xx")
        );
        assert_eq!(exchange("/", None).metric_labels().status_class, "none");
    }
}
