//! The HTTPS case of `cargo xtask bench`: CPU per request of a server under wrk over TLS (a throwaway
//! certificate, the HTTP section's static page), alternating nothing attached / watcher `--no-tls`
//! (syscall tracepoints only: the ciphertext is seen and counted as encrypted) / watcher with TLS
//! capture (uprobes on the TLS library too), medians (`service`); plus what each watcher reported.
//! Two servers, one table each: nginx (one worker, OpenSSL) and caddy (Go's `crypto/tls`, on one
//! CPU like the nginx worker). It never leaves the certificate or the servers' files behind.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::{
    http::{self, Nginx},
    procs::{wait_for_port, Guard},
    service::{self, Setup},
    Plan,
};

/// TLS port of the benchmark's nginx (beside the HTTP section's plain port).
const TLS_PORT: u16 = 16393;
/// Port of the benchmark's caddy.
const GO_PORT: u16 = 16394;

/// What the section compares.
const SETUPS: [Setup; 3] = [
    Setup::Baseline,
    Setup::Watcher(&["--no-tls"]),
    Setup::Watcher(&[]),
];

/// A self-signed certificate and its key for `127.0.0.1`, in a temporary directory removed on drop.
struct Cert {
    dir: PathBuf,
}

impl Cert {
    fn make() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("watcher-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let cert = Self { dir };
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(cert.key())
            .arg("-out")
            .arg(cert.cert())
            .output()
            .context("running openssl")?;
        if !out.status.success() {
            bail!(
                "openssl could not make the certificate: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(cert)
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The HTTPS overhead section.
pub fn overhead(watcher: &Path, plan: &Plan) -> Result<()> {
    let secs = if plan.quick { 3 } else { 5 };
    println!(
        "\n== HTTPS overhead: wrk -t 1 -c 50 -d {secs}s over TLS against nginx (1 worker, the same page; TLS 1.3, keep-alive); {} alternating rounds, medians",
        plan.rounds
    );
    println!("   CPU ns per request: nginx worker, its observer, total, added to baseline; requests per second kept; the share of a CPU the server ran and of the host left idle; the load generator's CPU per request");
    let cert = Cert::make()?;
    let nginx = Nginx::start(&format!(
        "listen 127.0.0.1:{TLS_PORT} ssl; ssl_certificate {}; ssl_certificate_key {}; ssl_protocols TLSv1.2 TLSv1.3;",
        cert.cert().display(),
        cert.key().display()
    ))?;
    let worker = nginx.worker()?;
    let url = format!("https://127.0.0.1:{TLS_PORT}{}", http::PAGE);
    let setups = service::with_against(&SETUPS);
    let measured =
        service::alternate_setups(watcher, "http", worker, &setups, plan.rounds, || {
            http::wrk(&url, secs)
        })?;
    service::print_summaries(&setups, &measured);
    drop(nginx);

    println!(
        "\n== HTTPS overhead, Go: the same against caddy (Go's crypto/tls, GOMAXPROCS=1, the same page); {} alternating rounds, medians",
        plan.rounds
    );
    println!("   CPU ns per request: caddy, its observer, total, added to baseline; requests per second kept; the share of a CPU the server ran and of the host left idle; the load generator's CPU per request");
    let caddy = Caddy::start(&cert)?;
    let url = format!("https://127.0.0.1:{GO_PORT}{}", http::PAGE);
    let measured =
        service::alternate_setups(watcher, "http", caddy.pid(), &setups, plan.rounds, || {
            http::wrk(&url, secs)
        })?;
    service::print_summaries(&setups, &measured);
    Ok(())
}

/// caddy serving the HTTP section's page over TLS on [`GO_PORT`] with `cert`, on one CPU; killed on
/// drop, its files removed.
struct Caddy {
    server: Guard,
    dir: PathBuf,
}

impl Caddy {
    fn start(cert: &Cert) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("watcher-bench-caddy-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("www"))?;
        std::fs::write(dir.join("www/index.html"), http::page())?;
        let d = dir.display();
        std::fs::write(
            dir.join("Caddyfile"),
            format!(
                "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {d}/data\n}}\n\
                 https://127.0.0.1:{GO_PORT} {{\n\ttls {} {}\n\troot * {d}/www\n\tfile_server\n}}\n",
                cert.cert().display(),
                cert.key().display(),
            ),
        )?;
        let server = Guard(
            Command::new("caddy")
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(dir.join("Caddyfile"))
                .env("GOMAXPROCS", "1")
                .env("HOME", &dir)
                .env("XDG_DATA_HOME", &dir)
                .env("XDG_CONFIG_HOME", &dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting caddy")?,
        );
        let caddy = Self { server, dir };
        wait_for_port(GO_PORT, "caddy", Duration::from_secs(5))?;
        Ok(caddy)
    }

    fn pid(&self) -> u32 {
        self.server.0.id()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.server.0.kill();
        let _ = self.server.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
