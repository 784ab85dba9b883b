//! Which parts of an HTTP exchange are secrets: credential headers (`Authorization` and
//! `Proxy-Authorization` after their scheme, every cookie value of `Cookie`, the value of `Set-Cookie`,
//! headers with secret names such as `X-Api-Key` or `X-Auth-Token`, and those given by `--redact-header`),
//! passwords and secret-named parameters in the target and in URL-valued headers (`Location`, `Referer`),
//! and secret-named fields of form and JSON bodies, in requests and responses alike.

use super::exchange::{Headers, HttpExchange};
use crate::protocol::{
    common::Blob,
    redact::{is_secret_name, mask, mask_json, mask_params, mask_url, Redact, Redaction},
};

impl Redact for HttpExchange {
    fn redact(&mut self, policy: &Redaction) -> bool {
        if !policy.is_enabled() {
            return false;
        }
        let request = &mut self.request;
        let mut found = redact_target(&mut request.target);
        found |= redact_message(
            policy,
            &mut request.headers,
            &mut request.body,
            &mut request.trailers,
        );
        if let Some(response) = &mut self.response {
            found |= redact_message(
                policy,
                &mut response.headers,
                &mut response.body,
                &mut response.trailers,
            );
        }
        found
    }
}

fn redact_target(target: &mut String) -> bool {
    let mut bytes = std::mem::take(target).into_bytes();
    let found = mask_url(&mut bytes);
    // Masks run between ASCII delimiters and are ASCII, so the text stays UTF-8.
    *target = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    found
}

fn redact_message(
    policy: &Redaction,
    headers: &mut Headers,
    body: &mut Blob,
    trailers: &mut Headers,
) -> bool {
    let format = body_format(headers, body);
    let mut found = headers.redact_with(|name, value| redact_header(policy, name, value));
    found |= trailers.redact_with(|name, value| redact_header(policy, name, value));
    found |= match format {
        BodyFormat::Json => body.redact_with(mask_json),
        BodyFormat::Form => body.redact_with(mask_params),
        BodyFormat::Other => false,
    };
    found
}

/// Masks the secrets of one header value, by the header's name.
fn redact_header(policy: &Redaction, name: &str, value: &mut [u8]) -> bool {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    if is("authorization") || is("proxy-authorization") {
        // `Bearer <token>`: the scheme stays.
        let credentials = match value.iter().position(|&b| b == b' ') {
            Some(space) => &mut value[space + 1..],
            None => value,
        };
        mask(credentials)
    } else if is("cookie") {
        // `a=1; b=2`: names stay, every value is masked.
        let mut found = false;
        for cookie in value.split_mut(|&b| b == b';') {
            if let Some(eq) = cookie.iter().position(|&b| b == b'=') {
                found |= mask(&mut cookie[eq + 1..]);
            }
        }
        found
    } else if is("set-cookie") {
        // `name=value; Path=/; HttpOnly`: the value is masked, the attributes stay.
        let pair_end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
        let pair = &mut value[..pair_end];
        match pair.iter().position(|&b| b == b'=') {
            Some(eq) => mask(&mut pair[eq + 1..]),
            None => mask(pair),
        }
    } else if is("location") || is("content-location") || is("referer") {
        mask_url(value)
    } else if policy.is_extra_header(name)
        || (!is_common_and_harmless(name) && is_secret_name(name.as_bytes()))
    {
        mask(value)
    } else {
        false
    }
}

/// Header names most messages carry, none of them a secret by [`is_secret_name`] (a test checks it):
/// recognised by length and a comparison, so the search of a name for secret parts, several times
/// dearer, runs only for the rest.
const COMMON_HARMLESS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "etag",
    "expires",
    "host",
    "if-modified-since",
    "if-none-match",
    "keep-alive",
    "last-modified",
    "origin",
    "pragma",
    "server",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "x-forwarded-for",
    "x-request-id",
];

/// Whether `name` (any case) is one of [`COMMON_HARMLESS`].
fn is_common_and_harmless(name: &str) -> bool {
    COMMON_HARMLESS
        .iter()
        .any(|h| h.len() == name.len() && h.eq_ignore_ascii_case(name))
}

/// How a body is searched for secrets.
enum BodyFormat {
    /// Members with secret names.
    Json,
    /// `name=value&...` pairs with secret names.
    Form,
    /// Not searched.
    Other,
}

/// The body's format by its `Content-Type`, or JSON when it has none that says otherwise but starts like
/// a JSON object or array.
fn body_format(headers: &Headers, body: &Blob) -> BodyFormat {
    let content_type = headers.get("content-type").unwrap_or_default();
    let has = |part: &[u8]| {
        content_type
            .windows(part.len())
            .any(|w| w.eq_ignore_ascii_case(part))
    };
    let looks_json = matches!(
        body.data.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    );
    if has(b"json") || (looks_json && !has(b"multipart/")) {
        BodyFormat::Json
    } else if has(b"application/x-www-form-urlencoded") {
        BodyFormat::Form
    } else {
        BodyFormat::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::exchange::{HttpRequest, HttpResponse};

    #[test]
    fn the_common_harmless_headers_are_no_secrets_and_skipping_them_changes_nothing() {
        for name in COMMON_HARMLESS {
            assert!(!is_secret_name(name.as_bytes()), "{name}");
            assert!(is_common_and_harmless(&name.to_ascii_uppercase()), "{name}");
        }
        assert!(!is_common_and_harmless("X-Api-Key"));
        assert!(!is_common_and_harmless("hosts"));
        // A header the user asked for is masked even when it is one of them.
        let policy = Redaction::new(vec!["Server".to_owned()]);
        let mut value = b"nginx".to_vec();
        assert!(redact_header(&policy, "server", &mut value));
        assert_eq!(value, b"*****");
    }

    fn exchange(
        target: &str,
        request_headers: &[(&str, &str)],
        request_body: &str,
        response_headers: &[(&str, &str)],
        response_body: &str,
    ) -> HttpExchange {
        let headers = |fields: &[(&str, &str)]| -> Headers {
            fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
        };
        HttpExchange {
            request: HttpRequest {
                method: "POST".into(),
                target: target.into(),
                version: 1,
                headers: headers(request_headers),
                body: Blob::full(request_body.as_bytes()),
                trailers: Headers::default(),
            },
            response: Some(HttpResponse {
                version: 1,
                status: 200,
                reason: "OK".into(),
                headers: headers(response_headers),
                body: Blob::full(response_body.as_bytes()),
                trailers: Headers::default(),
            }),
        }
    }

    fn fields(headers: &Headers) -> Vec<(String, String, bool)> {
        headers
            .iter_marked()
            .map(|(n, v, r)| (n.to_owned(), String::from_utf8_lossy(v).into_owned(), r))
            .collect()
    }

    fn field(name: &str, value: &str, redacted: bool) -> (String, String, bool) {
        (name.into(), value.into(), redacted)
    }

    #[test]
    fn credential_headers_are_masked_keeping_what_is_not_secret() {
        let mut x = exchange(
            "/",
            &[
                ("Host", "example.com"),
                ("Authorization", "Bearer abc.def"),
                ("proxy-authorization", "opaque"),
                ("Cookie", "theme=dark; session=s3cr3t"),
                ("X-Api-Key", "k1"),
                ("X-Auth-Token", "t1"),
                ("Referer", "https://example.com/?token=t2&x=1"),
                ("X-Custom", "c"),
            ],
            "",
            &[
                ("Set-Cookie", "sid=xyz; Path=/; HttpOnly"),
                ("Location", "https://u:pw@example.com/next"),
                ("Content-Type", "text/plain"),
            ],
            "",
        );
        assert!(x.redact(&Redaction::new(vec!["x-custom".into()])));
        assert_eq!(
            fields(&x.request.headers),
            [
                field("Host", "example.com", false),
                field("Authorization", "Bearer *******", true),
                field("proxy-authorization", "******", true),
                field("Cookie", "theme=****; session=******", true),
                field("X-Api-Key", "**", true),
                field("X-Auth-Token", "**", true),
                field("Referer", "https://example.com/?token=**&x=1", true),
                field("X-Custom", "*", true),
            ]
        );
        let response = x.response.as_ref().unwrap();
        assert_eq!(
            fields(&response.headers),
            [
                field("Set-Cookie", "sid=***; Path=/; HttpOnly", true),
                field("Location", "https://u:**@example.com/next", true),
                field("Content-Type", "text/plain", false),
            ]
        );
    }

    #[test]
    fn targets_and_bodies_lose_secret_parameters_and_fields() {
        let mut x = exchange(
            "/login?user=bob&password=pw&next=%2F",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "user=bob&pass=hunter2",
            &[("Content-Type", "application/json; charset=utf-8")],
            r#"{"access_token":"tok","expires_in":3600}"#,
        );
        assert!(x.redact(&Redaction::default()));
        assert_eq!(x.request.target, "/login?user=bob&password=**&next=%2F");
        assert_eq!(x.query(), Some("user=bob&password=**&next=%2F"));
        assert_eq!(
            (x.request.body.data.as_slice(), x.request.body.redacted()),
            (&b"user=bob&pass=*******"[..], true)
        );
        let body = &x.response.as_ref().unwrap().body;
        assert_eq!(
            (body.data.as_slice(), body.redacted()),
            (&br#"{"access_token":"***","expires_in":3600}"#[..], true)
        );
    }

    #[test]
    fn a_json_body_sent_as_a_form_is_still_searched_as_json() {
        // `curl -d '{...}'` labels JSON as a form.
        let mut x = exchange(
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            r#"{"password": "pw"}"#,
            &[],
            "",
        );
        assert!(x.redact(&Redaction::default()));
        assert_eq!(x.request.body.data.as_slice(), br#"{"password": "**"}"#);
    }

    #[test]
    fn nothing_secret_means_nothing_marked_and_show_secrets_masks_nothing() {
        let plain = exchange(
            "/a?q=1",
            &[("Accept", "*/*")],
            "hello",
            &[("Content-Type", "text/plain")],
            "{\"password\": \"x\"}",
        );
        let mut x = plain.clone();
        // A text/plain body that happens to look like JSON is still searched.
        assert!(x.redact(&Redaction::default()));
        let mut x = exchange("/a?q=1", &[("Accept", "*/*")], "hello", &[], "ok");
        let before = x.clone();
        assert!(!x.redact(&Redaction::default()));
        assert_eq!(x, before);
        let mut x = plain.clone();
        assert!(!x.redact(&Redaction::off()));
        assert_eq!(x, plain);
    }
}
