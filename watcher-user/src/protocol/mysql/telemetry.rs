//! A MySQL exchange in OpenTelemetry's terms: the database conventions with `db.system.name` `mysql`.
//! The query text is the normalised statement (literals as `?`), which is what the conventions mean by
//! sanitised; `db.namespace` is the schema the connection logged in to, when its handshake was seen.

use super::MysqlExchange;
use crate::protocol::plugin::{
    Convention, MetricLabels, Payload, PayloadTelemetry, SpanAttributes,
};

impl PayloadTelemetry for MysqlExchange {
    fn convention(&self) -> Convention {
        Convention::Database { system: "mysql" }
    }

    fn span_name(&self, out: &mut String) {
        out.push_str(self.operation());
    }

    fn span_attributes(&self, out: &mut dyn SpanAttributes) {
        out.text("db.operation.name", self.operation());
        if self.sql.is_some() {
            let mut text = String::new();
            self.write_route(&mut text);
            out.text("db.query.text", &text);
        }
        if let Some(schema) = self.connection.as_ref().and_then(|c| c.database.as_deref()) {
            out.text("db.namespace", schema);
        }
        if let Some(error) = self.error() {
            out.text("db.response.status_code", &error.code.to_string());
        }
    }

    fn span_error(&self, _server_side: bool) -> bool {
        self.is_error()
    }

    fn write_metric_labels(&self, out: &mut MetricLabels) {
        out.reset(self.operation());
        out.status_class = match (&self.response, self.error()) {
            (None, _) => "none",
            (Some(_), Some(error)) => {
                out.status.push_str(itoa::Buffer::new().format(error.code));
                "error"
            }
            (Some(_), None) => "ok",
        };
    }
}
