//! Telemetry for the systems people already run: OpenTelemetry duration metrics aggregated from records
//! (`metrics`), served to Prometheus (`prometheus`, `--metrics-listen`) and pushed with spans to an OTLP
//! collector (`otlp`, `--otlp-endpoint`).
//!
//! Telemetry is another reader of the store. [`Telemetry`] is the part the store's follower feeds, record
//! by record, on the follower thread; [`Service`] owns the threads that talk to the outside (the
//! scrape server, the OTLP exporter), which only read published snapshots and bounded queues. Neither
//! ever makes capture wait.

pub mod metrics;
pub mod otlp;
pub mod prometheus;

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context, Result};

use self::{
    metrics::Aggregator,
    otlp::{
        export::{Exporter, SpanQueue},
        OtlpConfig,
    },
};
use crate::{counters::Counters, record::Record};

/// What to export, from the command line and the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// Where to serve Prometheus metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// Where to send OTLP.
    pub otlp: Option<OtlpConfig>,
}

impl TelemetryConfig {
    /// Whether anything is exported.
    pub fn is_on(&self) -> bool {
        self.metrics_listen.is_some() || self.otlp.is_some()
    }
}

/// The follower's part: aggregates metrics and queues spans.
pub struct Telemetry {
    metrics: Aggregator,
    spans: Option<SpanQueue>,
}

impl Telemetry {
    /// Takes one record (spans keep it until the exporter has turned it into a span).
    pub fn record(&mut self, record: &Arc<Record>) {
        self.metrics.add(record);
        if let Some(spans) = &mut self.spans {
            spans.push(record);
        }
    }

    /// How soon [`Telemetry::burst_done`] must run again to publish metrics held back (see
    /// `metrics::Aggregator::publish`).
    pub fn due_within(&self) -> Option<std::time::Duration> {
        self.metrics.publish_due_within()
    }

    /// After a burst of records: publish the metrics, hand over the spans.
    pub fn burst_done(&mut self) {
        self.metrics.publish(false);
        if let Some(spans) = &mut self.spans {
            spans.flush();
        }
    }
}

/// The threads that serve and send telemetry.
pub struct Service {
    server: Option<prometheus::Server>,
    exporter: Option<Exporter>,
}

impl Service {
    /// Starts the scrape server and the exporter that `cfg` asks for; `None` when it asks for none.
    /// Returns what the user should be told, too.
    pub fn start(
        cfg: &TelemetryConfig,
        counters: &Arc<Counters>,
    ) -> Result<Option<(Self, Telemetry, Vec<String>)>> {
        if !cfg.is_on() {
            return Ok(None);
        }
        let (aggregator, published) = Aggregator::new();
        let mut notes = Vec::new();
        let server = cfg
            .metrics_listen
            .map(|addr| {
                prometheus::Server::start(addr, Arc::clone(&published), Arc::clone(counters))
            })
            .transpose()?;
        if let Some(server) = &server {
            notes.push(format!(
                "serving Prometheus metrics at http://{}/metrics",
                server.addr
            ));
        }
        let (exporter, spans) = match &cfg.otlp {
            None => (None, None),
            Some(otlp) => {
                let (exporter, spans) =
                    Exporter::start(otlp.clone(), published, Arc::clone(counters))
                        .context("starting the OTLP exporter")?;
                notes.push(format!(
                    "exporting OTLP spans to {} and metrics to {} every {} s",
                    otlp.traces_url,
                    otlp.metrics_url,
                    otlp.metric_interval.as_secs_f64()
                ));
                (Some(exporter), Some(spans))
            }
        };
        Ok(Some((
            Self { server, exporter },
            Telemetry {
                metrics: aggregator,
                spans,
            },
            notes,
        )))
    }

    /// Sends what is left (the last spans, the final metrics) and stops serving.
    pub fn finish(self, mut telemetry: Telemetry) {
        telemetry.metrics.publish(true);
        if let (Some(exporter), Some(spans)) = (self.exporter, telemetry.spans) {
            exporter.finish(spans);
        }
        if let Some(server) = self.server {
            server.stop();
        }
    }
}
