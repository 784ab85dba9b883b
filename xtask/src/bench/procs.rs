//! The processes a benchmark runs and how their cost is read: CPU time from
//! `/proc/<pid>/task/*/schedstat` (hardware counters are unavailable here), the host's idle time from
//! `/proc/stat`, memory from `VmRSS`.

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::mpsc::{channel, Receiver},
    thread,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

use crate::check;

/// Port of the benchmark's redis-server.
pub const PORT: u16 = 16390;

/// CPU time (ns) of every thread of `pid`, 0 once it is gone.
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU ns used so far by the children this process has waited for: around a load generator's run
/// (started and waited for in between), what that load cost in CPU.
pub fn children_cpu_ns() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |u| {
        let ns = |t: nix::sys::time::TimeVal| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_usec()).unwrap_or(0) * 1_000
        };
        ns(u.user_time()) + ns(u.system_time())
    })
}

/// The host's CPU time so far, in clock ticks summed over its CPUs: (idle, all).
pub fn host_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // `cpu  user nice system idle iowait irq softirq steal ...`; guest time is already in user.
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (idle, ticks.iter().sum())
}

/// Resident memory of `pid` in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the redis-server under test, allowing 20 000 clients.
pub fn redis_server() -> Result<Guard> {
    let server = Guard(
        Command::new("redis-server")
            .args([
                "--port",
                &PORT.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--maxclients", "20000"])
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?,
    );
    wait_for_port(PORT, "redis-server", Duration::from_secs(5))?;
    Ok(server)
}

/// Waits until something listens on `port` of 127.0.0.1 (`server`, for the error), for at most
/// `patience`.
pub fn wait_for_port(port: u16, server: &str, patience: Duration) -> Result<()> {
    const STEP: Duration = Duration::from_millis(50);
    for _ in 0..=patience.as_millis() / STEP.as_millis() {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        thread::sleep(STEP);
    }
    bail!("{server} did not start listening on {port}")
}

/// Runs redis-benchmark with 50 clients, SET and GET, `requests` each, `pipeline` deep.
pub fn load(requests: u32, pipeline: u32, value_bytes: u32) -> Result<()> {
    check(
        Command::new("redis-benchmark")
            .args(["-p", &PORT.to_string(), "-c", "50", "-t", "set,get", "-q"])
            .args(["-n", &requests.to_string(), "-P", &pipeline.to_string()])
            .args(["-d", &value_bytes.to_string()])
            .stdout(Stdio::null()),
    )
}

/// Runs [`paced_client`] as a child process (`cargo xtask paced-load`), so that its CPU counts as the
/// load's; returns the requests it made.
pub fn paced_load(rate: u32, span: Duration) -> Result<u64> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let out = Command::new(exe)
        .args([
            "paced-load",
            &rate.to_string(),
            &span.as_secs_f64().to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("starting the paced client")?;
    if !out.status.success() {
        bail!("the paced client failed with {}", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("reading the paced client's count")
}

/// Requests a second one connection of [`paced_client`] is given at most: a request waits for its
/// reply, so one connection here does about 15 000 a second with watcher attached, and a rate it
/// cannot keep would measure the client instead of the rate.
pub const PACED_PER_CONNECTION: u32 = 10_000;

/// SET and GET, alternately, to the bench's redis-server, `rate` a second for `span`, on as many
/// connections as that takes ([`PACED_PER_CONNECTION`] each, one thread each): traffic where a drain
/// of the ring carries fewer records than under redis-benchmark, so what watcher spends per request
/// is partly the fixed price of waking up. Returns how many requests were made.
pub fn paced_client(rate: u32, span: Duration) -> Result<u64> {
    let connections = rate.div_ceil(PACED_PER_CONNECTION).max(1);
    let share = rate / connections;
    let clients: Vec<_> = (0..connections)
        .map(|_| thread::spawn(move || paced_connection(share, span)))
        .collect();
    let mut made = 0;
    for client in clients {
        made += client
            .join()
            .map_err(|_| anyhow::anyhow!("a paced connection panicked"))??;
    }
    Ok(made)
}

/// One connection of [`paced_client`], `rate` a second: the requests of each millisecond go one after
/// another (each waits for its reply), then it sleeps until the next are due.
fn paced_connection(rate: u32, span: Duration) -> Result<u64> {
    use std::io::{Read, Write};
    const SET: &[u8] = b"*3\r\n$3\r\nSET\r\n$5\r\npaced\r\n$1\r\nv\r\n";
    const SET_REPLY: &[u8] = b"+OK\r\n";
    const GET: &[u8] = b"*2\r\n$3\r\nGET\r\n$5\r\npaced\r\n";
    const GET_REPLY: &[u8] = b"$1\r\nv\r\n";
    let mut conn =
        TcpStream::connect(("127.0.0.1", PORT)).context("connecting the paced client")?;
    conn.set_nodelay(true)?;
    let started = std::time::Instant::now();
    let per_tick = u64::from(rate / 1000).max(1);
    let mut made = 0u64;
    let mut reply = [0u8; 16];
    while started.elapsed() < span {
        for _ in 0..per_tick {
            let (request, expected) = if made.is_multiple_of(2) {
                (SET, SET_REPLY)
            } else {
                (GET, GET_REPLY)
            };
            conn.write_all(request)?;
            let reply = &mut reply[..expected.len()];
            conn.read_exact(reply)?;
            if reply != expected {
                bail!("unexpected reply {:?}", String::from_utf8_lossy(reply));
            }
            made += 1;
        }
        let due = started + Duration::from_secs_f64(made as f64 / f64::from(rate.max(1)));
        thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    Ok(made)
}

/// A process watching the server (watcher, or `redis-cli MONITOR`), with its stderr lines.
pub struct Observer {
    child: Guard,
    lines: Receiver<String>,
}

impl Observer {
    /// Starts `cmd` and waits until it prints a line containing `ready` on stderr (or, with `None`, a
    /// fixed half second).
    pub fn start(cmd: &mut Command, ready: Option<&str>) -> Result<Self> {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let observer = Self {
            child: Guard(child),
            lines,
        };
        let Some(ready) = ready else {
            thread::sleep(Duration::from_millis(500));
            return Ok(observer);
        };
        loop {
            match observer.lines.recv_timeout(Duration::from_mins(1)) {
                Ok(line) if line.contains(ready) => return Ok(observer),
                Ok(_) => {}
                Err(_) => bail!("{cmd:?} did not get ready"),
            }
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Stops it with SIGINT (an orderly stop for watcher) and returns its last stderr line.
    pub fn stop(mut self) -> Result<String> {
        let pid = Pid::from_raw(i32::try_from(self.pid())?);
        let _ = kill(pid, Signal::SIGINT);
        for _ in 0..600 {
            if self.child.0.try_wait()?.is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        Ok(self.lines.try_iter().last().unwrap_or_default())
    }
}

/// What watcher's one-line summary says.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Records captured.
    pub records: u64,
    /// Records written to the export.
    pub exported: u64,
    /// Events or records lost anywhere.
    pub lost: u64,
}

/// Parses `watcher: N records (M exported), L lost, ...`.
pub fn parse_summary(line: &str) -> Option<Summary> {
    let rest = line.strip_prefix("watcher: ")?;
    let records = rest.split_whitespace().next()?.parse().ok()?;
    let exported = rest
        .split_once(" records (")?
        .1
        .split_once(" exported)")?
        .0
        .parse()
        .ok()?;
    let lost = rest
        .split(", ")
        .find_map(|part| part.strip_suffix(" lost"))?
        .parse()
        .ok()?;
    Some(Summary {
        records,
        exported,
        lost,
    })
}

/// Holds `count` idle client connections to the server, each having sent one PING (so the kernel side
/// has classified it and a shard holds its state).
pub fn idle_connections(count: usize) -> Result<Vec<TcpStream>> {
    use std::io::{Read, Write};
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        let mut c =
            TcpStream::connect(("127.0.0.1", PORT)).context("opening an idle connection")?;
        c.write_all(b"PING\r\n")?;
        let mut pong = [0u8; 7];
        c.read_exact(&mut pong)?;
        conns.push(c);
    }
    Ok(conns)
}

/// Raises this process's open-file limit to its hard limit so thousands of connections can be held.
pub fn raise_fd_limit() -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising RLIMIT_NOFILE")?;
    if hard < 10_500 {
        bail!("the open-file limit is {hard}; the growth section needs about 10 500 (ulimit -Hn)");
    }
    Ok(())
}
