//! Wiring: starts the capture thread, the shards and the store writer, and stops them in order.
//!
//! ```text
//! capture thread (tokio): ring reader -> router --bounded--> shard threads --bounded--> store writer
//!                                         router: shards yield the CPU while they keep up (conn::yielding),
//!                                         and the store writer and the follower with them
//!                                         (batch policy while watcher is light, idle when heavy)
//! store writer (owns the store) -> Snapshot (ArcSwap) -> TUI / exporter / summary
//! TLS finder thread --bounded--> capture thread (attaches the TLS probes to new files)
//! ```
//! Stop order: detach programs and drain the ring, then each stage ends when its input disconnects, so
//! nothing in flight is lost on an orderly stop.

use std::{
    collections::HashSet,
    os::unix::thread::JoinHandleExt,
    sync::Arc,
    thread::{self, JoinHandle},
};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use tokio::sync::watch;

use crate::{
    capture::{
        listeners, loader, offsets, preflight, reader,
        tls::{
            self,
            new_code::{Bell, NewCodeNotes},
            Finder, Scan,
        },
        tracefs,
    },
    cli::config::PipelineConfig,
    clock::WallClock,
    conn::{
        router::Router,
        shard::{Queues, Shard, ShardContext},
        yielding::{Reader, Yielding},
        EventBatch,
    },
    counters::Counters,
    handoff,
    protocol::detect::Decoding,
    record::Record,
    store::{self, follow, StoreReader, StoreWriter},
};

/// Queue depth (in batches) between the router and each shard: about 128 MiB of payload (batches are
/// sent at [`crate::conn::BATCH_BYTES`]), what a shard may fall behind by in a burst before events are
/// lost. Enough for a -P 16 burst of 4 KiB values at full speed; part of the memory watcher may take
/// beyond `--max-memory` (`cargo xtask bench --only memory`).
const SHARD_QUEUE: usize = 512;
/// Emptied event batches waiting to be reused by the router. Fewer than can be queued: each keeps its
/// payload capacity, so a pool as deep as the queues would hold a burst's worth of memory for good.
const SPARE_EVENT_BATCHES: usize = 64;
/// Queue depth (in record batches) between the shards and the store writer.
const STORE_QUEUE: usize = 1024;
/// Emptied record batches waiting to be reused by the shards.
const SPARE_RECORD_BATCHES: usize = 64;
/// Records a reused batch may have room for (64 KiB of pointers).
const MAX_SPARE_RECORDS: usize = 8192;
/// Queue depth (in files) between the TLS finder and the capture thread.
const TLS_QUEUE: usize = 64;
/// Readers that may join the shards' scheduling (a mode starts one follower).
const JOINING_READERS: usize = 2;

/// A running pipeline.
pub struct Pipeline {
    /// The records.
    pub store: StoreReader,
    /// Shared counters.
    pub counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    capture: JoinHandle<std::io::Result<()>>,
    shards: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
    tls_finder: Option<JoinHandle<()>>,
    /// Where readers join the shards' scheduling; `None` when the shards do not yield.
    join_yielding: Option<Sender<Reader>>,
    /// How far the follower subscribed at start has got, if one was.
    follower: Option<Arc<follow::Position>>,
}

/// Notes for the user from start-up (e.g. that tracefs was mounted).
pub type StartNotes = Vec<String>;

/// A thread told after each snapshot publication; its queue closes when the pipeline has stopped.
pub enum Subscriber {
    /// The UI, which waits in a `select!` with the terminal's events (a crossbeam queue).
    Ui(Sender<()>),
    /// The follower, which waits on nothing else: a [`handoff`] queue lets it sleep at once, where a
    /// crossbeam receiver spins and yields first (each yield a context switch on a busy host). The
    /// store keeps what it has not passed at `position` beyond `--max-records`, within `--max-memory`.
    Follower {
        wake: handoff::Sender<()>,
        position: Arc<follow::Position>,
    },
}

impl Subscriber {
    /// Wakes it, unless a wake-up is already waiting (a full queue is one).
    fn notify(&self) {
        match self {
            Subscriber::Ui(tx) => drop(tx.try_send(())),
            Subscriber::Follower { wake, .. } => drop(wake.try_send(())),
        }
    }
}

impl Pipeline {
    /// Checks the host, loads the programs and starts every thread. `subscribers` receive a wake-up
    /// after each snapshot publication (and see their channel close when the pipeline has stopped).
    pub fn start(cfg: &PipelineConfig, subscribers: Vec<Subscriber>) -> Result<(Self, StartNotes)> {
        let report = preflight::run()?;
        let mut notes = setup_notes(&report, cfg);
        let kernel = kernel_config(cfg)?;
        // Measure the clock and read listeners before attaching, so the first events are interpreted right.
        let clock = WallClock::measure();
        let listeners: Arc<HashSet<u16>> = Arc::new(listeners::listening_ports());
        let mut finder = Finder::default();
        let tls_scan = if kernel.tls == 0 {
            Scan::default()
        } else {
            finder.scan_host()
        };
        let (mut programs, tls_outcomes) = loader::load(
            &kernel,
            &cfg.pids,
            cfg.ring_bytes,
            &tls_scan.targets,
            cfg.hooks,
        )
        .context("loading the eBPF programs")?;
        if let Some(why) = &programs.fallback {
            notes.push(format!(
                "using the syscall tracepoints (two programs per call, slower): {why}"
            ));
        }
        let counters = Arc::new(Counters::default());
        if kernel.tls != 0 {
            notes.extend(tls_notes(&tls_scan, &tls_outcomes));
            let failed = tls_outcomes.iter().filter(|o| o.is_err()).count();
            Counters::add(
                &counters.user.tls_files,
                (tls_outcomes.len() - failed) as u64,
            );
            Counters::add(&counters.user.tls_attach_failures, failed as u64);
        }

        let (store_writer, store) = store::with_budget(cfg.max_records, cfg.max_memory);
        let follower = follower_position(&subscribers);
        let (record_tx, record_rx) = handoff::bounded::<Vec<Arc<Record>>>(STORE_QUEUE);
        let ctx = ShardContext {
            decoding: Decoding {
                protocols: cfg.protocols,
                keep_bytes: cfg.keep_bytes,
            },
            filter: cfg.filter.clone(),
            redaction: Arc::new(cfg.redaction.clone()),
            clock,
            listeners,
            counters: Arc::clone(&counters),
        };
        let (spare_tx, spare_rx) = bounded(SPARE_EVENT_BATCHES);
        let (spare_records_tx, spare_records_rx) = bounded(SPARE_RECORD_BATCHES);
        let (shard_txs, shards) = spawn_shards(
            cfg.shards.max(1),
            &ctx,
            &record_tx,
            &spare_tx,
            &spare_records_rx,
        )?;
        drop(record_tx);
        let writer = spawn_writer(store_writer, record_rx, spare_records_tx, subscribers)?;
        let (join_yielding, joining) = bounded(JOINING_READERS);
        let scheduling = shard_scheduling(cfg, &shards, &writer, joining, &mut notes);
        let join_yielding = scheduling.is_some().then_some(join_yielding);
        let router = Router::new(shard_txs, spare_rx, Arc::clone(&counters), scheduling);
        let (stop, stop_rx) = watch::channel(false);
        let (bell, new_code) = NewCodeNotes::with_bell(programs.new_code.take());
        let (tls_finder, tls_targets) = if kernel.tls == 0 {
            (None, None)
        } else {
            let (tx, rx) = tokio::sync::mpsc::channel(TLS_QUEUE);
            let handle = thread::Builder::new()
                .name("watcher-tls-finder".into())
                .spawn(move || tls::follow(finder, &tx, new_code))
                .context("starting the TLS finder thread")?;
            (Some(handle), Some(rx))
        };
        let capture = spawn_capture(
            programs,
            router,
            Arc::clone(&counters),
            stop_rx,
            (tls_targets, bell),
        )?;
        Ok((
            Self {
                store,
                counters,
                stop,
                capture,
                shards,
                writer,
                tls_finder,
                join_yielding,
                follower,
            },
            notes,
        ))
    }

    /// Schedules the follower (`thread`, the one subscribed at start, whose position the pipeline
    /// knows) with the shards (`conn::yielding`): it yields the CPU while they do, unless it has fallen
    /// behind by a quarter of the records the store holds. `thread` must not be joined before
    /// [`Pipeline::stop`].
    pub fn schedule_follower<T>(&self, thread: &JoinHandle<T>) {
        let (Some(join), Some(position)) = (&self.join_yielding, &self.follower) else {
            return;
        };
        let position = Arc::clone(position);
        let store = self.store.clone();
        let behind = move || {
            let snapshot = store.snapshot();
            snapshot.total.saturating_sub(position.get()) > snapshot.len() as u64 / 4
        };
        // Full only if a mode joined more readers than it has: that one stays on the normal policy.
        let _ = join.try_send(Reader {
            thread: thread.as_pthread_t(),
            behind: Box::new(behind),
        });
    }

    /// Stops capture and waits for every stage to drain. Returns the capture thread's error, if any.
    pub fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let captured = self.capture.join();
        for shard in self.shards {
            let _ = shard.join();
        }
        let _ = self.writer.join();
        // The finder notices within one round that the capture thread is gone.
        if let Some(finder) = self.tls_finder {
            let _ = finder.join();
        }
        match captured {
            Ok(result) => result.context("reading the ring buffer"),
            Err(_) => anyhow::bail!("the capture thread panicked"),
        }
    }
}

/// The kernel configuration of `cfg` completed with what only this host knows: struct offsets from its
/// BTF, the fork event's layout from tracefs, and watcher's own pid.
fn kernel_config(cfg: &PipelineConfig) -> Result<watcher_common::KernelConfig> {
    let mut kernel = cfg.kernel;
    kernel.offsets = offsets::resolve(std::path::Path::new(offsets::VMLINUX_BTF))?;
    if kernel.follow_children != 0 {
        kernel.fork_child_pid = tracefs::field_offset(
            std::path::Path::new(preflight::TRACEFS),
            "sched",
            "sched_process_fork",
            "child_pid",
        )?;
    }
    kernel.self_tgid = std::process::id();
    Ok(kernel)
}

/// What the user is told at start about the host and the filters.
fn setup_notes(report: &preflight::PreflightReport, cfg: &PipelineConfig) -> Vec<String> {
    let mut notes = Vec::new();
    if report.mounted_tracefs {
        notes.push(format!("mounted tracefs at {}", preflight::TRACEFS));
    }
    if !cfg.cgroups.is_empty() {
        notes.push(format!(
            "tracing only processes in (or below) the cgroups {}",
            cfg.cgroups.join(", ")
        ));
    }
    notes
}

/// What the user is told at start about TLS: which files were instrumented, which could not be, and
/// which processes use TLS the probes cannot see.
/// `outcomes` are the attachments of `scan.targets`, in order.
fn tls_notes(scan: &Scan, outcomes: &[Result<(), loader::LoadError>]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut instrumented = Vec::new();
    let mut failed = scan.failed.clone();
    for (target, outcome) in scan.targets.iter().zip(outcomes) {
        match outcome {
            Ok(()) => instrumented.push(target.shown.as_str()),
            Err(e) => failed.push(e.to_string()),
        }
    }
    notes.push(if instrumented.is_empty() {
        "TLS: no OpenSSL found yet; processes bringing their own are instrumented as they appear"
            .to_owned()
    } else {
        format!("TLS: instrumented {}", instrumented.join(", "))
    });
    if !failed.is_empty() {
        notes.push(format!("TLS: could not instrument {}", failed.join("; ")));
    }
    if !scan.uncovered.is_empty() {
        notes.push(format!(
            "TLS: not decrypted (library not supported): {}",
            scan.uncovered.join(", ")
        ));
    }
    notes
}

/// The capture thread: reads the ring on a tokio runtime of its own and feeds `router`; attaches the
/// probes to the TLS finder's files and rings its bell (`tls`).
fn spawn_capture(
    programs: loader::LoadedPrograms,
    router: Router,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    tls: (Option<tokio::sync::mpsc::Receiver<tls::TlsTarget>>, Bell),
) -> Result<JoinHandle<std::io::Result<()>>> {
    let (tls_targets, bell) = tls;
    thread::Builder::new()
        .name("watcher-capture".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(reader::run(
                programs,
                router,
                counters,
                stop,
                tls_targets,
                bell,
            ))
        })
        .context("starting the capture thread")
}

/// How the shard threads and the store writer are scheduled: yielding the CPU while the shards keep
/// up (`conn::yielding`) unless `--no-yield`, or (with a note saying so) where this user may not
/// return a thread to the normal policy. Readers of the store join on `joining`.
fn shard_scheduling(
    cfg: &PipelineConfig,
    shards: &[JoinHandle<()>],
    writer: &JoinHandle<()>,
    joining: Receiver<Reader>,
    notes: &mut StartNotes,
) -> Option<Yielding> {
    if !cfg.yield_cpu {
        return None;
    }
    let threads = shards.iter().chain([writer]);
    let yielding = Yielding::start(threads.map(JoinHandleExt::as_pthread_t).collect(), joining);
    if yielding.is_none() {
        notes.push(
            "the decoding threads always compete for CPU: this user may not return a thread to the \
             normal scheduling policy (needs CAP_SYS_NICE)"
                .to_owned(),
        );
    }
    yielding
}

/// Queues into the shards, and the shard threads.
type Shards = (Vec<handoff::Sender<EventBatch>>, Vec<JoinHandle<()>>);

fn spawn_shards(
    count: usize,
    ctx: &ShardContext,
    record_tx: &handoff::Sender<Vec<Arc<Record>>>,
    spare_tx: &Sender<EventBatch>,
    spare_records: &Receiver<Vec<Arc<Record>>>,
) -> Result<Shards> {
    let mut txs = Vec::with_capacity(count);
    let mut handles = Vec::with_capacity(count);
    for i in 0..count {
        let (tx, rx) = handoff::bounded(SHARD_QUEUE);
        let shard = Shard::new(ctx.clone());
        let queues = Queues {
            input: rx,
            output: record_tx.clone(),
            spare_batches: spare_tx.clone(),
            spare_records: spare_records.clone(),
        };
        handles.push(
            thread::Builder::new()
                .name(format!("watcher-shard-{i}"))
                .spawn(move || shard.run(&queues))
                .context("starting a shard thread")?,
        );
        txs.push(tx);
    }
    Ok((txs, handles))
}

/// The position of the follower among `subscribers`, if there is one (a mode subscribes one at most).
fn follower_position(subscribers: &[Subscriber]) -> Option<Arc<follow::Position>> {
    subscribers.iter().find_map(|s| match s {
        Subscriber::Follower { position, .. } => Some(Arc::clone(position)),
        Subscriber::Ui(_) => None,
    })
}

/// The store writer: the only thread that inserts (it owns the [`StoreWriter`]). Publishes one snapshot
/// per drained burst of batches, tells `subscribers`, keeps what a follower among them has not passed,
/// and hands emptied batches back to the shards on `spare`.
fn spawn_writer(
    mut store: StoreWriter,
    input: handoff::Receiver<Vec<Arc<Record>>>,
    spare: Sender<Vec<Arc<Record>>>,
    subscribers: Vec<Subscriber>,
) -> Result<JoinHandle<()>> {
    if let Some(position) = follower_position(&subscribers) {
        store.keep_for(position);
    }
    thread::Builder::new()
        .name("watcher-store".into())
        .spawn(move || {
            while let Ok(batch) = input.recv() {
                for mut more in std::iter::once(batch).chain(input.try_iter().take(64)) {
                    store.insert_batch(&mut more);
                    // A batch that grew in a burst is freed rather than kept.
                    if more.capacity() <= MAX_SPARE_RECORDS {
                        let _ = spare.try_send(more);
                    }
                }
                store.publish();
                for s in &subscribers {
                    s.notify();
                }
            }
            store.publish();
        })
        .context("starting the store writer")
}
