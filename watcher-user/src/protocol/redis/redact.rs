//! Which parts of a Redis exchange are secrets: credentials in commands (`AUTH`, `HELLO ... AUTH`,
//! `MIGRATE ... AUTH|AUTH2`, `CONFIG SET` and `SENTINEL SET` of credential settings, `ACL SETUSER`
//! password rules) and in replies (`CONFIG GET` of credential settings, the password hashes of
//! `ACL GETUSER` and `ACL LIST`). `redis-cli MONITOR` hides the first kind; watcher hides both.

use super::{
    exchange::{ExchangeKind, RedisExchange},
    resp::Frame,
};
use crate::protocol::{
    common::Blob,
    redact::{mask, Redact, Redaction},
};

impl Redact for RedisExchange {
    fn redact(&mut self, policy: &Redaction) -> bool {
        if !policy.is_enabled() || self.kind == ExchangeKind::Push {
            return false;
        }
        let found = redact_args(&self.command, &mut self.args);
        let reply_found = match &mut self.reply {
            Some(reply) => redact_reply(&self.command, &self.args, reply),
            None => false,
        };
        found | reply_found
    }
}

/// Whether a configuration setting (`CONFIG SET`, `SENTINEL SET`, `SENTINEL CONFIG SET`) holds a
/// credential: `requirepass`, `masterauth`, `masteruser`, `tls-key-file-pass`, `auth-pass`,
/// `sentinel-pass`, ... (any name with `pass`, `auth`, `secret` or `token` in it, and the user names of
/// replication and Sentinel links).
fn is_credential_setting(name: &[u8]) -> bool {
    let name = name.to_ascii_lowercase();
    let has = |part: &[u8]| name.windows(part.len()).any(|w| w == part);
    has(b"pass")
        || has(b"auth")
        || has(b"secret")
        || has(b"token")
        || matches!(
            name.as_slice(),
            b"masteruser" | b"primaryuser" | b"auth-user" | b"sentinel-user"
        )
}

fn is(arg: Option<&Blob>, word: &str) -> bool {
    arg.is_some_and(|a| a.data.eq_ignore_ascii_case(word.as_bytes()))
}

fn redact_at(args: &mut [Blob], at: usize) -> bool {
    match args.get_mut(at) {
        Some(arg) => {
            arg.redact();
            true
        }
        None => false,
    }
}

/// Masks the credentials among a command's arguments.
fn redact_args(command: &str, args: &mut [Blob]) -> bool {
    let mut found = false;
    match command {
        "AUTH" => {
            for arg in args.iter_mut() {
                arg.redact();
                found = true;
            }
        }
        // HELLO [protover [AUTH username password] [SETNAME clientname]]
        "HELLO" => {
            let mut i = 1;
            while i < args.len() {
                if is(args.get(i), "AUTH") {
                    found |= redact_at(args, i + 1) | redact_at(args, i + 2);
                    i += 3;
                } else if is(args.get(i), "SETNAME") {
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH password | AUTH2 username password]
        // [KEYS key ...]
        "MIGRATE" => {
            let mut i = 5;
            while i < args.len() && !is(args.get(i), "KEYS") {
                if is(args.get(i), "AUTH") {
                    found |= redact_at(args, i + 1);
                    i += 2;
                } else if is(args.get(i), "AUTH2") {
                    found |= redact_at(args, i + 1) | redact_at(args, i + 2);
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
        // CONFIG SET name value [name value ...]
        "CONFIG" if is(args.first(), "SET") => found = redact_settings(&mut args[1..]),
        // SENTINEL SET master name value [...]; SENTINEL CONFIG SET name value [...]
        "SENTINEL" if is(args.first(), "SET") => {
            found = redact_settings(args.get_mut(2..).unwrap_or_default());
        }
        "SENTINEL" if is(args.first(), "CONFIG") && is(args.get(1), "SET") => {
            found = redact_settings(&mut args[2..]);
        }
        // ACL SETUSER name rule ...: `>password`, `<password`, `#hash`, `!hash` (the rule's first byte
        // stays, so the reader still sees that a password was added or removed).
        "ACL" if is(args.first(), "SETUSER") => {
            for rule in args.iter_mut().skip(2) {
                if matches!(rule.data.first(), Some(b'>' | b'<' | b'#' | b'!')) {
                    found |= rule.redact_with(|bytes| {
                        mask(&mut bytes[1..]);
                        true
                    });
                }
            }
        }
        _ => {}
    }
    found
}

/// Masks the value of every credential setting in `name value` pairs.
fn redact_settings(pairs: &mut [Blob]) -> bool {
    let mut found = false;
    for pair in pairs.chunks_mut(2) {
        if let [name, value] = pair {
            if is_credential_setting(&name.data) {
                value.redact();
                found = true;
            }
        }
    }
    found
}

/// Masks the credentials a reply discloses.
fn redact_reply(command: &str, args: &[Blob], reply: &mut Frame) -> bool {
    // A reply cut short by the capture size is judged by what was kept of it.
    let reply = match reply {
        Frame::Cut { kept, .. } => &mut **kept,
        whole => whole,
    };
    match command {
        // CONFIG GET pattern ...: `name value` pairs (an array in RESP2, a map in RESP3).
        "CONFIG" if is(args.first(), "GET") => redact_reply_pairs(reply, |name, value| {
            if is_credential_setting(name) {
                redact_frame(value)
            } else {
                false
            }
        }),
        // ACL GETUSER name: the `passwords` field lists password hashes.
        "ACL" if is(args.first(), "GETUSER") => redact_reply_pairs(reply, |name, value| {
            if name.eq_ignore_ascii_case(b"passwords") {
                redact_frame(value)
            } else {
                false
            }
        }),
        // ACL LIST: one line of rules per user, with `#hash` for each password.
        "ACL" if is(args.first(), "LIST") => {
            let mut found = false;
            if let Frame::Array(lines) | Frame::Set(lines) = reply {
                for line in lines {
                    if let Frame::Bulk(b) | Frame::Simple(b) = line {
                        found |= b.redact_with(mask_hash_rules);
                    }
                }
            }
            found
        }
        _ => false,
    }
}

/// Masks the digits of every `#hash` rule in an ACL rule line.
fn mask_hash_rules(line: &mut [u8]) -> bool {
    let mut found = false;
    for rule in line.split_mut(|&b| b == b' ') {
        if rule.first() == Some(&b'#') {
            found |= mask(&mut rule[1..]);
        }
    }
    found
}

/// Calls `judge` on each `name value` pair of a reply that is a map, or an array of alternating names
/// and values.
fn redact_reply_pairs(reply: &mut Frame, mut judge: impl FnMut(&[u8], &mut Frame) -> bool) -> bool {
    let mut found = false;
    match reply {
        Frame::Map(pairs) => {
            for (name, value) in pairs {
                if let Some(name) = frame_text(name) {
                    found |= judge(&name.data, value);
                }
            }
        }
        Frame::Array(items) => {
            for pair in items.chunks_mut(2) {
                if let [name, value] = pair {
                    if let Some(name) = frame_text(name) {
                        found |= judge(&name.data, value);
                    }
                }
            }
        }
        _ => {}
    }
    found
}

fn frame_text(frame: &Frame) -> Option<&Blob> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b),
        _ => None,
    }
}

/// Masks every string in a frame, however nested.
fn redact_frame(frame: &mut Frame) -> bool {
    match frame {
        Frame::Simple(b) | Frame::Bulk(b) => {
            b.redact();
            true
        }
        Frame::Verbatim { text, .. } => {
            text.redact();
            true
        }
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => items
            .iter_mut()
            .fold(false, |found, f| redact_frame(f) | found),
        Frame::Map(pairs) => pairs
            .iter_mut()
            .fold(false, |found, (_, v)| redact_frame(v) | found),
        Frame::Cut { kept, .. } => redact_frame(kept),
        Frame::Error(_)
        | Frame::Integer(_)
        | Frame::Null
        | Frame::Double(_)
        | Frame::Boolean(_)
        | Frame::BigNumber(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(words: &[&str], reply: Option<Frame>) -> RedisExchange {
        RedisExchange {
            kind: ExchangeKind::Command,
            command: words[0].to_ascii_uppercase().into(),
            args: words[1..]
                .iter()
                .map(|w| Blob::full(w.as_bytes()))
                .collect(),
            reply,
        }
    }

    /// The arguments after redaction, as text, and whether anything was found.
    fn redacted(words: &[&str]) -> (Vec<String>, bool) {
        let mut x = exchange(words, None);
        let found = x.redact(&Redaction::default());
        let args = x
            .args
            .iter()
            .map(|a| {
                let text = String::from_utf8_lossy(&a.data).into_owned();
                if a.redacted() {
                    format!("[{text}]")
                } else {
                    text
                }
            })
            .collect();
        (args, found)
    }

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Blob::full(s.as_bytes()))
    }

    #[test]
    fn auth_hides_every_argument() {
        assert_eq!(
            redacted(&["AUTH", "hunter2"]),
            (vec!["[*******]".into()], true)
        );
        assert_eq!(
            redacted(&["auth", "alice", "pw"]),
            (vec!["[*****]".into(), "[**]".into()], true)
        );
    }

    #[test]
    fn hello_hides_the_user_and_password_after_auth() {
        assert_eq!(
            redacted(&["HELLO", "3", "SETNAME", "auth", "auth", "bob", "pw", "SETNAME", "x"]).0,
            ["3", "SETNAME", "auth", "auth", "[***]", "[**]", "SETNAME", "x"]
        );
        assert_eq!(redacted(&["HELLO", "3"]), (vec!["3".into()], false));
        // AUTH at the very end, missing its values.
        assert!(!redacted(&["HELLO", "3", "AUTH"]).1);
    }

    #[test]
    fn migrate_hides_auth_and_auth2_but_not_keys() {
        assert_eq!(
            redacted(&["MIGRATE", "h", "6379", "", "0", "5000", "COPY", "AUTH", "pw"]).0,
            ["h", "6379", "", "0", "5000", "COPY", "AUTH", "[**]"]
        );
        assert_eq!(
            redacted(&[
                "MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "u", "pw", "KEYS", "AUTH", "k"
            ])
            .0,
            ["h", "6379", "", "0", "5000", "AUTH2", "[*]", "[**]", "KEYS", "AUTH", "k"]
        );
    }

    #[test]
    fn config_and_sentinel_settings_hide_credentials_only() {
        assert_eq!(
            redacted(&[
                "CONFIG",
                "SET",
                "requirepass",
                "pw",
                "maxmemory",
                "1gb",
                "masteruser",
                "u"
            ])
            .0,
            [
                "SET",
                "requirepass",
                "[**]",
                "maxmemory",
                "1gb",
                "masteruser",
                "[*]"
            ]
        );
        assert_eq!(
            redacted(&["config", "set", "MASTERAUTH", "pw"]).0,
            ["set", "MASTERAUTH", "[**]"]
        );
        assert_eq!(
            redacted(&[
                "SENTINEL",
                "SET",
                "mymaster",
                "auth-pass",
                "pw",
                "quorum",
                "2"
            ])
            .0,
            ["SET", "mymaster", "auth-pass", "[**]", "quorum", "2"]
        );
        assert_eq!(
            redacted(&["SENTINEL", "CONFIG", "SET", "sentinel-pass", "pw"]).0,
            ["CONFIG", "SET", "sentinel-pass", "[**]"]
        );
        assert!(!redacted(&["CONFIG", "SET", "requirepass"]).1);
    }

    #[test]
    fn acl_setuser_hides_password_rules_but_keeps_their_kind() {
        assert_eq!(
            redacted(&[
                "ACL", "SETUSER", "alice", "on", ">pw1", "<old", "#abc", "!def", "~*", "+@all"
            ])
            .0,
            ["SETUSER", "alice", "on", "[>***]", "[<***]", "[#***]", "[!***]", "~*", "+@all"]
        );
    }

    #[test]
    fn other_commands_and_pushes_are_left_alone() {
        assert_eq!(
            redacted(&["SET", "password", "x"]),
            (vec!["password".into(), "x".into()], false)
        );
        let mut push = exchange(&["AUTH", "x"], None);
        push.kind = ExchangeKind::Push;
        assert!(!push.redact(&Redaction::default()));
        let mut off = exchange(&["AUTH", "x"], None);
        assert!(!off.redact(&Redaction::off()));
        assert_eq!(off.args[0].data.as_slice(), b"x");
    }

    #[test]
    fn config_get_replies_hide_credential_values_in_resp2_and_resp3() {
        let resp2 = Frame::Array(vec![
            bulk("requirepass"),
            bulk("pw"),
            bulk("port"),
            bulk("6379"),
        ]);
        let mut x = exchange(&["CONFIG", "GET", "*"], Some(resp2));
        assert!(x.redact(&Redaction::default()));
        let expected = Frame::Array(vec![
            bulk("requirepass"),
            Frame::Bulk({
                let mut masked = Blob::full(b"**");
                masked.set_redacted(true);
                masked
            }),
            bulk("port"),
            bulk("6379"),
        ]);
        assert_eq!(x.reply, Some(expected));

        let resp3 = Frame::Map(vec![
            (bulk("masterauth"), bulk("pw")),
            (bulk("port"), bulk("1")),
        ]);
        let mut x = exchange(&["CONFIG", "GET", "*"], Some(resp3));
        assert!(x.redact(&Redaction::default()));
        let Some(Frame::Map(pairs)) = &x.reply else {
            panic!("a map")
        };
        assert_eq!(
            (pairs[0].1.clone(), pairs[1].1.clone()),
            (Frame::Bulk(masked_blob(2)), bulk("1"))
        );
    }

    fn masked_blob(len: usize) -> Blob {
        let mut b = Blob::full(vec![b'x'; len]);
        b.redact();
        b
    }

    #[test]
    fn acl_replies_hide_password_hashes() {
        let getuser = Frame::Array(vec![
            bulk("flags"),
            Frame::Array(vec![bulk("on")]),
            bulk("passwords"),
            Frame::Array(vec![bulk("abcd"), bulk("ef")]),
        ]);
        let mut x = exchange(&["ACL", "GETUSER", "alice"], Some(getuser));
        assert!(x.redact(&Redaction::default()));
        let Some(Frame::Array(items)) = &x.reply else {
            panic!("an array")
        };
        assert_eq!(items[1], Frame::Array(vec![bulk("on")]));
        assert_eq!(
            items[3],
            Frame::Array(vec![
                Frame::Bulk(masked_blob(4)),
                Frame::Bulk(masked_blob(2))
            ])
        );

        let list = Frame::Array(vec![
            bulk("user alice on #0a1b ~* +@all"),
            bulk("user default on nopass"),
        ]);
        let mut x = exchange(&["ACL", "LIST"], Some(list));
        assert!(x.redact(&Redaction::default()));
        let Some(Frame::Array(lines)) = &x.reply else {
            panic!("an array")
        };
        let Frame::Bulk(first) = &lines[0] else {
            panic!("a bulk")
        };
        assert_eq!(
            (first.data.as_slice(), first.redacted()),
            (&b"user alice on #**** ~* +@all"[..], true)
        );
        assert_eq!(lines[1], bulk("user default on nopass"));
    }
}
