//! `borne inventory import`: a city's inventory spreadsheet (one row per
//! access point) turned into one YAML file per school, ready for
//! `include:`. Every row is checked before anything is written, and every
//! mistake is reported with its line, so IT fixes the sheet in one pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::is_valid_id;

/// The columns, in the order of the header (an optional `schedule` may follow).
pub const COLUMNS: [&str; 8] = [
    "school_id",
    "school_name",
    "classroom_id",
    "classroom_name",
    "ap_id",
    "driver",
    "address",
    "preset",
];

const SSH_PRESETS: [&str; 1] = ["openwrt"];
const MQTT_PRESETS: [&str; 3] = ["tasmota", "shelly", "generic"];

struct Ap {
    id: String,
    driver: String,
    host: String,
    port: Option<u16>,
    preset: String,
}

struct Classroom {
    id: String,
    name: String,
    aps: Vec<Ap>,
}

struct School {
    id: String,
    name: String,
    schedule: Option<String>,
    first_line: u64,
    classrooms: Vec<Classroom>,
}

/// A value written as a YAML double-quoted scalar (JSON strings are).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The separator: the one of `;` and `,` the header line uses.
fn separator(header: &str) -> u8 {
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

/// `host` or `host:port` (`[v6]:port` for IPv6 with a port).
fn host_port(address: &str) -> Result<(String, Option<u16>), String> {
    let bad_port = |p: &str| format!("\"{p}\" is not a port (1 to 65535)");
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("\"{address}\": missing ] after an IPv6 address"))?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_owned(), Some(p)),
            None if after.is_empty() => (h.to_owned(), None),
            None => return Err(format!("\"{address}\" is not host or host:port")),
        }
    } else if address.matches(':').count() == 1 {
        let (h, p) = address.split_once(':').unwrap_or_default();
        (h.to_owned(), Some(p))
    } else {
        // No colon, or a bare IPv6 address.
        (address.to_owned(), None)
    };
    if host.is_empty() || host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("\"{address}\" is not a host name or address"));
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad_port(p))?),
        None => None,
    };
    Ok((host, port))
}

/// Reads the CSV and returns, per school id, the YAML of its file.
///
/// # Errors
/// Every problem found, each as `SOURCE:LINE: message`.
pub fn import(text: &str, source: &str, schedule: Option<&str>) -> Result<Vec<(String, String)>, Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text.lines().next().unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator(header_line))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => return Err(vec![format!("{source}:1: {e}")]),
    };
    let has_schedule = headers.len() == COLUMNS.len() + 1 && headers[COLUMNS.len()] == "schedule";
    if headers[..headers.len().min(COLUMNS.len())] != COLUMNS[..] || (headers.len() > COLUMNS.len() && !has_schedule) {
        return Err(vec![format!(
            "{source}:1: the header must be {} (then optionally schedule), found {}",
            COLUMNS.join(","),
            headers.join(",")
        )]);
    }
    if let Some(s) = schedule
        && !is_valid_id(s)
    {
        errors.push(format!("--schedule \"{s}\" is not a schedule name (a-z, 0-9 and -)"));
    }
    let mut schools: Vec<School> = Vec::new();
    let mut classroom_school: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut ap_lines: BTreeMap<String, u64> = BTreeMap::new();
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
        let mut err = |m: String| errors.push(format!("{source}:{line}: {m}"));
        if record.len() != headers.len() {
            err(format!("{} fields, the header has {}", record.len(), headers.len()));
            continue;
        }
        let field = |name: &str| {
            record
                .get(headers.iter().position(|h| h == name).unwrap_or(0))
                .unwrap_or("")
        };
        let mut ok = true;
        for (column, what) in [
            ("school_id", "school"),
            ("classroom_id", "classroom"),
            ("ap_id", "access point"),
        ] {
            let v = field(column);
            if !is_valid_id(v) {
                err(format!(
                    "{column} \"{v}\" is not a {what} id (1 to 64 characters among a-z, 0-9 and -)"
                ));
                ok = false;
            }
        }
        let driver = field("driver");
        let address = field("address");
        let mut preset = field("preset").to_owned();
        let (mut host, mut port) = (String::new(), None);
        match driver {
            "ssh" => {
                match host_port(address) {
                    Ok((h, p)) => (host, port) = (h, p),
                    Err(m) => {
                        err(format!("address {m}"));
                        ok = false;
                    }
                }
                if preset.is_empty() {
                    preset = "openwrt".into();
                }
                if !SSH_PRESETS.contains(&preset.as_str()) {
                    err(format!(
                        "preset \"{preset}\" for ssh: use {} (custom commands go in the YAML)",
                        SSH_PRESETS.join(", ")
                    ));
                    ok = false;
                }
            }
            "mqtt" => {
                if preset.is_empty() {
                    preset = "tasmota".into();
                }
                if !MQTT_PRESETS.contains(&preset.as_str()) {
                    err(format!("preset \"{preset}\" for mqtt: use {}", MQTT_PRESETS.join(", ")));
                    ok = false;
                }
                let device = preset != "generic";
                if address.is_empty()
                    || address.contains(['+', '#', '\0'])
                    || (device && address.contains('/'))
                    || address.chars().any(char::is_whitespace)
                {
                    err(format!(
                        "address \"{address}\" is not {}",
                        if device {
                            "a device topic (no /, + or #)"
                        } else {
                            "a topic (no + or #)"
                        }
                    ));
                    ok = false;
                }
                host = address.to_owned();
            }
            other => {
                err(format!("driver \"{other}\": use ssh or mqtt"));
                ok = false;
            }
        }
        let school_id = field("school_id").to_owned();
        let classroom_id = field("classroom_id").to_owned();
        let ap_id = field("ap_id").to_owned();
        let row_schedule = if has_schedule { field("schedule") } else { "" };
        let row_schedule = if row_schedule.is_empty() {
            schedule
        } else {
            Some(row_schedule)
        };
        if let Some(s) = row_schedule
            && has_schedule
            && !is_valid_id(s)
        {
            err(format!("schedule \"{s}\" is not a schedule name (a-z, 0-9 and -)"));
            ok = false;
        }
        if !ok {
            continue;
        }
        if let Some(prev) = ap_lines.insert(ap_id.clone(), line) {
            err(format!("access point \"{ap_id}\" is also on line {prev}"));
            continue;
        }
        if let Some((school, prev)) = classroom_school.get(&classroom_id)
            && *school != school_id
        {
            err(format!(
                "classroom \"{classroom_id}\" is in school \"{school}\" on line {prev}, here in \"{school_id}\""
            ));
            continue;
        }
        classroom_school.insert(classroom_id.clone(), (school_id.clone(), line));
        let school = match schools.iter_mut().position(|s| s.id == school_id) {
            Some(i) => &mut schools[i],
            None => {
                schools.push(School {
                    id: school_id.clone(),
                    name: field("school_name").to_owned(),
                    schedule: row_schedule.map(str::to_owned),
                    first_line: line,
                    classrooms: Vec::new(),
                });
                schools.last_mut().unwrap_or_else(|| unreachable!())
            }
        };
        let name = field("school_name");
        if !name.is_empty() && !school.name.is_empty() && school.name != name {
            err(format!(
                "school \"{school_id}\" is named \"{}\" on line {}, here \"{name}\"",
                school.name, school.first_line
            ));
            continue;
        }
        if school.name.is_empty() {
            school.name = name.to_owned();
        }
        if school.schedule.as_deref() != row_schedule {
            err(format!(
                "school \"{school_id}\" has schedule \"{}\" on line {}, here \"{}\"",
                school.schedule.as_deref().unwrap_or(""),
                school.first_line,
                row_schedule.unwrap_or("")
            ));
            continue;
        }
        let classroom = match school.classrooms.iter_mut().position(|c| c.id == classroom_id) {
            Some(i) => &mut school.classrooms[i],
            None => {
                school.classrooms.push(Classroom {
                    id: classroom_id.clone(),
                    name: field("classroom_name").to_owned(),
                    aps: Vec::new(),
                });
                school.classrooms.last_mut().unwrap_or_else(|| unreachable!())
            }
        };
        let cname = field("classroom_name");
        if !cname.is_empty() && !classroom.name.is_empty() && classroom.name != cname {
            err(format!(
                "classroom \"{classroom_id}\" is named \"{}\" on an earlier line, here \"{cname}\"",
                classroom.name
            ));
            continue;
        }
        classroom.aps.push(Ap {
            id: ap_id,
            driver: driver.to_owned(),
            host,
            port,
            preset,
        });
    }
    if schools.is_empty() && errors.is_empty() {
        errors.push(format!("{source}: no access point (only a header?)"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(schools.iter().map(|s| (s.id.clone(), school_yaml(s, source))).collect())
}

fn school_yaml(s: &School, source: &str) -> String {
    let mut out = format!(
        "# Written by `borne inventory import` from {source}: one school, for `include:`.\n\
         # SSH keys and host key checks come from the main file's `ssh:` (or add a\n\
         # school-wide `ssh:` block here).\nschools:\n"
    );
    let _ = writeln!(out, "  - id: {}", s.id);
    if !s.name.is_empty() {
        let _ = writeln!(out, "    name: {}", quoted(&s.name));
    }
    if let Some(schedule) = &s.schedule {
        let _ = writeln!(out, "    schedule: {schedule}");
    }
    out.push_str("    classrooms:\n");
    for c in &s.classrooms {
        let _ = writeln!(out, "      - id: {}", c.id);
        if !c.name.is_empty() {
            let _ = writeln!(out, "        name: {}", quoted(&c.name));
        }
        out.push_str("        access_points:\n");
        for ap in &c.aps {
            let block = if ap.driver == "ssh" {
                let port = ap.port.map(|p| format!(", port: {p}")).unwrap_or_default();
                let preset = if ap.preset == "openwrt" {
                    String::new()
                } else {
                    format!(", preset: {}", ap.preset)
                };
                format!("ssh: {{ host: {}{port}{preset} }}", quoted(&ap.host))
            } else if ap.preset == "generic" {
                format!("mqtt: {{ preset: generic, command_topic: {} }}", quoted(&ap.host))
            } else {
                format!("mqtt: {{ preset: {}, topic: {} }}", ap.preset, quoted(&ap.host))
            };
            let _ = writeln!(out, "          - {{ id: {}, {block} }}", ap.id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(host_port("10.0.0.1").unwrap(), ("10.0.0.1".into(), None));
        assert_eq!(host_port("ap.local:2222").unwrap(), ("ap.local".into(), Some(2222)));
        assert_eq!(host_port("[fd00::1]:22").unwrap(), ("fd00::1".into(), Some(22)));
        assert_eq!(host_port("fd00::1").unwrap(), ("fd00::1".into(), None));
        assert!(host_port("ap:0").is_err());
        assert!(host_port("ap:99999").is_err());
        assert!(host_port("").is_err());
        assert!(host_port("-oProxyCommand=x").is_err());
    }
}
