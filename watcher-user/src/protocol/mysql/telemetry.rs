//! A MySQL exchange in OpenTelemetry's terms: the database conventions with `db.system.name` `mysql`.
//! The query text is the normalised statement (literals as `?`), which is what the conventions mean by
//! sanitised; `db.namespace` is the schema the connection logged in to, when its handshake was seen.

use super::MysqlExchange;
use crate::protocol::plugin::{Attribute, Convention, MetricLabels, Payload, PayloadTelemetry};

impl PayloadTelemetry for MysqlExchange {
    fn convention(&self) -> Convention {
        Convention::Database { system: "mysql" }
    }

    fn span_name(&self, out: &mut String) {
        out.push_str(self.operation());
    }

    fn span_attributes(&self, out: &mut Vec<Attribute>) {
        out.push(Attribute::text("db.operation.name", self.operation()));
        if self.sql.is_some() {
            let mut text = String::new();
            self.write_route(&mut text);
            out.push(Attribute::text("db.query.text", text));
        }
        if let Some(schema) = self.connection.as_ref().and_then(|c| c.database.as_deref()) {
            out.push(Attribute::text("db.namespace", schema));
        }
        if let Some(error) = self.error() {
            out.push(Attribute::text(
                "db.response.status_code",
                error.code.to_string(),
            ));
        }
    }

    fn span_error(&self, _server_side: bool) -> bool {
        self.is_error()
    }

    fn metric_labels(&self) -> MetricLabels {
        let (status, status_class) = match (&self.response, self.error()) {
            (None, _) => (String::new(), "none"),
            (Some(_), Some(error)) => (error.code.to_string(), "error"),
            (Some(_), None) => (String::new(), "ok"),
        };
        MetricLabels {
            operation: self.operation().to_owned(),
            route: String::new(),
            status,
            status_class,
        }
    }
}
