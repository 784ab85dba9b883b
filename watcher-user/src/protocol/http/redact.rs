//! Which parts of an HTTP exchange are secrets: credential headers (`Authorization` and
//! `Proxy-Authorization` after their scheme, every cookie value of `Cookie`, the value of `Set-Cookie`,
//! headers with secret names such as `X-Api-Key` or `X-Auth-Token`, and those given by `--redact-header`),
//! passwords and secret-named parameters in the target and in URL-valued headers (`Location`, `Referer`),
//! and secret-named fields of form and JSON bodies, in requests and responses alike.

use compact_str::CompactString;

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

/// Masks the secrets of the request target in place.
#[allow(unsafe_code)]
fn redact_target(target: &mut CompactString) -> bool {
    // SAFETY: `mask_url` only overwrites whole runs that start after an ASCII delimiter and end before
    // one (or at the end) with ASCII `*`, so every character is either kept whole or replaced whole and
    // the text stays UTF-8. Masking a copy and storing it back would cost an allocation per exchange.
    let found = mask_url(unsafe { target.as_mut_str().as_bytes_mut() });
    debug_assert!(std::str::from_utf8(target.as_bytes()).is_ok());
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
    let mut lower = [0u8; LONGEST_KNOWN_NAME];
    // A `match` on the lower-cased name dispatches on its length and compares a few candidates: a
    // case-blind comparison with every name in turn was a twentieth of decoding an HTTP exchange.
    match lower_case(name, &mut lower) {
        b"authorization" | b"proxy-authorization" => {
            // `Bearer <token>`: the scheme stays.
            let credentials = match value.iter().position(|&b| b == b' ') {
                Some(space) => &mut value[space + 1..],
                None => value,
            };
            mask(credentials)
        }
        b"cookie" => {
            // `a=1; b=2`: names stay, every value is masked.
            let mut found = false;
            for cookie in value.split_mut(|&b| b == b';') {
                if let Some(eq) = cookie.iter().position(|&b| b == b'=') {
                    found |= mask(&mut cookie[eq + 1..]);
                }
            }
            found
        }
        b"set-cookie" => {
            // `name=value; Path=/; HttpOnly`: the value is masked, the attributes stay.
            let pair_end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
            let pair = &mut value[..pair_end];
            match pair.iter().position(|&b| b == b'=') {
                Some(eq) => mask(&mut pair[eq + 1..]),
                None => mask(pair),
            }
        }
        b"location" | b"content-location" | b"referer" => mask_url(value),
        lower => {
            if policy.is_extra_header(name)
                || (!is_common_and_harmless(lower) && is_secret_name(name.as_bytes()))
            {
                mask(value)
            } else {
                false
            }
        }
    }
}

/// Longer than every header name [`redact_header`] knows by name, the common harmless ones included.
const LONGEST_KNOWN_NAME: usize = 32;

/// `name` in lower case, in `buf`; empty when it is too long to be a name known by name.
fn lower_case<'b>(name: &str, buf: &'b mut [u8; LONGEST_KNOWN_NAME]) -> &'b [u8] {
    let Some(lower) = buf.get_mut(..name.len()) else {
        return &[];
    };
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    lower
}

/// Defines [`is_common_and_harmless`] (and, for the tests, the list `COMMON_HARMLESS`) from one list
/// of names.
macro_rules! common_and_harmless {
    ($($name:literal),* $(,)?) => {
        /// The names, for the test that none of them is a secret.
        #[cfg(test)]
        const COMMON_HARMLESS: &[&[u8]] = &[$($name),*];

        /// Whether `lower` (a lower-cased name) is one of the header names most messages carry, none
        /// of them a secret by [`is_secret_name`] (a test checks it): recognised by a `match`, so the
        /// search of a name for secret parts, several times dearer, runs only for the rest.
        fn is_common_and_harmless(lower: &[u8]) -> bool {
            matches!(lower, $($name)|*)
        }
    };
}

common_and_harmless![
    b"accept",
    b"accept-encoding",
    b"accept-language",
    b"accept-ranges",
    b"age",
    b"cache-control",
    b"connection",
    b"content-encoding",
    b"content-length",
    b"content-type",
    b"date",
    b"etag",
    b"expires",
    b"host",
    b"if-modified-since",
    b"if-none-match",
    b"keep-alive",
    b"last-modified",
    b"origin",
    b"pragma",
    b"server",
    b"transfer-encoding",
    b"upgrade",
    b"user-agent",
    b"vary",
    b"via",
    b"x-forwarded-for",
    b"x-request-id",
];

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
        let mut buf = [0; LONGEST_KNOWN_NAME];
        for name in COMMON_HARMLESS {
            let shown = String::from_utf8_lossy(name);
            assert!(!is_secret_name(name), "{shown}");
            let upper = shown.to_ascii_uppercase();
            assert!(
                is_common_and_harmless(lower_case(&upper, &mut buf)),
                "{shown}"
            );
        }
        assert!(!is_common_and_harmless(b"x-api-key"));
        assert!(!is_common_and_harmless(b"hosts"));
        // Longer than any name known by name: not one of them, and still searched for secret parts.
        let long = format!("x-{}-token", "a".repeat(LONGEST_KNOWN_NAME));
        assert!(lower_case(&long, &mut buf).is_empty());
        let mut value = b"abc".to_vec();
        assert!(redact_header(&Redaction::new(vec![]), &long, &mut value));
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
    fn a_target_kept_inline_is_masked_in_place_whole_characters_at_a_time() {
        // 19 bytes: held inside the `CompactString` itself, whose spare bytes must stay untouched.
        let mut x = exchange("/s?q=\u{e9}&token=s\u{fc}\u{df}", &[], "", &[], "");
        assert!(!x.request.target.is_heap_allocated());
        assert!(x.redact(&Redaction::default()));
        assert_eq!(x.request.target, "/s?q=\u{e9}&token=*****");
        let mut x = exchange("/search?q=caf\u{e9}", &[], "", &[], "");
        assert!(!x.redact(&Redaction::default()));
        assert_eq!(x.request.target, "/search?q=caf\u{e9}");
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
