//! The HTTP case of `cargo xtask bench`: CPU per request of nginx (one worker, static file) under wrk,
//! alternating baseline / empty programs / least copy / watcher (`watch http --pid <worker>`), medians
//! (`service`);
//! plus the records and loss watcher reported, so a cheap run that lost requests cannot pass for a good
//! one. Its nginx and wrk serve the HTTPS section too (`https`).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

use super::{
    procs::{wait_for_port, Guard},
    service, Plan,
};

/// Port of the benchmark's nginx.
pub(super) const PORT: u16 = 16391;

/// nginx with one worker serving a small page on [`PORT`]; stopped (with its worker) on drop.
pub(super) struct Nginx {
    master: Guard,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx; `server` is added to its server block (e.g. a TLS `listen` and its certificate).
    pub(super) fn start(server: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("watcher-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("www"))?;
        std::fs::write(dir.join("www/index.html"), page())?;
        let d = dir.display();
        let config = format!(
            "worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{PORT}; root {d}/www; {server} }}
}}
"
        );
        std::fs::write(dir.join("nginx.conf"), config)?;
        let master = Guard(
            Command::new("nginx")
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-p")
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting nginx")?,
        );
        let nginx = Self { master, dir };
        wait_for_port(PORT, "nginx", Duration::from_secs(5))?;
        Ok(nginx)
    }

    /// Adds a file for it to serve at `/NAME`.
    pub(super) fn write_page(&self, name: &str, bytes: &[u8]) -> Result<()> {
        std::fs::write(self.dir.join("www").join(name), bytes).context("writing a page for nginx")
    }

    /// The worker's pid (the process that serves requests).
    pub(super) fn worker(&self) -> Result<u32> {
        let pid = self.master.0.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .context("nginx has no worker")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its worker; the guard then reaps it.
        if let Ok(pid) = i32::try_from(self.master.0.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = self.master.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The page every run fetches.
pub(super) const PAGE: &str = "/index.html";

/// What [`PAGE`] holds: 630 bytes of HTML.
pub(super) fn page() -> String {
    "<p>watcher bench</p>\n".repeat(30)
}

/// Runs wrk against `url` for `secs` and returns the requests it completed and the seconds it ran.
pub(super) fn wrk(url: &str, secs: u64) -> Result<(u64, f64)> {
    let out = Command::new("wrk")
        .args(["-t", "1", "-c", "50", "-d", &format!("{secs}s")])
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok())
        .with_context(|| format!("no request count in wrk's output: {text}"))?;
    Ok((requests, secs as f64))
}

/// The HTTP table's setups: every service table's, and the least copy before watcher (it copies
/// nginx's `writev` answers as watcher does), so the table shows how far above that floor watcher is.
const SETUPS: [service::Setup; 5] = [
    service::Setup::Baseline,
    service::Setup::EmptyPrograms("tracepoints"),
    service::Setup::EmptyPrograms("raw"),
    service::Setup::LeastCopy,
    service::Setup::Watcher(&[]),
];

/// The HTTP overhead section, with the observer target against the in-process cost per exchange
/// (`reference`, ns).
pub fn overhead(watcher: &Path, plan: &Plan, reference: f64) -> Result<()> {
    let secs = if plan.quick { 3 } else { 5 };
    println!(
        "\n== HTTP overhead: wrk -t 1 -c 50 -d {secs}s against nginx (1 worker, 630-byte static page); {} alternating rounds, medians",
        plan.rounds
    );
    println!("   CPU ns per request: nginx worker, its observer, total, added to baseline; requests per second kept; the share of a CPU the server ran and of the host left idle; the load generator's CPU per request");
    let nginx = Nginx::start("")?;
    let worker = nginx.worker()?;
    let url = format!("http://127.0.0.1:{PORT}{PAGE}");
    let setups = service::with_against(&SETUPS);
    let measured =
        service::alternate_setups(watcher, "http", worker, &setups, plan.rounds, || {
            wrk(&url, secs)
        })?;
    // This build's watcher is the last of `SETUPS` (an `--against` binary may follow it).
    let [base, _, _, least_copy, watcher_run] = &measured[..SETUPS.len()] else {
        unreachable!("a measurement per setup");
    };
    println!(
        "   floor of any capture on this hook: the least copy adds {:+.0} ns to nginx's CPU per request, watcher {:+.0} ({:+.0} above it)",
        least_copy.service - base.service,
        watcher_run.service - base.service,
        watcher_run.service - least_copy.service,
    );
    let watcher_cost = watcher_run.observer;
    println!(
        "   observer: watcher's own CPU {watcher_cost:.0} ns per record = {:.2}x the in-process {reference:.0} ns (target <= 2x): {}",
        watcher_cost / reference,
        super::verdict(watcher_cost <= 2.0 * reference),
    );
    service::print_summaries(&setups, &measured);
    Ok(())
}
