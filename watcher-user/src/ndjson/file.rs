//! NDJSON files: where an export goes (a path, stdout, or a new timestamped file) and opening it.
//!
//! Every file watcher creates is opened here, when a mode starts, never while arguments are validated.
//! A default-named file is created new (`create_new`), so an earlier capture is never overwritten.

use std::{
    fs::{File, OpenOptions},
    io::{BufWriter, Write},
    path::PathBuf,
    time::SystemTime,
};

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// This file (created, or truncated when it exists).
    File(PathBuf),
    /// A new `PREFIX-YYYYMMDD-HHMMSS.ndjson` in the current directory.
    Timestamped(&'static str),
}

impl Target {
    /// `-` means stdout, anything else a file.
    pub fn from_arg(path: PathBuf) -> Self {
        if path.as_os_str() == "-" {
            Target::Stdout
        } else {
            Target::File(path)
        }
    }
}

/// The export could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("--json-output: cannot create {path}: {source}")]
pub struct OpenError {
    /// The path, or the pattern of a timestamped name.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// An open export.
pub struct Opened {
    /// What to call it in messages (`stdout` or the path).
    pub name: String,
    /// The file created, if one was (to remove it if the run never starts).
    pub created: Option<PathBuf>,
    /// Where to write.
    pub writer: Box<dyn Write + Send>,
}

/// Opens `target` for writing.
pub fn open(target: &Target) -> Result<Opened, OpenError> {
    let (path, file) = match target {
        Target::Stdout => {
            return Ok(Opened {
                name: "stdout".into(),
                created: None,
                writer: Box::new(BufWriter::new(std::io::stdout())),
            })
        }
        Target::File(path) => {
            let file = File::create(path).map_err(|source| OpenError {
                path: path.display().to_string(),
                source,
            })?;
            (path.clone(), file)
        }
        Target::Timestamped(prefix) => {
            create_timestamped(prefix, SystemTime::now()).map_err(|source| OpenError {
                path: format!("{prefix}-<time>.ndjson"),
                source,
            })?
        }
    };
    Ok(Opened {
        name: path.display().to_string(),
        created: Some(path),
        writer: Box::new(BufWriter::new(file)),
    })
}

/// Creates `PREFIX-YYYYMMDD-HHMMSS.ndjson` (UTC, `now`) in the current directory, adding `-1`, `-2`, ...
/// rather than overwriting an earlier file of the same second.
pub fn create_timestamped(prefix: &str, now: SystemTime) -> std::io::Result<(PathBuf, File)> {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter_map(|c| match c {
            'T' => Some('-'),
            c if c.is_ascii_digit() => Some(c),
            _ => None,
        })
        .collect();
    let mut attempt = 0;
    loop {
        let name = if attempt == 0 {
            format!("{prefix}-{stamp}.ndjson")
        } else {
            format!("{prefix}-{stamp}-{attempt}.ndjson")
        };
        match OpenOptions::new().write(true).create_new(true).open(&name) {
            Ok(file) => return Ok((PathBuf::from(name), file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_that_cannot_be_created_names_the_flag() {
        let Err(e) = open(&Target::File("/nonexistent-dir/x.ndjson".into())) else {
            panic!("no such directory");
        };
        assert!(e.to_string().starts_with("--json-output"), "{e}");
        assert_eq!(Target::from_arg("-".into()), Target::Stdout);
    }
}
