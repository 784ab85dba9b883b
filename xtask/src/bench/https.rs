//! The HTTPS case of `cargo xtask bench`: CPU per request of nginx (one worker, the HTTP section's
//! static page, over TLS with a throwaway certificate) under wrk, alternating nothing attached /
//! watcher `--no-tls` (syscall tracepoints only: the ciphertext is seen and counted as encrypted) /
//! watcher with TLS capture (uprobes on OpenSSL too), medians (`service`); plus what each watcher
//! reported. It never leaves the certificate or nginx's files behind.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use super::{
    http::{self, Nginx},
    service::{self, Setup},
    Plan,
};

/// TLS port of the benchmark's nginx (beside the HTTP section's plain port).
const TLS_PORT: u16 = 16393;

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
    Ok(())
}
