//! A Redis exchange in OpenTelemetry's terms: the database conventions with `db.system.name` `redis`.
//! The query text keeps the command and its keys and puts `?` for every other argument, as the
//! conventions ask of text that may hold values.

use super::{view, ExchangeKind, Frame, RedisExchange};
use crate::protocol::plugin::{
    Convention, MetricLabels, Payload, PayloadTelemetry, SpanAttributes,
};

/// Arguments written into the query text at most; the rest are summed up as `…`.
const MAX_QUERY_ARGS: usize = 32;
/// Bytes of one key written at most.
const MAX_KEY_BYTES: usize = 128;

impl PayloadTelemetry for RedisExchange {
    fn convention(&self) -> Convention {
        Convention::Database { system: "redis" }
    }

    fn span_name(&self, out: &mut String) {
        out.push_str(self.operation());
    }

    fn span_attributes(&self, out: &mut dyn SpanAttributes) {
        out.text("db.operation.name", self.operation());
        if self.kind != ExchangeKind::Push {
            out.text("db.query.text", &sanitised_query(self));
        }
        if matches!(self.reply, Some(Frame::Error(_))) {
            out.text("db.response.status_code", view::status(self));
        }
    }

    fn span_error(&self, _server_side: bool) -> bool {
        matches!(self.reply, Some(Frame::Error(_)))
    }

    fn write_metric_labels(&self, out: &mut MetricLabels) {
        out.reset(self.operation());
        out.status_class = match &self.reply {
            None => "none",
            Some(Frame::Error(_)) => {
                out.status.push_str(view::status(self));
                "error"
            }
            Some(_) => "ok",
        };
    }
}

/// The command with its keys, and `?` for every other argument: `SET user:1 ?`.
fn sanitised_query(x: &RedisExchange) -> String {
    let keys = x.keys();
    // Room for the usual command, key and `?`s at once, rather than growing there step by step.
    let mut text = String::with_capacity(64);
    text.push_str(&x.command);
    for (i, arg) in x.args.iter().enumerate() {
        if i == MAX_QUERY_ARGS {
            text.push_str(" …");
            break;
        }
        text.push(' ');
        if keys.iter().any(|k| std::ptr::eq(*k, arg)) {
            let kept = &arg.data[..arg.data.len().min(MAX_KEY_BYTES)];
            text.push_str(&String::from_utf8_lossy(kept));
        } else {
            text.push('?');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{plugin::Attribute, redis::Blob};

    fn command(name: &str, args: &[&str], reply: Option<Frame>) -> RedisExchange {
        RedisExchange {
            kind: ExchangeKind::Command,
            command: name.into(),
            args: args.iter().map(|a| Blob::full(*a)).collect(),
            reply,
        }
    }

    #[test]
    fn query_text_keeps_keys_and_hides_values() {
        let set = command("SET", &["user:1", "secret value", "EX", "10"], None);
        assert_eq!(sanitised_query(&set), "SET user:1 ? ? ?");
        let mset = command("MSET", &["a", "1", "b", "2"], None);
        assert_eq!(sanitised_query(&mset), "MSET a ? b ?");
        let auth = command("AUTH", &["hunter2"], None);
        assert_eq!(sanitised_query(&auth), "AUTH ?");
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let del = command("DEL", &many, None);
        assert!(sanitised_query(&del).ends_with(" 31 …"));
    }

    #[test]
    fn errors_carry_their_code_and_labels_stay_small() {
        let wrong = command(
            "INCR",
            &["list"],
            Some(Frame::Error(Blob::full(
                "WRONGTYPE Operation against a key",
            ))),
        );
        let mut attributes = Vec::new();
        wrong.span_attributes(&mut attributes);
        assert!(attributes.contains(&Attribute::text("db.response.status_code", "WRONGTYPE")));
        assert!(wrong.span_error(true));
        let labels = wrong.metric_labels();
        assert_eq!(
            (
                labels.operation.as_str(),
                labels.status.as_str(),
                labels.status_class
            ),
            ("INCR", "WRONGTYPE", "error")
        );
        let ok = command("GET", &["k"], Some(Frame::Null));
        assert!(!ok.span_error(false));
        assert_eq!(ok.metric_labels().status_class, "ok");
        assert_eq!(
            command("GET", &["k"], None).metric_labels().status_class,
            "none"
        );
    }
}
