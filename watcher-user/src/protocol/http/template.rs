//! Path templates: `/users/42/orders/7` → `/users/{id}/orders/{id}`, so requests for different objects
//! of one kind land in one statistics group.
//!
//! Each `/`-separated segment is looked at alone, and replaced when it is, in this order of precedence:
//! - only ASCII digits → `{id}`;
//! - a UUID (`8-4-4-4-12` hex digits, either case) → `{uuid}`;
//! - at least [`MIN_HEX`] hex digits and nothing else (hashes, object ids) → `{hex}`;
//! - at least [`MIN_TOKEN`] ASCII letters and digits, with at least one of each (base62 tokens, session
//!   ids) → `{token}`.
//!
//! Everything else, empty segments (so a trailing `/` stays) included, is kept as sent. A query (`?...`)
//! or fragment (`#...`) is dropped. Deliberately simple heuristics: a word made only of the letters
//! `a`–`f` at least 16 long would read as hex, and a numeric year as an id; both are rare in paths and
//! harmless in a statistics key.
//!
//! Pure text functions: they never allocate except to grow the caller's buffer.

/// Fewest hex digits for a segment to count as `{hex}`: shorter runs are too often words.
pub const MIN_HEX: usize = 16;
/// Fewest characters for a letters-and-digits segment to count as `{token}`.
pub const MIN_TOKEN: usize = 20;

/// The template of `path`, as a new string.
pub fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    push_template(path, &mut out);
    out
}

/// Appends the template of `path` to `out` (a `String`, or a metric label's `CompactString`).
pub fn push_template<'a>(path: &'a str, out: &mut impl Extend<&'a str>) {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    for (i, segment) in path.split('/').enumerate() {
        let separator = if i > 0 { "/" } else { "" };
        out.extend([separator, placeholder(segment).unwrap_or(segment)]);
    }
}

/// The placeholder a segment is replaced by, if it looks like an identifier.
fn placeholder(segment: &str) -> Option<&'static str> {
    let bytes = segment.as_bytes();
    if bytes.is_empty() {
        None
    } else if bytes.iter().all(u8::is_ascii_digit) {
        Some("{id}")
    } else if is_uuid(bytes) {
        Some("{uuid}")
    } else if bytes.len() >= MIN_HEX && bytes.iter().all(u8::is_ascii_hexdigit) {
        Some("{hex}")
    } else if is_token(bytes) {
        Some("{token}")
    } else {
        None
    }
}

fn is_uuid(bytes: &[u8]) -> bool {
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| {
            if DASHES.contains(&i) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

fn is_token(bytes: &[u8]) -> bool {
    bytes.len() >= MIN_TOKEN
        && bytes.iter().all(u8::is_ascii_alphanumeric)
        && bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().any(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::template;

    #[test]
    fn numeric_segments_become_ids() {
        assert_eq!(template("/users/42/orders/7"), "/users/{id}/orders/{id}");
        assert_eq!(template("/0"), "/{id}");
    }

    #[test]
    fn uuids_any_case_become_uuid() {
        assert_eq!(
            template("/items/123e4567-e89b-12d3-a456-426614174000/tags"),
            "/items/{uuid}/tags"
        );
        assert_eq!(
            template("/items/123E4567-E89B-12D3-A456-426614174000"),
            "/items/{uuid}"
        );
        // Dashes in the wrong places: not a UUID, and not hex or a token either.
        assert_eq!(
            template("/items/123e4567e-89b-12d3-a456-426614174000"),
            "/items/123e4567e-89b-12d3-a456-426614174000"
        );
    }

    #[test]
    fn long_hex_becomes_hex_and_short_hex_stays() {
        assert_eq!(
            template("/objects/da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            "/objects/{hex}"
        );
        assert_eq!(template("/blobs/0123456789ABCDEF"), "/blobs/{hex}");
        // 15 hex digits: below the threshold, and too short for a token.
        assert_eq!(template("/blobs/0123456789abcde"), "/blobs/0123456789abcde");
        assert_eq!(template("/cafe/beef"), "/cafe/beef");
    }

    #[test]
    fn long_mixed_letters_and_digits_become_token() {
        assert_eq!(
            template("/s/aZ3kQ9pL2mN8xR4tV7wY"),
            "/s/{token}",
            "20 base62 characters"
        );
        // 19 characters: too short.
        assert_eq!(template("/s/aZ3kQ9pL2mN8xR4tV"), "/s/aZ3kQ9pL2mN8xR4tV");
        // Long but letters only, or with punctuation: words and slugs stay.
        assert_eq!(
            template("/docs/internationalization"),
            "/docs/internationalization"
        );
        assert_eq!(
            template("/blog/release-notes-2024-edition"),
            "/blog/release-notes-2024-edition"
        );
    }

    #[test]
    fn query_and_fragment_are_dropped_and_slashes_kept() {
        assert_eq!(template("/users/42?expand=1"), "/users/{id}");
        assert_eq!(template("/users/42#top"), "/users/{id}");
        assert_eq!(template("/users/42/"), "/users/{id}/");
        assert_eq!(template("/"), "/");
        assert_eq!(template("*"), "*");
        assert_eq!(template(""), "");
        assert_eq!(template("/api/v2/items"), "/api/v2/items");
    }
}
