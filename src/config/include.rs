//! `include:` — a school per file. The included trees are merged into the
//! main one before serde sees anything, so every later check works on one
//! document while each node keeps the file it came from.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Problem;
use super::yaml::{self, Kind, Node, Pos};

/// The top-level keys an included file may hold.
const ALLOWED: [&str; 4] = ["schools", "calendars", "schedules", "users"];

fn problem(pos: &Pos, message: impl Into<String>) -> Problem {
    Problem {
        location: pos.to_string(),
        message: message.into(),
        missing_file: false,
    }
}

/// Reads a configuration file, refusing one larger than [`yaml::MAX_BYTES`]
/// before reading it.
///
/// # Errors
/// The file cannot be read, is too large or is not UTF-8.
pub fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let too_large = |n: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{n} bytes or more, larger than the {} MiB a configuration file may hold",
                yaml::MAX_BYTES >> 20
            ),
        )
    };
    let len = file.metadata()?.len();
    if len > yaml::MAX_BYTES {
        return Err(too_large(len));
    }
    let mut text = String::new();
    // The file may grow between the size check and the read.
    file.take(yaml::MAX_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > yaml::MAX_BYTES {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

/// Removes `include:` from the main tree and merges the files it names.
/// `base_dir` resolves relative patterns; `main_file`, when known, is never
/// included in itself.
pub fn resolve(
    root: &mut Node,
    base_dir: Option<&Path>,
    main_file: Option<&Path>,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let Kind::Map(entries) = &mut root.kind else { return };
    let Some(i) = entries.iter().position(|(k, _)| k.as_str() == Some("include")) else {
        return;
    };
    let (_, value) = entries.remove(i);
    let patterns: Vec<&Node> = match &value.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar { .. } if !value.is_null() => vec![&value],
        Kind::Scalar { .. } => Vec::new(),
        Kind::Map(_) => {
            errors.push(problem(&value.pos, "include: takes a file pattern or a list of them"));
            return;
        }
    };
    let main = main_file.and_then(|p| p.canonicalize().ok());
    let mut files: Vec<(PathBuf, Pos)> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in patterns {
        let Some(pattern) = p.as_str() else {
            errors.push(problem(&p.pos, "an include pattern is a string such as schools/*.yaml"));
            continue;
        };
        let full = match base_dir {
            Some(base) if Path::new(pattern).is_relative() => base.join(pattern),
            _ => PathBuf::from(pattern),
        };
        let wildcard = pattern.contains(['*', '?', '[']);
        let matches = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths,
            Err(e) => {
                errors.push(problem(&p.pos, format!("bad pattern \"{pattern}\": {e}")));
                continue;
            }
        };
        let mut found = 0;
        for m in matches {
            match m {
                Ok(path) => {
                    found += 1;
                    let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
                    if Some(&canonical) != main.as_ref() && seen.insert(canonical) {
                        files.push((path, p.pos.clone()));
                    }
                }
                Err(e) => errors.push(problem(
                    &p.pos,
                    format!("cannot read {}: {}", e.path().display(), e.error()),
                )),
            }
        }
        if found == 0 {
            if wildcard {
                warnings.push(problem(&p.pos, format!("\"{pattern}\" matches no file")));
            } else {
                errors.push(problem(&p.pos, format!("cannot read {}: no such file", full.display())));
            }
        }
    }
    for (path, pos) in files {
        let text = match read_limited(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(problem(&pos, format!("cannot read {}: {e}", path.display())));
                continue;
            }
        };
        let name: Arc<str> = Arc::from(path.display().to_string());
        match yaml::parse(&text, &name) {
            Ok(tree) => merge_into(root, tree, errors),
            Err(e) => errors.push(problem(&e.pos, e.message)),
        }
    }
}

/// Appends an included file's lists and adds its named blocks, refusing a
/// name defined twice (both places named).
fn merge_into(root: &mut Node, included: Node, errors: &mut Vec<Problem>) {
    let Kind::Map(parts) = included.kind else {
        errors.push(problem(
            &included.pos,
            "an included file is a mapping with schools: (and calendars:, schedules:, users:)",
        ));
        return;
    };
    let Kind::Map(entries) = &mut root.kind else { return };
    for (key, value) in parts {
        let Some(name) = key.as_str().filter(|n| ALLOWED.contains(n)).map(str::to_owned) else {
            errors.push(problem(
                &key.pos,
                format!(
                    "\"{}\" cannot be in an included file, which holds only {}",
                    key.as_str().unwrap_or("?"),
                    ALLOWED.join(", ")
                ),
            ));
            continue;
        };
        if value.is_null() {
            continue;
        }
        let list = matches!(name.as_str(), "schools" | "users");
        match (&value.kind, list) {
            (Kind::Seq(_), true) | (Kind::Map(_), false) => {}
            _ => {
                let what = if list { "a list" } else { "a mapping of names" };
                errors.push(problem(&value.pos, format!("{name}: must be {what}")));
                continue;
            }
        }
        let slot = match entries.iter().position(|(k, _)| k.as_str() == Some(&name)) {
            Some(i) => &mut entries[i].1,
            None => {
                entries.push((key, value));
                continue;
            }
        };
        if slot.is_null() {
            *slot = value;
            continue;
        }
        match (&mut slot.kind, value.kind) {
            (Kind::Seq(items), Kind::Seq(more)) => items.extend(more),
            (Kind::Map(named), Kind::Map(more)) => {
                for (k, v) in more {
                    let dup = named
                        .iter()
                        .find(|(n, _)| n.as_str().is_some() && n.as_str() == k.as_str())
                        .map(|(n, _)| n.pos.clone());
                    match dup {
                        Some(prev) => errors.push(problem(
                            &k.pos,
                            format!(
                                "{} \"{}\" is defined twice (also at {prev})",
                                name.trim_end_matches('s'),
                                k.as_str().unwrap_or("?")
                            ),
                        )),
                        None => named.push((k, v)),
                    }
                }
            }
            // The main file's block has the wrong type: serde reports it there.
            _ => {}
        }
    }
}
