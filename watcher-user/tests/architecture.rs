//! The import rules of `docs/architecture.md`, checked on the source: each top-level module of the
//! library imports only the modules its stage may use, so the data flow reads from the tree and no
//! stage leans on a later one. Test code (files named `*tests.rs`, `test_records.rs`, and everything
//! from a file's first `#[cfg(test)]` on) is free to build records however it likes and is not checked.

use std::{collections::BTreeMap, fs, path::Path};

/// Each top-level module and the modules it may import (`*`: any).
const ALLOWED: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("cgroup", &[]),
    ("record", &["protocol", "cgroup"]),
    ("counters", &[]),
    ("clock", &[]),
    ("format", &[]),
    ("invoker", &[]),
    ("handoff", &[]),
    ("capture", &["counters"]),
    (
        "conn",
        &[
            "capture", "protocol", "record", "counters", "clock", "cgroup", "handoff",
        ],
    ),
    ("store", &["record", "counters", "handoff"]),
    (
        "ndjson",
        &["protocol", "record", "store", "invoker", "cgroup"],
    ),
    ("analysis", &["protocol", "record", "counters", "format"]),
    (
        "tui",
        &[
            "protocol", "record", "store", "counters", "analysis", "format", "cgroup",
        ],
    ),
    ("telemetry", &["protocol", "record", "counters"]),
    (
        "cli",
        &[
            "protocol",
            "record",
            "analysis",
            "ndjson",
            "cgroup",
            "telemetry",
            "capture",
        ],
    ),
    ("modes", &["*"]),
];

/// The top-level modules a piece of source names through `crate::`.
fn imported_modules(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c::{d, e}}`: the names right after `{` or a `,` at the outer level.
            let mut depth = 1;
            let mut expect_name = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            rest = &group[i..];
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_name = true,
                    c if expect_name && depth == 1 && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        found.push(name);
                        expect_name = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

/// The non-test source of `path`.
fn production_source(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with("tests.rs") || name == "test_records.rs" {
        return None;
    }
    let text = fs::read_to_string(path).ok()?;
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    Some(text[..end].to_owned())
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_stage_imports_only_what_its_place_in_the_data_flow_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut broken = Vec::new();
    let mut checked = 0;
    for path in files {
        let relative = path.strip_prefix(&src).expect("below src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|m| m.trim_end_matches(".rs"))
            .expect("a module");
        if matches!(module, "lib" | "main") {
            continue;
        }
        let Some(source) = production_source(&path) else {
            continue;
        };
        let Some(may) = allowed.get(module) else {
            broken.push(format!(
                "{}: module `{module}` has no rule in ALLOWED",
                relative.display()
            ));
            continue;
        };
        checked += 1;
        for import in imported_modules(&source) {
            if import != module && !may.contains(&"*") && !may.contains(&import.as_str()) {
                broken.push(format!("{} imports `{import}`", relative.display()));
            }
        }
    }
    assert!(checked > 40, "only {checked} files were checked");
    broken.sort();
    broken.dedup();
    assert!(
        broken.is_empty(),
        "imports against the data flow:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_import_reader_sees_plain_and_grouped_imports() {
    let source = "use crate::{\n    a::b,\n    c::{d, e},\n    f,\n};\nlet x = crate::g::h();";
    assert_eq!(imported_modules(source), ["a", "c", "f", "g"]);
}
