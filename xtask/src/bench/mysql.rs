//! The MySQL case of `cargo xtask bench`: CPU per query of a MariaDB server under `sysbench
//! oltp_read_write` (prepared statements, two threads, a fixed number of transactions), alternating
//! baseline / empty programs / watcher (`watch mysql --pid <mariadbd>`), medians (`service`); plus the
//! records and loss watcher reported.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{
    procs::{wait_for_port, Guard},
    service, Plan,
};

/// Port of the benchmark's MariaDB.
const PORT: u16 = 16392;
/// The benchmark user's password (a throwaway server on loopback).
const PASSWORD: &str = "bench";

/// A MariaDB server with a data directory of its own and a user `bench`; removed on drop.
struct MariaDb {
    server: Guard,
    dir: PathBuf,
}

impl MariaDb {
    fn start() -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("watcher-bench-mariadb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let data = dir.join("data");
        let install = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .context("running mariadb-install-db")?;
        if !install.status.success() {
            bail!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&install.stderr)
            );
        }
        let server = Guard(
            Command::new("mariadbd")
                .args([
                    "--no-defaults",
                    "--user=root",
                    "--bind-address=127.0.0.1",
                    "--skip-log-bin",
                ])
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", dir.join("sock").display()))
                .arg(format!("--pid-file={}", dir.join("pid").display()))
                .arg(format!("--port={PORT}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting mariadbd")?,
        );
        let db = Self { server, dir };
        wait_for_port(PORT, "mariadbd", Duration::from_secs(10))?;
        db.admin(&format!(
            "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES; \
             CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON *.* TO 'bench'@'127.0.0.1'; CREATE DATABASE sbtest;"
        ))?;
        Ok(db)
    }

    fn admin(&self, sql: &str) -> Result<()> {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-e", sql])
            .output()
            .context("running the mariadb client")?;
        if !out.status.success() {
            bail!("{sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.server.0.kill();
        let _ = self.server.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `sysbench oltp_read_write` against the server, with `extra` arguments, running `phase`.
fn sysbench(phase: &str, extra: &[&str]) -> Result<String> {
    let out = Command::new("sysbench")
        .args([
            "oltp_read_write",
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--mysql-user=bench",
            "--mysql-db=sbtest",
            "--tables=1",
            "--table-size=10000",
        ])
        .arg(format!("--mysql-port={PORT}"))
        .arg(format!("--mysql-password={PASSWORD}"))
        .args(extra)
        .arg(phase)
        .output()
        .context("running sysbench")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "sysbench {phase} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

/// One sysbench run of `events` transactions: the queries it sent (failed ones included) and the
/// seconds it took.
fn load(events: u32) -> Result<(u64, f64)> {
    let started = Instant::now();
    let report = sysbench(
        "run",
        &[&format!("--events={events}"), "--time=0", "--threads=2"],
    )?;
    let secs = started.elapsed().as_secs_f64();
    let number = |label: &str| -> Result<u64> {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse().ok()))
            .with_context(|| format!("no `{label}` in sysbench's report: {report}"))
    };
    Ok((number("total:")? + number("ignored errors:")?, secs))
}

/// The MySQL overhead section.
pub fn overhead(watcher: &Path, plan: &Plan) -> Result<()> {
    let events = if plan.quick { 1_000 } else { 4_000 };
    println!(
        "\n== MySQL overhead: sysbench oltp_read_write --threads=2 --events={events} (prepared statements, 20 queries a transaction) against MariaDB; {} alternating rounds, medians",
        plan.rounds
    );
    println!("   CPU ns per query: mariadbd, its observer, total, added to baseline; queries per second kept; the share of a CPU the server ran and of the host left idle; the load generator's CPU per request");
    let db = MariaDb::start()?;
    sysbench("prepare", &[])?;
    let measured = service::alternate(watcher, "mysql", db.server.0.id(), plan.rounds, || {
        load(events)
    })?;
    service::print_summaries(&service::with_against(&service::Setup::ALL), &measured);
    Ok(())
}
