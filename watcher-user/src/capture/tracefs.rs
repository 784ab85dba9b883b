//! Tracepoint record layouts from tracefs (`events/<category>/<event>/format`).
//!
//! Syscall tracepoints have had one layout for years, but others have changed: `sched_process_fork`
//! stored its comm fields inline (`char[16]`) until 6.x and as 4-byte `__data_loc` references since, which
//! moves `child_pid` from offset 44 to 20. So the offsets the programs read are looked up at start-up.

use std::path::Path;

/// Why a field offset could not be found.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The format file could not be read.
    #[error("cannot read tracepoint format {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The field is not in the format.
    #[error("tracepoint {event} has no field {field}; this kernel's layout is not supported")]
    Missing {
        /// `category/event`.
        event: String,
        /// The field.
        field: String,
    },
}

/// Offset of `field` in the records of tracepoint `category:event`, read from tracefs at `root`.
pub fn field_offset(
    root: &Path,
    category: &str,
    event: &str,
    field: &str,
) -> Result<u32, FormatError> {
    let path = root
        .join("events")
        .join(category)
        .join(event)
        .join("format");
    let text = std::fs::read_to_string(&path).map_err(|source| FormatError::Read {
        path: path.display().to_string(),
        source,
    })?;
    offset_in(&text, field).ok_or_else(|| FormatError::Missing {
        event: format!("{category}/{event}"),
        field: field.to_owned(),
    })
}

/// Finds `field:<type> <field>;<tab>offset:N;` in a format file's text.
fn offset_in(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';').map(str::trim);
        let declaration = parts.next()?.strip_prefix("field:")?;
        let name = declaration.rsplit([' ', '*']).next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        parts.find_map(|p| p.strip_prefix("offset:")?.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::offset_in;

    const NEW_FORK: &str = "name: sched_process_fork
ID: 366
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;
\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;
";

    const OLD_FORK: &str = "format:
\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:0;
\tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;
";

    #[test]
    fn finds_fields_in_both_fork_layouts() {
        assert_eq!(offset_in(NEW_FORK, "child_pid"), Some(20));
        assert_eq!(offset_in(OLD_FORK, "child_pid"), Some(44));
        assert_eq!(offset_in(OLD_FORK, "child_comm"), Some(28));
        assert_eq!(offset_in(NEW_FORK, "parent_comm"), Some(8));
        assert_eq!(offset_in(NEW_FORK, "pid"), None, "whole names only");
        assert_eq!(offset_in("garbage", "child_pid"), None);
    }
}
