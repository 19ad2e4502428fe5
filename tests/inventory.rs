//! `borne inventory import`: a CSV inventory becomes one YAML file per
//! school that the loader accepts through `include:`; a CSV with mistakes
//! is refused whole, every mistake with its line.

mod common;

use std::process::Command;

use borne::config::{self, DriverConfig};

const GOOD: &str = "\u{feff}school_id;school_name;classroom_id;classroom_name;ap_id;driver;address;preset\n\
ecole-a;École A;a-cp;CP (Mme Durand);a-cp-1;ssh;127.0.0.1;\n\
ecole-a;École A;a-cp;CP (Mme Durand);a-cp-2;ssh;127.0.0.1:2222;openwrt\n\
ecole-a;École A;a-ce1;CE1;a-ce1-plug;mqtt;plug-a-ce1;shelly\n\
ecole-b;\"École B; annexe\";b-cm2;CM2;b-cm2-1;mqtt;plug-b-cm2;\n";

fn main_config(dir: &std::path::Path) -> std::path::PathBuf {
    let main = dir.join("borne.yaml");
    std::fs::write(
        &main,
        "ssh: { key_file: /etc/borne/id_ed25519, known_hosts: /etc/borne/known_hosts }\n\
         mqtt: { host: 127.0.0.1 }\n\
         schedules:\n  school-hours: { rules: [] }\n  lab: { rules: [] }\n\
         include: [schools/*.yaml]\n",
    )
    .unwrap();
    main
}

fn import(csv: &str, extra: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.csv");
    std::fs::write(&file, csv).unwrap();
    let out = Command::new(common::borne_bin())
        .args(["inventory", "import"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("schools"))
        .args(extra)
        .output()
        .unwrap();
    (dir, out)
}

/// `;`-separated with a BOM and a quoted `;`: one file per school, which
/// the loader takes through `include:` with every field in place.
#[test]
fn a_good_csv_becomes_school_files_the_loader_accepts() {
    let (dir, out) = import(GOOD, &["--schedule", "school-hours"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("schools"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["ecole-a.yaml", "ecole-b.yaml"]);
    let loaded = config::load(&main_config(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    let c = &loaded.config;
    assert_eq!(c.school("ecole-b").unwrap().name, "École B; annexe");
    assert_eq!(c.classroom("a-cp").unwrap().name, "CP (Mme Durand)");
    assert_eq!(c.classroom("a-cp").unwrap().access_points.len(), 2);
    assert_eq!(c.classroom("b-cm2").unwrap().schedule_name, "school-hours");
    match &c.access_point("a-cp-2").unwrap().driver {
        DriverConfig::Ssh(s) => assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 2222)),
        other => panic!("{other:?}"),
    }
    match &c.access_point("a-ce1-plug").unwrap().driver {
        DriverConfig::Mqtt(m) => assert_eq!(m.command_topic, "shellies/plug-a-ce1/relay/0/command"),
        other => panic!("{other:?}"),
    }
    match &c.access_point("b-cm2-1").unwrap().driver {
        DriverConfig::Mqtt(m) => assert_eq!(m.command_topic, "cmnd/plug-b-cm2/POWER", "tasmota by default"),
        other => panic!("{other:?}"),
    }

    // `,` separated, no BOM, a schedule column that wins over --schedule.
    let csv = "school_id,school_name,classroom_id,classroom_name,ap_id,driver,address,preset,schedule\n\
               ecole-c,École C,c-1,Salle 1,c-1-ap,ssh,127.0.0.1,,lab\n";
    let (dir, out) = import(csv, &["--schedule", "school-hours"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let c = config::load(&main_config(dir.path()))
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    assert_eq!(c.classroom("c-1").unwrap().schedule_name, "lab");
}

/// Every mistake is listed with its line; nothing is written.
#[test]
fn a_csv_with_errors_lists_them_all_and_writes_nothing() {
    let csv = "school_id,school_name,classroom_id,classroom_name,ap_id,driver,address,preset\n\
               ecole-a,École A,a-cp,CP,a-cp-1,ssh,127.0.0.1,\n\
               ecole-a,École A,a-cp,CP,a-cp-1,ssh,127.0.0.2,\n\
               Ecole A,École A,a-x,X,a-x-1,ssh,127.0.0.1,\n\
               ecole-a,École A,a-ce1,CE1,a-ce1-1,telnet,127.0.0.1,\n\
               ecole-a,École A,a-ce2,CE2,a-ce2-1,ssh,127.0.0.1:99999,\n\
               ecole-a,École A,a-cm1,CM1,a-cm1-1,mqtt,cmnd/x/POWER,tasmota\n\
               ecole-a,Autre nom,a-cm2,CM2,a-cm2-1,ssh,127.0.0.1,\n\
               ecole-b,École B,a-cp,CP,b-cp-1,ssh,127.0.0.1,\n\
               ecole-a,École A,a-ps,PS,a-ps-1,ssh,127.0.0.1\n\
               ecole-a,École A,a-ms,MS,a-ms-1,mqtt,plug,zigbee\n";
    let (dir, out) = import(csv, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = dir.path().join("inventory.csv").display().to_string();
    for (line, what) in [
        (3, "access point \"a-cp-1\" is also on line 2"),
        (4, "school_id \"Ecole A\" is not a school id"),
        (5, "driver \"telnet\": use ssh or mqtt"),
        (6, "\"99999\" is not a port"),
        (7, "is not a device topic"),
        (
            8,
            "school \"ecole-a\" is named \"École A\" on line 2, here \"Autre nom\"",
        ),
        (
            9,
            "classroom \"a-cp\" is in school \"ecole-a\" on line 2, here in \"ecole-b\"",
        ),
        (10, "7 fields, the header has 8"),
        (11, "preset \"zigbee\" for mqtt"),
    ] {
        let expect = format!("{file}:{line}: ");
        assert!(
            stderr.lines().any(|l| l.contains(&expect) && l.contains(what)),
            "missing line {line} {what:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("9 error(s), nothing written"), "{stderr}");
    assert!(!dir.path().join("schools").exists(), "nothing may be written");

    let (_, out) = import("school,name\nx,y\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":1: the header must be"));
}
