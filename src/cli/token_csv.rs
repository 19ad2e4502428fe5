//! `borne token new --csv`: the staff list of a city's schools (one row per
//! teacher) turned into `users:` entries holding only hashes, and into one
//! printable sheet of sign-in cards per school (`token_sheet`). Every row
//! is checked against the configuration before any token is drawn, and
//! every mistake is reported with its line, so IT fixes the list in one
//! pass and nothing is written until it is right.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::token::{sign_in_link, token_sha256, yaml_scalar};
use super::token_sheet::{Card, render_sheet};
use crate::config::{Config, Role, is_valid_id};

/// The columns, in the order of the header.
pub const COLUMNS: [&str; 5] = ["name", "role", "classrooms", "schools", "expires"];

/// One checked row of the staff list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Its line in the CSV file.
    pub line: u64,
    /// The user's name (audit log, card).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Classrooms it may switch, as written (deduplicated).
    pub classrooms: Vec<String>,
    /// Schools whose classrooms it may switch, as written (deduplicated).
    pub schools: Vec<String>,
    /// Last day its token is accepted.
    pub expires: Option<NaiveDate>,
}

impl Person {
    /// The school whose sheet carries this person's card: the school of its
    /// first classroom, else its first school. Each token is printed once,
    /// on one sheet, so that no other school's director holds it.
    fn sheet_school<'a>(&'a self, config: &'a Config) -> Option<&'a str> {
        self.classrooms
            .first()
            .and_then(|c| config.classroom(c))
            .map(|c| c.school.as_str())
            .or_else(|| self.schools.first().map(String::as_str))
    }
}

/// What the onboarding writes: file names (in the output directory) and
/// their contents.
#[derive(Debug)]
pub struct Onboarding {
    /// `users.yaml` first, then one `<school_id>.html` per school, in the
    /// configuration's school order.
    pub files: Vec<(String, String)>,
    /// Cards per sheet file, in the same order as the sheets in `files`.
    pub cards: Vec<(String, usize)>,
}

/// The base URL of the sheets' links: `--url` when given, else the
/// configuration's `public_url`, which must then be reachable from a
/// teacher's phone (not the loopback default taken from `listen:`).
///
/// # Errors
/// Not an http(s) URL, or a loopback `public_url`.
pub fn base_url(flag: Option<&str>, public_url: &str) -> Result<String, String> {
    let (text, from) = match flag {
        Some(u) => (u, "--url"),
        None => (public_url, "public_url"),
    };
    let url = reqwest::Url::parse(text).map_err(|e| format!("{from} \"{text}\" is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{from} \"{text}\" is not an http:// or https:// URL"));
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback() || a.is_unspecified());
    if flag.is_none() && loopback {
        return Err(format!(
            "the sheets' links would open {text}, which a teacher's phone cannot reach: set public_url in the configuration (the address people use), or pass --url"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// The separator: the one of `;` and `,` the header line uses.
fn separator(header: &str) -> u8 {
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

fn parse_role(text: &str) -> Option<Role> {
    match text.to_ascii_lowercase().as_str() {
        "teacher" => Some(Role::Teacher),
        "admin" => Some(Role::Admin),
        "viewer" => Some(Role::Viewer),
        _ => None,
    }
}

/// Space-separated ids, each checked as an id and against the
/// configuration; duplicates dropped.
fn ids(text: &str, what: &str, exists: impl Fn(&str) -> bool, err: &mut impl FnMut(String)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in text.split_whitespace() {
        if !is_valid_id(id) {
            err(format!(
                "{what} \"{id}\" is not an id (1 to 64 characters among a-z, 0-9 and -; several are separated by spaces)"
            ));
        } else if !exists(id) {
            err(format!("{what} \"{id}\" is not in the configuration"));
        } else if !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
    }
    out
}

/// Reads and checks the staff list. `existing_users`: names already in the
/// configuration that the new `users.yaml` would duplicate (empty when it
/// replaces the file they come from). `today`: in the configuration's time
/// zone, an `expires` before it is refused.
///
/// # Errors
/// Every problem found, each as `SOURCE:LINE: message`.
pub fn read(
    text: &str,
    source: &str,
    config: &Config,
    existing_users: &[&str],
    today: NaiveDate,
) -> Result<Vec<Person>, Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text.lines().next().unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator(header_line))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => return Err(vec![format!("{source}:1: {e}")]),
    };
    if headers != COLUMNS {
        return Err(vec![format!(
            "{source}:1: the header must be {}, found {}",
            COLUMNS.join(","),
            headers.join(",")
        )]);
    }
    let mut errors = Vec::new();
    let mut people: Vec<Person> = Vec::new();
    let mut names: BTreeMap<String, u64> = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(format!("{source}:{line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let before = errors.len();
        let mut err = |m: String| errors.push(format!("{source}:{line}: {m}"));
        if record.len() != COLUMNS.len() {
            err(format!("{} fields, the header has {}", record.len(), COLUMNS.len()));
            continue;
        }
        let field = |i: usize| record.get(i).unwrap_or("");
        let name = field(0).to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            err(format!("name \"{name}\": 1 to 100 characters, no control character"));
        } else if let Some(prev) = names.get(&name) {
            err(format!(
                "name \"{name}\" is also on line {prev} (each user needs its own name)"
            ));
        } else if existing_users.contains(&name.as_str()) {
            err(format!(
                "name \"{name}\" is already a user of the configuration (each user needs its own name)"
            ));
        }
        names.entry(name.clone()).or_insert(line);
        let role = parse_role(field(1));
        if role.is_none() {
            err(format!("role \"{}\": use teacher, admin or viewer", field(1)));
        }
        let classrooms = ids(field(2), "classroom", |id| config.classroom(id).is_some(), &mut err);
        let schools = ids(field(3), "school", |id| config.school(id).is_some(), &mut err);
        let expires = match field(4) {
            "" => None,
            d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                Ok(date) if date < today => {
                    err(format!("expires {date} is already past (today is {today})"));
                    None
                }
                Ok(date) => Some(date),
                Err(_) => {
                    err(format!("expires \"{d}\" is not a date YYYY-MM-DD (or leave it empty)"));
                    None
                }
            },
        };
        if field(2).is_empty() && field(3).is_empty() {
            match role {
                Some(Role::Teacher) => err("a teacher needs classrooms or schools to switch".into()),
                Some(r) => err(format!(
                    "no classrooms and no schools: a city-wide {r} is on no school's sheet (create it with `borne token new --role {r}`)"
                )),
                None => {}
            }
        }
        if errors.len() > before {
            continue;
        }
        if let Some(role) = role {
            people.push(Person {
                line,
                name,
                role,
                classrooms,
                schools,
                expires,
            });
        }
    }
    if people.is_empty() && errors.is_empty() {
        errors.push(format!("{source}: no teacher in the file (only its header)"));
    }
    if errors.is_empty() { Ok(people) } else { Err(errors) }
}

/// Draws a token for each person and builds `users.yaml` and the sheets.
/// `new_token` draws one token (the OS generator in production).
/// `generated`: the day printed on the sheets.
///
/// # Errors
/// A token could not be drawn or a QR code not built.
pub fn onboard(
    people: &[Person],
    config: &Config,
    base_url: &str,
    generated: NaiveDate,
    mut new_token: impl FnMut() -> Result<String, String>,
) -> Result<Onboarding, String> {
    let mut yaml = String::new();
    let _ = writeln!(
        yaml,
        "# Written by `borne token new --csv` on {generated}: {} user(s).\n\
         # Only the tokens' SHA-256 are here; the tokens are on the printed sheets.\n\
         # Add this file to the main configuration's include: list, then reload borne.\n\
         users:",
        people.len()
    );
    let mut cards: BTreeMap<&str, Vec<Card>> = BTreeMap::new();
    for p in people {
        let token = new_token()?;
        let _ = writeln!(yaml, "  - name: {}", yaml_scalar(&p.name));
        let _ = writeln!(yaml, "    role: {}", p.role);
        if !p.classrooms.is_empty() {
            let _ = writeln!(yaml, "    classrooms: [{}]", p.classrooms.join(", "));
        }
        if !p.schools.is_empty() {
            let _ = writeln!(yaml, "    schools: [{}]", p.schools.join(", "));
        }
        if let Some(d) = p.expires {
            let _ = writeln!(yaml, "    expires: {d}");
        }
        let _ = writeln!(yaml, "    token_sha256: {}", token_sha256(&token));
        let school = p
            .sheet_school(config)
            .ok_or_else(|| format!("line {}: no school for {}", p.line, p.name))?;
        cards.entry(school).or_default().push(Card {
            name: p.name.clone(),
            role: p.role,
            classrooms: p
                .classrooms
                .iter()
                .filter_map(|c| config.classroom(c))
                .map(|c| (c.id.to_string(), c.name.clone()))
                .collect(),
            schools: p
                .schools
                .iter()
                .filter_map(|s| config.school(s))
                .map(|s| (s.id.to_string(), s.name.clone()))
                .collect(),
            link: sign_in_link(base_url, p.role, &token),
            expires: p.expires,
        });
    }
    let mut files = vec![("users.yaml".to_owned(), yaml)];
    let mut counts = Vec::new();
    for school in &config.schools {
        if let Some(cards) = cards.get(school.id.as_str()) {
            let file = format!("{}.html", school.id);
            files.push((
                file.clone(),
                render_sheet(&school.name, school.id.as_str(), cards, generated)?,
            ));
            counts.push((file, cards.len()));
        }
    }
    Ok(Onboarding { files, cards: counts })
}

/// Writes the files into `dir` (created, mode 0700, when missing), each
/// mode 0600 since the sheets hold secrets. Refuses to replace an existing
/// file unless `force`. Every file is first written beside its place, then
/// all are renamed into place, so a failure leaves no half-written set.
///
/// # Errors
/// A file exists (without `force`), or the directory or a file could not
/// be written; the message names it.
pub fn write(dir: &Path, files: &[(String, String)], force: bool) -> Result<Vec<PathBuf>, String> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let paths: Vec<PathBuf> = files.iter().map(|(name, _)| dir.join(name)).collect();
    let existing: Vec<String> = paths
        .iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !force && !existing.is_empty() {
        return Err(format!(
            "{} already exist(s); nothing written. Pass --force to replace (the tokens of the old sheets stop working once the new users.yaml is loaded), or choose another --out",
            existing.join(", ")
        ));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let temps: Vec<PathBuf> = files.iter().map(|(name, _)| dir.join(format!(".{name}.tmp"))).collect();
    let cleanup = |temps: &[PathBuf]| {
        for t in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for ((_, text), tmp) in files.iter().zip(&temps) {
        let _ = std::fs::remove_file(tmp);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
        if let Err(e) = written {
            cleanup(&temps);
            return Err(format!("cannot write {}: {e}", tmp.display()));
        }
    }
    for (tmp, path) in temps.iter().zip(&paths) {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&temps);
            return Err(format!("cannot write {}: {e}", path.display()));
        }
    }
    Ok(paths)
}
