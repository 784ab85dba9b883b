//! `--fail-on`: conditions that turn what a capture saw into a failing exit status, and the short report
//! of the records that met them.
//!
//! A [`Checker`] sees every record once (it runs beside the exporter, following the store), so a long
//! run whose oldest records were evicted from memory is still judged on all of them. Pure: no I/O.

use std::fmt::{self, Write as _};

use crate::{counters::Totals, protocol::ProtocolId, record::Record};

/// Offending records listed per condition; the rest are only counted.
pub const EXAMPLES_PER_CONDITION: usize = 5;

/// One `--fail-on` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A condition a protocol judges on its own exchanges, by name (`redis-error`, `http-5xx`, ...).
    Protocol {
        /// The protocol.
        protocol: ProtocolId,
        /// The condition's name, one of the protocol's `FAIL_ON`.
        name: &'static str,
    },
    /// An exchange slower than this many ns.
    SlowerThan(u64),
    /// Any event or record lost anywhere in the pipeline.
    Lost,
}

/// Why a condition did not parse.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a condition ({reason}); use {}", Condition::names())]
pub struct ConditionError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Condition {
    /// Parses a protocol's condition (`redis-error`, `http-5xx`, `http-4xx`), `latency>DURATION` or
    /// `lost`.
    pub fn parse(text: &str) -> Result<Self, ConditionError> {
        let error = |reason: String| ConditionError {
            text: text.to_owned(),
            reason,
        };
        let text = text.trim().to_ascii_lowercase();
        if text == "lost" {
            return Ok(Self::Lost);
        }
        let by_protocol = ProtocolId::ALL.iter().find_map(|&protocol| {
            let name = protocol.fail_on().iter().find(|name| **name == text)?;
            Some(Self::Protocol { protocol, name })
        });
        if let Some(condition) = by_protocol {
            return Ok(condition);
        }
        let Some(limit) = text.strip_prefix("latency>") else {
            return Err(error("unknown".into()));
        };
        let limit = humantime::parse_duration(limit.trim())
            .map_err(|e| error(format!("bad duration: {e}")))?;
        Ok(Self::SlowerThan(limit.as_nanos() as u64))
    }

    /// Every condition's name, for messages: `redis-error, http-5xx, ..., latency>50ms or lost`.
    pub fn names() -> String {
        let mut names: Vec<&str> = ProtocolId::ALL
            .iter()
            .flat_map(|p| p.fail_on().iter().copied())
            .collect();
        names.push("latency>50ms");
        format!("{} or lost", names.join(", "))
    }

    /// Whether `record` meets the condition (`Lost` is judged on counters, never on a record).
    pub fn met_by(self, record: &Record) -> bool {
        match self {
            Self::Protocol { protocol, name } => {
                record.exchange.protocol() == protocol && record.exchange.payload().meets(name)
            }
            Self::SlowerThan(limit) => record.latency_ns().is_some_and(|l| l > limit),
            Self::Lost => false,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol { name, .. } => f.write_str(name),
            Self::SlowerThan(ns) => write!(
                f,
                "latency>{}",
                humantime::format_duration(std::time::Duration::from_nanos(*ns))
            ),
            Self::Lost => f.write_str("lost"),
        }
    }
}

/// What one condition found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The condition.
    pub condition: Condition,
    /// Records (or, for `lost`, events and records) that met it.
    pub count: u64,
    /// One line for each of the first [`EXAMPLES_PER_CONDITION`] offending records.
    pub examples: Vec<String>,
}

/// Judges records against the `--fail-on` conditions as they stream past.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    findings: Vec<Finding>,
}

impl Checker {
    /// A checker for `conditions` (duplicates are judged once).
    pub fn new(conditions: &[Condition]) -> Self {
        let mut findings: Vec<Finding> = Vec::new();
        for &condition in conditions {
            if findings.iter().all(|f| f.condition != condition) {
                findings.push(Finding {
                    condition,
                    count: 0,
                    examples: Vec::new(),
                });
            }
        }
        Self { findings }
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    /// Judges one record.
    pub fn check(&mut self, record: &Record) {
        for finding in &mut self.findings {
            if finding.condition.met_by(record) {
                finding.count += 1;
                if finding.examples.len() < EXAMPLES_PER_CONDITION {
                    finding.examples.push(describe(record));
                }
            }
        }
    }

    /// The conditions met, judging `lost` on the final counters.
    pub fn finish(mut self, totals: &Totals) -> Findings {
        for finding in &mut self.findings {
            if finding.condition == Condition::Lost {
                finding.count = totals.lost();
                if finding.count > 0 {
                    finding.examples.push(totals.loss_breakdown());
                }
            }
        }
        self.findings.retain(|f| f.count > 0);
        Findings(self.findings)
    }
}

/// The conditions that were met; empty when the run passes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// Whether no condition was met.
    pub fn passed(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.0 {
            let unit = match (finding.condition, finding.count) {
                (Condition::Lost, _) => "lost",
                (_, 1) => "record",
                _ => "records",
            };
            writeln!(
                f,
                "watcher: --fail-on {}: {} {unit}",
                finding.condition, finding.count
            )?;
            for example in &finding.examples {
                writeln!(f, "  {example}")?;
            }
            let listed = finding.examples.len() as u64;
            if finding.condition != Condition::Lost && finding.count > listed {
                writeln!(f, "  ... and {} more", finding.count - listed)?;
            }
        }
        Ok(())
    }
}

/// One line naming a record: id, process, what was asked, what came back, how long it took.
pub fn describe(record: &Record) -> String {
    let mut line = format!(
        "#{} {} {}/{} {} ",
        record.id,
        record.protocol(),
        record.endpoint.pid,
        record.endpoint.comm,
        record.endpoint.side.as_str(),
    );
    record.exchange.payload().describe(&mut line);
    let _ = write!(line, " ({})", crate::format::latency(record.latency_ns()));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::redis::{Blob, Frame},
        test_records::{error, http, redis_with_args, with_latency},
    };

    /// `INCR k` with `reply`, record id 7.
    fn incr(reply: Frame) -> Record {
        let mut record = redis_with_args("INCR", vec![Blob::full("k")], Some(reply));
        record.id = 7;
        record
    }

    #[test]
    fn conditions_parse_and_print_back() {
        for text in [
            "redis-error",
            "http-5xx",
            "http-4xx",
            "lost",
            "latency>50ms",
        ] {
            assert_eq!(Condition::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Condition::parse("LATENCY>1s").unwrap(),
            Condition::SlowerThan(1_000_000_000)
        );
        for bad in ["error", "latency>", "latency>soon", "http-3xx"] {
            let e = Condition::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("redis-error"), "{e}");
        }
    }

    #[test]
    fn each_condition_meets_only_its_records() {
        let wrongtype = incr(error("WRONGTYPE no"));
        let ok = incr(Frame::Integer(1));
        let slow = with_latency(incr(Frame::Integer(1)), Some(60_000_000));
        let e500 = http("GET", "/x", Some(503));
        let e404 = http("GET", "/x", Some(404));
        let e200 = with_latency(http("GET", "/x", Some(200)), None);
        let met = |c: &str| {
            let c = Condition::parse(c).unwrap();
            [&wrongtype, &ok, &slow, &e500, &e404, &e200]
                .iter()
                .map(|r| c.met_by(r))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            met("redis-error"),
            [true, false, false, false, false, false]
        );
        assert_eq!(met("http-5xx"), [false, false, false, true, false, false]);
        assert_eq!(met("http-4xx"), [false, false, false, false, true, false]);
        assert_eq!(
            met("latency>50ms"),
            [false, false, true, false, false, false]
        );
        assert_eq!(met("lost"), [false; 6]);
    }

    #[test]
    fn findings_count_all_list_a_few_and_judge_loss_on_counters() {
        let condition = |text| Condition::parse(text).unwrap();
        let mut checker = Checker::new(&[
            condition("redis-error"),
            condition("redis-error"),
            condition("http-5xx"),
            Condition::Lost,
        ]);
        let wrongtype = incr(error("WRONGTYPE no"));
        for _ in 0..8 {
            checker.check(&wrongtype);
        }
        checker.check(&http("GET", "/x", Some(200)));
        let findings = checker.clone().finish(&Totals::default());
        assert_eq!(findings.0.len(), 1, "only redis-error met: {findings:?}");
        assert_eq!(findings.0[0].count, 8);
        assert_eq!(findings.0[0].examples.len(), EXAMPLES_PER_CONDITION);
        let report = findings.to_string();
        assert!(
            report.contains("--fail-on redis-error: 8 records"),
            "{report}"
        );
        assert!(
            report.contains("#7 redis 42/redis-cli client INCR k -> (error) WRONGTYPE no"),
            "{report}"
        );
        assert!(report.contains("... and 3 more"), "{report}");

        let mut lossy = Totals::default();
        lossy.kernel.ring_full_events = 2;
        let findings = checker.finish(&lossy);
        assert_eq!(findings.0.len(), 2);
        assert!(findings.to_string().contains("--fail-on lost: 2 lost"));
        assert!(Checker::new(&[]).finish(&lossy).passed());
    }
}
