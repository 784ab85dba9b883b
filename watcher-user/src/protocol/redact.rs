//! Secrets kept out of every output: the redaction policy, and the masking rules every protocol shares
//! (secret-looking names, URLs, query strings and forms, JSON documents).
//!
//! Secrets are masked where exchanges are made, before a record exists: by the shard for live captures and
//! by the NDJSON reader for files read back. So every later stage (table, detail screen, NDJSON, `stat`,
//! `--fail-on` reports) only ever sees the masked form, and no stage can forget to redact. Masking
//! replaces each byte of a secret with [`MASK`]: a value keeps its length and the text around it keeps its
//! shape (a JSON body stays JSON, a query stays a query), and the value holding it is marked redacted.
//!
//! What counts as a secret name is [`is_secret_name`]; `docs/json-schema.md` lists every rule.
//!
//! Pure functions; nothing here does I/O.

/// What a secret's bytes are replaced with.
pub const MASK: u8 = b'*';

/// Which secrets to mask: all of them (the default), or none (`--show-secrets`); plus header names the
/// user added (`--redact-header`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redaction {
    enabled: bool,
    /// Lower-case.
    extra_headers: Vec<String>,
}

impl Default for Redaction {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Redaction {
    /// Every rule on, plus the headers named in `extra_headers` (any case).
    pub fn new(extra_headers: Vec<String>) -> Self {
        Self {
            enabled: true,
            extra_headers: extra_headers
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Nothing masked (`--show-secrets`).
    pub fn off() -> Self {
        Self {
            enabled: false,
            extra_headers: Vec::new(),
        }
    }

    /// Whether secrets are masked at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the user asked for header `name` (any case) to be masked.
    pub fn is_extra_header(&self, name: &str) -> bool {
        self.extra_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// An exchange whose secrets can be masked in place.
pub trait Redact {
    /// Masks every secret `policy` covers; returns whether any was found.
    fn redact(&mut self, policy: &Redaction) -> bool;
}

/// Masks all of `bytes`; returns whether there was anything to mask.
pub fn mask(bytes: &mut [u8]) -> bool {
    bytes.fill(MASK);
    !bytes.is_empty()
}

/// Parts of a name that say it holds a secret, wherever they appear in it. Sorted, so the parts starting
/// with one letter are neighbours ([`PARTS_FROM`]).
const SECRET_PARTS: &[&[u8]] = &[
    b"accesskey",
    b"apikey",
    b"authkey",
    b"authorization",
    b"cookie",
    b"credential",
    b"csrf",
    b"passphrase",
    b"passwd",
    b"password",
    b"privatekey",
    b"secret",
    b"session",
    b"signature",
    b"token",
    b"xsrf",
];

/// For each byte, the range of [`SECRET_PARTS`] starting with it (empty for most bytes), so a name is
/// compared with only the parts that can start where it is.
const PARTS_FROM: [(u8, u8); 256] = {
    let mut table = [(0u8, 0u8); 256];
    let mut i = 0;
    while i < SECRET_PARTS.len() {
        let first = SECRET_PARTS[i][0] as usize;
        if table[first].1 == 0 {
            table[first].0 = i as u8;
        }
        table[first].1 = i as u8 + 1;
        i += 1;
    }
    table
};

/// Short names that are secrets only on their own (`pass`, but not `passenger`).
const SECRET_NAMES: &[&[u8]] = &[
    b"pass", b"pwd", b"pw", b"auth", b"sig", b"jwt", b"otp", b"pin",
];

/// Longest name examined; a longer one is judged by its first this many letters and digits.
const NAME_MAX: usize = 64;

/// Whether a field, parameter or header named `name` holds a secret: its letters and digits, lower-cased
/// and percent-decoded (`X-Api-Key`, `api_key`, `apiKey` and `api%5Fkey` are all `apikey`), contain one of
/// [`SECRET_PARTS`] or are one of [`SECRET_NAMES`].
pub fn is_secret_name(name: &[u8]) -> bool {
    if memchr::memchr(b'%', name).is_some() {
        let mut decoded = [0u8; NAME_MAX * 3];
        return says_secret(percent_decode(name, &mut decoded));
    }
    says_secret(name)
}

/// [`is_secret_name`] of a name without escapes.
fn says_secret(name: &[u8]) -> bool {
    let mut compact = [0u8; NAME_MAX];
    let mut n = 0;
    for &b in name {
        let c = NAME_BYTE[usize::from(b)];
        if c != 0 {
            if n == NAME_MAX {
                break;
            }
            compact[n] = c;
            n += 1;
        }
    }
    let compact = &compact[..n];
    SECRET_NAMES.contains(&compact)
        || (0..compact.len()).any(|i| {
            let rest = &compact[i..];
            let (from, to) = PARTS_FROM[usize::from(rest[0])];
            SECRET_PARTS[usize::from(from)..usize::from(to)]
                .iter()
                .any(|part| rest.starts_with(part))
        })
}

/// Each byte as it counts in a name: letters lower-cased, digits as they are, anything else 0 (left out).
const NAME_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// `name` with `%XX` escapes decoded, as far as fits in `out`.
fn percent_decode<'a>(name: &[u8], out: &'a mut [u8]) -> &'a [u8] {
    let (mut i, mut n) = (0, 0);
    while i < name.len() && n < out.len() {
        let mut b = name[i];
        if b == b'%' {
            if let Some(decoded) = name.get(i + 1..i + 3).and_then(hex_byte) {
                b = decoded;
                i += 2;
            }
        }
        out[n] = b;
        n += 1;
        i += 1;
    }
    &out[..n]
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

/// Masks the values of secret-named parameters in `name=value&name=value` text (a query string, a form
/// body, a URL fragment); returns whether any was found.
pub fn mask_params(text: &mut [u8]) -> bool {
    let mut found = false;
    for param in text.split_mut(|&b| b == b'&') {
        if let Some(eq) = param.iter().position(|&b| b == b'=') {
            let (name, value) = param.split_at_mut(eq);
            if is_secret_name(name) {
                found |= mask(&mut value[1..]);
            }
        }
    }
    found
}

/// Masks the secrets of a URL or request target: the password of `user:password@` and secret-named
/// parameters of the query and the fragment; returns whether any was found.
pub fn mask_url(url: &mut [u8]) -> bool {
    let mut found = false;
    let fragment_at = url.iter().position(|&b| b == b'#').unwrap_or(url.len());
    let (before, fragment) = url.split_at_mut(fragment_at);
    if let Some(scheme_end) = find_scheme_end(before) {
        let authority = &mut before[scheme_end + 3..];
        let end = authority
            .iter()
            .position(|&b| matches!(b, b'/' | b'?'))
            .unwrap_or(authority.len());
        let authority = &mut authority[..end];
        if let Some(at) = authority.iter().rposition(|&b| b == b'@') {
            let userinfo = &mut authority[..at];
            if let Some(colon) = userinfo.iter().position(|&b| b == b':') {
                found |= mask(&mut userinfo[colon + 1..]);
            }
        }
    }
    if let Some(q) = before.iter().position(|&b| b == b'?') {
        found |= mask_params(&mut before[q + 1..]);
    }
    if let Some(params) = fragment.get_mut(1..) {
        found |= mask_params(params);
    }
    found
}

/// Where `://` starts. Not `memmem::find`: it builds a searcher per call, which costs more than the
/// search in a URL.
fn find_scheme_end(url: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b':', url).find(|&at| url[at + 1..].starts_with(b"//"))
}

/// Deepest nesting tracked in a JSON document; deeper containers are still scanned, and a secret opened
/// deeper still masks everything up to where the tracked depth closes it.
const JSON_DEPTH: usize = 1024;

/// Masks secrets in a JSON document, or in the captured prefix of one: the value of every member whose
/// name is a secret name (strings' contents and numbers; for an object or array, every string and number
/// inside it). Punctuation, quotes and names stay, so the document keeps its shape. Not a validator: bytes
/// that are not JSON are skipped. Returns whether any secret was found.
pub fn mask_json(doc: &mut [u8]) -> bool {
    let mut found = false;
    let mut depth = 0usize;
    // The depth a secret object or array was opened at, while inside one.
    let mut secret_from: Option<usize> = None;
    // The member name just read is a secret: its value is.
    let mut secret_value = false;
    let mut i = 0;
    while i < doc.len() {
        match doc[i] {
            b'"' => {
                let end = string_end(doc, i + 1);
                let content = i + 1..end.min(doc.len());
                let next = end + 1;
                let is_name = doc[next.min(doc.len())..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    == Some(&b':');
                if is_name {
                    secret_value = secret_from.is_none() && is_secret_name(&doc[content]);
                } else {
                    if secret_value || secret_from.is_some() {
                        found |= mask(&mut doc[content]);
                    }
                    secret_value = false;
                }
                i = next;
            }
            b'{' | b'[' => {
                if secret_value {
                    secret_from = Some(depth);
                    secret_value = false;
                }
                depth = (depth + 1).min(JSON_DEPTH);
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if secret_from == Some(depth) {
                    secret_from = None;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let end = doc[i..]
                    .iter()
                    .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .map_or(doc.len(), |n| i + n);
                if secret_value || secret_from.is_some() {
                    found |= mask(&mut doc[i..end]);
                }
                secret_value = false;
                i = end;
            }
            b',' | b':' => i += 1,
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                // `true`, `false`, `null` (not secrets), or bytes that are not JSON.
                secret_value = false;
                i += 1;
            }
        }
    }
    found
}

/// The index of the quote closing a string whose contents start at `from`, or `doc.len()` when the
/// document ends inside it.
fn string_end(doc: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(at) = doc
        .get(i..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        i += at;
        if doc[i] == b'"' {
            return i;
        }
        i += 2;
    }
    doc.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(rule: fn(&mut [u8]) -> bool, text: &str) -> (String, bool) {
        let mut bytes = text.as_bytes().to_vec();
        let found = rule(&mut bytes);
        (String::from_utf8(bytes).unwrap(), found)
    }

    #[test]
    fn secret_names_are_found_whatever_their_spelling() {
        for name in [
            "password",
            "Password",
            "user_password",
            "X-Api-Key",
            "api_key",
            "apiKey",
            "api%5Fkey",
            "access_token",
            "X-Auth-Token",
            "client_secret",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "sig",
            "pass",
            "pwd",
            "Cookie",
            "Set-Cookie",
            "Authorization",
            "Proxy-Authorization",
            "X-CSRF-Token",
            "sessionid",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(is_secret_name(name.as_bytes()), "{name}");
        }
        for name in [
            "user",
            "passenger",
            "q",
            "page",
            "key",
            "Content-Type",
            "WWW-Authenticate",
            "Sec-WebSocket-Key",
            "author",
            "id",
            "",
        ] {
            assert!(!is_secret_name(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn the_parts_are_sorted_so_each_letter_finds_all_of_its_parts() {
        assert!(SECRET_PARTS.windows(2).all(|w| w[0] < w[1]));
        for part in SECRET_PARTS {
            assert!(is_secret_name(part), "{}", String::from_utf8_lossy(part));
        }
    }

    proptest::proptest! {
        /// The search by first letter ([`PARTS_FROM`]) finds what a plain search of the compacted
        /// name for every part finds.
        #[test]
        fn names_are_judged_as_a_plain_search_would(
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "to", "ken", "pass", "word", "x", "s", "rf", "api", "-", "_", "Key", "coo",
                    "kie", "session", "secr", "et", "a", "uth", "sig", "csrf", "9", "%5F", "é",
                ]),
                0..8,
            )
        ) {
            let name = words.concat();
            let compact: Vec<u8> = percent_decode(name.as_bytes(), &mut [0u8; NAME_MAX * 3])
                .iter()
                .filter_map(|&b| Some(NAME_BYTE[usize::from(b)]).filter(|&c| c != 0))
                .take(NAME_MAX)
                .collect();
            let plain = SECRET_NAMES.contains(&&compact[..])
                || SECRET_PARTS
                    .iter()
                    .any(|part| compact.windows(part.len()).any(|w| w == *part));
            proptest::prop_assert_eq!(is_secret_name(name.as_bytes()), plain, "{}", name);
        }
    }

    #[test]
    fn a_very_long_name_is_judged_by_its_start_without_overflowing() {
        let long = format!("token{}", "x".repeat(10_000));
        assert!(is_secret_name(long.as_bytes()));
        let late = format!("{}token", "x".repeat(10_000));
        assert!(!is_secret_name(late.as_bytes()));
        // A truncated percent escape at the end is just a character.
        assert!(!is_secret_name(b"abc%4"));
    }

    #[test]
    fn parameters_with_secret_names_are_masked_and_others_kept() {
        assert_eq!(
            masked(mask_params, "user=bob&password=hunter2&x=1"),
            ("user=bob&password=*******&x=1".into(), true)
        );
        assert_eq!(
            masked(mask_params, "q=rust&page=2"),
            ("q=rust&page=2".into(), false)
        );
        assert_eq!(masked(mask_params, "token=&a"), ("token=&a".into(), false));
        assert_eq!(masked(mask_params, ""), (String::new(), false));
    }

    #[test]
    fn urls_lose_passwords_and_secret_parameters() {
        assert_eq!(
            masked(
                mask_url,
                "/cb?code=x&access_token=abc&state=s#id_token=jwt1"
            ),
            (
                "/cb?code=x&access_token=***&state=s#id_token=****".into(),
                true
            )
        );
        assert_eq!(
            masked(mask_url, "http://alice:s3cret@example.com/p?q=1"),
            ("http://alice:******@example.com/p?q=1".into(), true)
        );
        assert_eq!(
            masked(mask_url, "http://example.com/a@b?c=1"),
            ("http://example.com/a@b?c=1".into(), false)
        );
        assert_eq!(
            masked(mask_url, "/plain/path"),
            ("/plain/path".into(), false)
        );
    }

    #[test]
    fn json_members_with_secret_names_are_masked_in_place() {
        assert_eq!(
            masked(
                mask_json,
                r#"{"user":"bob","password":"hunter2","pin":1234,"ok":true}"#
            ),
            (
                r#"{"user":"bob","password":"*******","pin":****,"ok":true}"#.into(),
                true
            )
        );
        // A secret object or array: everything inside, names kept.
        assert_eq!(
            masked(
                mask_json,
                r#"{"credentials": {"user": "a", "list": ["b", 12]}, "next": "c"}"#
            ),
            (
                r#"{"credentials": {"user": "*", "list": ["*", **]}, "next": "c"}"#.into(),
                true
            )
        );
        // Escapes inside a secret are masked with it.
        assert_eq!(
            masked(mask_json, r#"[{"token": "a\"b"}]"#),
            (r#"[{"token": "****"}]"#.into(), true)
        );
        // A value that looks like a secret name is not a name.
        assert_eq!(
            masked(mask_json, r#"{"field": "password", "n": 1}"#),
            (r#"{"field": "password", "n": 1}"#.into(), false)
        );
    }

    #[test]
    fn a_cut_or_broken_json_document_is_masked_as_far_as_it_goes() {
        assert_eq!(
            masked(mask_json, r#"{"a": 1, "secret": "abcd"#),
            (r#"{"a": 1, "secret": "****"#.into(), true)
        );
        assert_eq!(
            masked(mask_json, r#"{"secret"#),
            (r#"{"secret"#.into(), false)
        );
        for hostile in [
            &b"\"\\"[..],
            b"}}}]]]",
            b"{{{{{{\"token\":",
            b"\xff\xfe\"",
            b"-",
        ] {
            let mut bytes = hostile.to_vec();
            mask_json(&mut bytes);
            assert_eq!(bytes.len(), hostile.len());
        }
    }

    #[test]
    fn the_policy_knows_its_extra_headers_in_any_case() {
        let policy = Redaction::new(vec!["X-Internal".into()]);
        assert!(policy.is_enabled());
        assert!(policy.is_extra_header("x-internal"));
        assert!(!policy.is_extra_header("x-other"));
        assert!(!Redaction::off().is_enabled());
        assert!(Redaction::default().is_enabled());
    }
}
