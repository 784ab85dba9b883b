//! The modes with the terminal UI: live `watch` (a capture, optionally exporting as it goes) and
//! `show FILE` (a capture file, no kernel, no root). Both run the same UI loop; this module gives it its
//! records and performs its effects (the `e` key's file).

use std::{io::BufWriter, path::Path, sync::Arc, thread, time::SystemTime};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, Sender};

use super::{
    consumers::Consumers,
    pipeline::{Pipeline, Subscriber},
    signals,
    stat::open_capture,
};
use crate::{
    cli::config::{ShowConfig, WatchConfig},
    counters::Totals,
    handoff,
    invoker::Invoker,
    ndjson::{
        file::{self, create_timestamped},
        sink::{write_all, NdjsonSink},
    },
    protocol::ProtocolSet,
    record::Record,
    store::{self, follow},
    telemetry::Service,
    tui::{
        self,
        app::{Action, App, Effect},
        Inputs, Live,
    },
};

/// Runs the live UI until the user quits or a signal arrives.
pub fn watch(cfg: &WatchConfig) -> Result<()> {
    let terminate = signals::listen().context("installing signal handlers")?;
    let export = cfg
        .output
        .as_ref()
        .map(|target| file::open(target, Invoker::file_owner()))
        .transpose()?;
    let (ui_wake_tx, ui_wake) = bounded(1);
    let (follow_wake_tx, follow_wake) = handoff::bounded(1);
    let mut consumers = Consumers::new(export.map(|e| NdjsonSink::new(e.writer)));
    let mut subscribers = vec![Subscriber::Ui(ui_wake_tx)];
    let follows = consumers.any() || cfg.telemetry.is_on();
    let position = Arc::new(follow::Position::default());
    if follows {
        subscribers.push(Subscriber::Follower {
            wake: follow_wake_tx,
            position: Arc::clone(&position),
        });
    }
    let (pipeline, _notes) = Pipeline::start(&cfg.pipeline, subscribers)?;
    let telemetry = match Service::start(&cfg.telemetry, &pipeline.counters) {
        Ok(started) => started.map(|(service, sink, _notes)| {
            consumers.telemetry = Some(sink);
            service
        }),
        Err(e) => {
            let _ = pipeline.stop();
            return Err(e);
        }
    };
    // One follower feeds the export and telemetry, off the UI thread.
    let follower = follows.then(|| {
        let store = pipeline.store.clone();
        let counters = Arc::clone(&pipeline.counters);
        let handle = thread::spawn(move || {
            let (consumers, _, result) =
                follow::run(&store, &counters, &follow_wake, None, &position, consumers);
            (consumers, result)
        });
        pipeline.schedule_follower(&handle);
        handle
    });
    let mut app = App::default();
    app.protocols = cfg.pipeline.protocols;
    app.secrets_shown = !cfg.pipeline.redaction.is_enabled();
    let live = Live {
        store: &pipeline.store,
        counters: &pipeline.counters,
        wake: &ui_wake,
    };
    let result = run(app, Some(&live), &terminate);
    let stopped = pipeline.stop();
    if let Some(handle) = follower {
        let Ok((mut consumers, written)) = handle.join() else {
            anyhow::bail!("the exporter panicked");
        };
        if let (Some(service), Some(sink)) = (telemetry, consumers.telemetry.take()) {
            service.finish(sink);
        }
        written.context("writing JSON records")?;
        if let Some(e) = consumers.export_error {
            return Err(e).context("writing JSON records");
        }
    }
    result.and(stopped)
}

/// Opens a capture file in the UI: no kernel, no root. Bad lines are listed on stderr (visible again
/// after quitting) and counted in the status bar.
pub fn show(cfg: &ShowConfig) -> Result<()> {
    let terminate = signals::listen().context("installing signal handlers")?;
    let imported = open_capture(&cfg.file, &cfg.redaction)?;
    let records: Vec<Record> = imported
        .records
        .into_iter()
        .filter(|r| cfg.filter.matches(r))
        .collect();
    let protocols: ProtocolSet = records.iter().map(|r| r.exchange.protocol()).collect();
    let store = store::of(records.into_iter());
    let mut app = App::default();
    app.secrets_shown = !cfg.redaction.is_enabled();
    if !protocols.is_empty() {
        app.protocols = protocols;
    }
    app.source = Some(cfg.file.display().to_string());
    if !imported.bad_lines.is_empty() {
        app.notice = Some(format!(
            "{} bad lines skipped (listed on stderr)",
            imported.bad_lines.len()
        ));
    }
    app.update(Action::Data(store.snapshot(), Totals::default()));
    app.update(Action::Home);
    run(app, None, &terminate)
}

/// The UI on the real terminal, restored whatever happens.
fn run(
    app: App,
    live: Option<&Live>,
    terminate: &crossbeam_channel::Receiver<signals::Terminate>,
) -> Result<()> {
    let (_guard, mut terminal) = tui::terminal::enter()?;
    let inputs = Inputs {
        terminal: &tui::terminal::input(),
        quit: terminate,
    };
    tui::run(&mut terminal, app, live, &inputs, &mut perform).context("drawing")
}

/// Does an effect's I/O on a worker thread, which reports back with an action.
fn perform(effect: Effect, done: Sender<Action>) {
    match effect {
        Effect::WriteRecords(records) => {
            let _ = thread::Builder::new()
                .name("watcher-export-view".into())
                .spawn(move || {
                    let _ = done.send(Action::Exported(write_view(&records)));
                });
        }
    }
}

fn write_view(records: &[Arc<Record>]) -> Result<(String, u64), String> {
    let (path, file) = create_timestamped(
        Path::new(""),
        "watcher-view",
        SystemTime::now(),
        Invoker::file_owner(),
    )
    .map_err(|e| format!("cannot create a file in the current directory: {e}"))?;
    let path = std::env::current_dir().map_or(path.clone(), |dir| dir.join(&path));
    let written = write_all(
        records.iter().map(AsRef::as_ref),
        Box::new(BufWriter::new(file)),
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((path.display().to_string(), written))
}
