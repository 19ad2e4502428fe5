//! `borne token new` against the configuration (issue 15 §3): a single
//! token refuses unknown classrooms and schools; `--csv` turns a staff list
//! into `users.yaml` and one printed sheet per school, whose QR codes are
//! decoded here back to their links (the SVG rasterised, then read by a QR
//! decoder), and whose HTML is parsed for errors.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use borne::config;
use scraper::{Html, Selector};

const CONFIG: &str = r#"
timezone: Europe/Paris
public_url: https://wifi.ville.example/
schedules:
  open: { default_mode: available, rules: [] }
schools:
  - id: jules-ferry
    name: École Jules Ferry
    schedule: open
    classrooms:
      - { id: jf-cm1a, name: CM1 A, access_points: [ { id: jf-cm1a-ap, sim: {} } ] }
      - { id: jf-ce2b, name: CE2 B, access_points: [ { id: jf-ce2b-ap, sim: {} } ] }
  - id: voltaire
    name: École Voltaire
    schedule: open
    classrooms:
      - { id: vo-cp, name: CP, access_points: [ { id: vo-cp-ap, sim: {} } ] }
users:
  - { name: dsi, role: admin, token_sha256: 0000000000000000000000000000000000000000000000000000000000000000 }
"#;

/// A temporary directory holding `borne.yaml` (CONFIG, or `yaml`).
fn setup(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("borne.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

fn borne(config: &Path, args: &[&str]) -> Output {
    Command::new(common::borne_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("BORNE_CONFIG")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The dark modules of an inline QR `<svg>` drawn at `scale` pixels per
/// unit (white background, pixel centres inside the path's subpaths are
/// black, even-odd), as a greyscale image for the decoder. Handles the
/// path commands M, H, V, h, v, L, l and Z, absolute and relative.
fn rasterise(view_box: &str, d: &str, scale: usize) -> (usize, usize, Vec<u8>) {
    let vb: Vec<f64> = view_box.split_whitespace().map(|v| v.parse().unwrap()).collect();
    let (w, h) = ((vb[2] * scale as f64) as usize, (vb[3] * scale as f64) as usize);
    // Tokenise: command letters and numbers.
    let mut tokens = Vec::new();
    let mut num = String::new();
    for c in d.chars() {
        if c.is_ascii_digit() || c == '.' || (c == '-' && num.is_empty()) {
            num.push(c);
        } else {
            if !num.is_empty() {
                tokens.push(num.clone());
                num.clear();
            }
            if c == '-' {
                num.push(c);
            } else if c.is_ascii_alphabetic() {
                tokens.push(c.to_string());
            }
        }
    }
    if !num.is_empty() {
        tokens.push(num);
    }
    let mut edges: Vec<((f64, f64), (f64, f64))> = Vec::new();
    let (mut x, mut y, mut start) = (0.0, 0.0, (0.0, 0.0));
    let mut i = 0;
    let mut cmd = 'M';
    while i < tokens.len() {
        if tokens[i].chars().all(|c| c.is_ascii_alphabetic()) {
            cmd = tokens[i].chars().next().unwrap();
            i += 1;
            if cmd == 'Z' || cmd == 'z' {
                edges.push(((x, y), start));
                (x, y) = start;
                continue;
            }
        }
        let n = |k: usize| -> f64 { tokens[i + k].parse().unwrap() };
        let from = (x, y);
        match cmd {
            'M' | 'm' => {
                if start != from {
                    // An open subpath is closed for filling.
                    edges.push((from, start));
                }
                let (nx, ny) = if cmd == 'M' { (n(0), n(1)) } else { (x + n(0), y + n(1)) };
                (x, y) = (nx, ny);
                start = (x, y);
                i += 2;
                cmd = if cmd == 'M' { 'L' } else { 'l' };
                continue;
            }
            'L' => (x, y) = (n(0), n(1)),
            'l' => (x, y) = (x + n(0), y + n(1)),
            'H' => x = n(0),
            'h' => x += n(0),
            'V' => y = n(0),
            'v' => y += n(0),
            other => panic!("path command {other} not expected in a QR code"),
        }
        i += if matches!(cmd, 'L' | 'l') { 2 } else { 1 };
        edges.push((from, (x, y)));
    }
    if start != (x, y) {
        edges.push(((x, y), start));
    }
    let mut img = vec![255u8; w * h];
    for py in 0..h {
        let cy = (py as f64 + 0.5) / scale as f64 + vb[1];
        let mut xs: Vec<f64> = edges
            .iter()
            .filter(|((_, y0), (_, y1))| (*y0 <= cy) != (*y1 <= cy))
            .map(|((x0, y0), (x1, y1))| x0 + (cy - y0) * (x1 - x0) / (y1 - y0))
            .collect();
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks(2) {
            let [a, b] = pair else { continue };
            for px in 0..w {
                let cx = (px as f64 + 0.5) / scale as f64 + vb[0];
                if *a <= cx && cx < *b {
                    img[py * w + px] = 0;
                }
            }
        }
    }
    (w, h, img)
}

/// The text a QR `<svg>` element encodes.
fn decode_qr(svg: scraper::ElementRef<'_>) -> String {
    let rect = svg
        .select(&Selector::parse("rect").unwrap())
        .next()
        .expect("background");
    assert_eq!(rect.value().attr("fill"), Some("#fff"), "white background");
    let path = svg.select(&Selector::parse("path").unwrap()).next().expect("modules");
    assert_eq!(path.value().attr("fill"), Some("#000"), "black modules");
    let (w, h, img) = rasterise(svg.value().attr("viewBox").unwrap(), path.value().attr("d").unwrap(), 4);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img[y * w + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the svg");
    grids[0].decode().expect("the QR code decodes").1
}

/// What a parsed sheet holds: each card's name, printed link and decoded QR.
struct Sheet {
    cards: Vec<(String, String, String)>,
    html: String,
}

fn read_sheet(path: &Path) -> Sheet {
    let html = std::fs::read_to_string(path).unwrap();
    let doc = Html::parse_document(&html);
    assert!(
        doc.errors.is_empty(),
        "{}: HTML parse errors {:?}",
        path.display(),
        doc.errors
    );
    let sel = |s: &str| Selector::parse(s).unwrap();
    assert_eq!(doc.root_element().value().attr("lang"), Some("fr"), "French first");
    assert!(doc.select(&sel("head > title")).next().is_some());
    assert!(doc.select(&sel("head > meta[charset=utf-8]")).next().is_some());
    // Nothing loaded from anywhere: no script, no src, no href, no url() or @import.
    assert!(
        doc.select(&sel("script, link, img, iframe, object, [src], [href]"))
            .next()
            .is_none(),
        "{html}"
    );
    let css: String = doc.select(&sel("style")).map(|s| s.inner_html()).collect();
    assert!(!css.contains("url(") && !css.contains("@import"), "{css}");
    assert!(css.contains("size: A4"), "{css}");
    let cards = doc
        .select(&sel("article.card"))
        .map(|card| {
            let svgs: Vec<_> = card.select(&sel("svg.qr")).collect();
            assert_eq!(svgs.len(), 1, "one QR code per card");
            let name = card.select(&sel("h2")).next().unwrap().text().collect::<String>();
            let link = card.select(&sel(".link")).next().unwrap().text().collect::<String>();
            (name, link, decode_qr(svgs[0]))
        })
        .collect();
    Sheet { cards, html }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A staff list (BOM, `;`, accents) gives users.yaml with hashes only,
/// ready for `include:`, and one valid HTML sheet per school with one card
/// per person whose QR code decodes to its printed sign-in link; the
/// tokens are nowhere else (not on stdout, not in users.yaml).
#[test]
fn csv_onboarding_writes_users_and_one_sheet_per_school_whose_qr_codes_decode_to_the_links() {
    let (dir, cfg) = setup(CONFIG);
    let csv = dir.path().join("enseignants.csv");
    std::fs::write(
        &csv,
        "\u{feff}name;role;classrooms;schools;expires\n\
         Mme Lefèvre;teacher;jf-cm1a jf-ce2b;;2099-07-04\n\
         M. N'Diaye;teacher;vo-cp;;\n\
         direction-jf;admin;;jules-ferry;\n\
         Mme Dupont;teacher;;voltaire;\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = borne(
        &cfg,
        &[
            "token",
            "new",
            "--csv",
            csv.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout.contains("jules-ferry.html (2 card(s))"), "{stdout}");
    assert!(stdout.contains("voltaire.html (2 card(s))"), "{stdout}");
    assert!(
        !stdout.contains("#token=") && !stderr(&out).contains("#token="),
        "{stdout}"
    );

    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["jules-ferry.html", "users.yaml", "voltaire.html"]);
    for f in &files {
        assert_eq!(mode(&out_dir.join(f)), 0o600, "{f}");
    }
    let users_yaml = std::fs::read_to_string(out_dir.join("users.yaml")).unwrap();
    assert!(
        !users_yaml.contains("token:") && !users_yaml.contains("#token="),
        "{users_yaml}"
    );

    // Ready for include: the main file with the new users loads.
    let main = dir.path().join("main.yaml");
    std::fs::write(&main, format!("include: [out/users.yaml]\n{CONFIG}")).unwrap();
    let loaded = config::load(&main).unwrap_or_else(|e| panic!("{e}"));
    let users: BTreeMap<&str, &config::User> = loaded.config.users.iter().map(|u| (u.name.as_str(), u)).collect();
    assert_eq!(users.len(), 5);
    let lefevre = users["Mme Lefèvre"];
    assert_eq!(lefevre.expires, chrono::NaiveDate::from_ymd_opt(2099, 7, 4));
    assert_eq!(
        lefevre.classrooms.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        ["jf-cm1a", "jf-ce2b"]
    );
    assert_eq!(users["direction-jf"].role, config::Role::Admin);
    assert_eq!(
        users["Mme Dupont"]
            .schools
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["voltaire"]
    );

    let jf = read_sheet(&out_dir.join("jules-ferry.html"));
    let vo = read_sheet(&out_dir.join("voltaire.html"));
    assert!(jf.html.contains("École Jules Ferry") && jf.html.contains("CE2 B (jf-ce2b)"));
    assert!(jf.html.contains("Valable jusqu’au 04/07/2099"), "{}", jf.html);
    let names = |s: &Sheet| s.cards.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&jf), ["Mme Lefèvre", "direction-jf"]);
    assert_eq!(names(&vo), ["M. N'Diaye", "Mme Dupont"]);
    let mut tokens = Vec::new();
    for (name, link, decoded) in jf.cards.iter().chain(&vo.cards) {
        assert_eq!(decoded, link, "{name}: the QR code is the printed link");
        let page = if name == "direction-jf" { "/admin" } else { "/" };
        let token = link
            .strip_prefix(&format!("https://wifi.ville.example{page}#token="))
            .unwrap_or_else(|| panic!("{name}: {link}"));
        assert!(token.len() >= 43, "256 bits");
        let hash = users[name.as_str()].token_sha256.expect("hash");
        assert_eq!(hex::encode(hash), borne::cli::token_sha256(token), "{name}");
        tokens.push(token.to_owned());
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 4, "each person its own token");
}

/// Every mistake of a staff list is reported with its line, in one run,
/// and nothing is written (not even the output directory).
#[test]
fn a_bad_csv_lists_every_error_with_its_line_and_writes_nothing() {
    let (dir, cfg) = setup(CONFIG);
    let csv = dir.path().join("teachers.csv");
    std::fs::write(
        &csv,
        "name,role,classrooms,schools,expires\n\
         Mme Martin,teacher,jf-cm1a,,\n\
         M. Petit,teacher,pa-zz,,\n\
         Mme Martin,teacher,jf-ce2b,,\n\
         M. Leroy,prof,vo-cp,,\n\
         Mme Roux,teacher,,ecole-inconnue,\n\
         M. Blanc,teacher,vo-cp,,04/07/2027\n\
         M. Noir,teacher,,,\n\
         Mme Vert,teacher,vo-cp,,2020-07-04\n\
         dsi,teacher,vo-cp,,\n\
         M. Gris,teacher,vo-cp\n\
         Mme Bleu,teacher,Salle_1,,\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = borne(
        &cfg,
        &[
            "token",
            "new",
            "--csv",
            csv.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let f = csv.display();
    for expected in [
        format!("{f}:3: classroom \"pa-zz\" is not in the configuration"),
        format!("{f}:4: name \"Mme Martin\" is also on line 2"),
        format!("{f}:5: role \"prof\": use teacher, admin or viewer"),
        format!("{f}:6: school \"ecole-inconnue\" is not in the configuration"),
        format!("{f}:7: expires \"04/07/2027\" is not a date YYYY-MM-DD"),
        format!("{f}:8: a teacher needs classrooms or schools to switch"),
        format!("{f}:9: expires 2020-07-04 is already past"),
        format!("{f}:10: name \"dsi\" is already a user of the configuration"),
        format!("{f}:11: 3 fields, the header has 5"),
        format!("{f}:12: classroom \"Salle_1\" is not an id"),
        format!("{f}: 10 error(s), nothing written"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!out_dir.exists(), "nothing written");

    std::fs::write(&csv, "nom,role,classes\nMme Martin,teacher,jf-cm1a\n").unwrap();
    let out = borne(
        &cfg,
        &[
            "token",
            "new",
            "--csv",
            csv.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(":1: the header must be name,role,classrooms,schools,expires"),
        "{}",
        stderr(&out)
    );
    assert!(!out_dir.exists(), "nothing written");
}

/// Existing sheets are not replaced without --force (the old tokens would
/// be lost), and --force replaces them all with new tokens.
#[test]
fn existing_files_are_kept_unless_force() {
    let (dir, cfg) = setup(CONFIG);
    let csv = dir.path().join("teachers.csv");
    std::fs::write(
        &csv,
        "name,role,classrooms,schools,expires\nMme Martin,teacher,jf-cm1a,,\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "token",
        "new",
        "--csv",
        csv.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    assert_eq!(borne(&cfg, &args).status.code(), Some(0));
    let first = std::fs::read_to_string(out_dir.join("users.yaml")).unwrap();
    let out = borne(&cfg, &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already exist(s); nothing written. Pass --force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(out_dir.join("users.yaml")).unwrap(), first);
    let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
    let out = borne(&cfg, &forced);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = std::fs::read_to_string(out_dir.join("users.yaml")).unwrap();
    assert_ne!(first, second, "new tokens");
    assert_eq!(mode(&out_dir.join("jules-ferry.html")), 0o600);
    let leftovers = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0);
}

/// The sheets' links need an address teachers can reach: the loopback
/// default of public_url is refused with what to do, --url is taken.
#[test]
fn sheets_need_a_reachable_base_url() {
    let (dir, cfg) = setup(&CONFIG.replace("public_url: https://wifi.ville.example/\n", ""));
    let csv = dir.path().join("teachers.csv");
    std::fs::write(
        &csv,
        "name,role,classrooms,schools,expires\nMme Martin,teacher,jf-cm1a,,\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "token",
        "new",
        "--csv",
        csv.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = borne(&cfg, &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("http://127.0.0.1:8080, which a teacher's phone cannot reach: set public_url"),
        "{}",
        stderr(&out)
    );
    assert!(!out_dir.exists());
    let with_url: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--url", "https://borne.ecoles.example"])
        .collect();
    let out = borne(&cfg, &with_url);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sheet = read_sheet(&out_dir.join("jules-ferry.html"));
    assert!(sheet.cards[0].2.starts_with("https://borne.ecoles.example/#token="));
}

/// `token new` for one user refuses a classroom or school the configuration
/// does not have (the issue's `--classroom pa-zz`), and says so clearly
/// when it cannot read the configuration.
#[test]
fn token_new_refuses_unknown_classrooms_and_schools() {
    let (dir, cfg) = setup(CONFIG);
    let out = borne(&cfg, &["token", "new", "--name", "t", "--classroom", "pa-zz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("classroom \"pa-zz\" is not in the configuration"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "no token printed");
    let out = borne(
        &cfg,
        &[
            "token", "new", "--name", "d", "--role", "admin", "--school", "nowhere", "--school", "voltaire",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("school \"nowhere\" is not in the configuration"), "{err}");
    assert!(!err.contains("\"voltaire\""), "{err}");

    let out = borne(&cfg, &["token", "new", "--name", "t", "--classroom", "vo-cp"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("https://wifi.ville.example/#token="));

    let missing = dir.path().join("nope.yaml");
    let out = borne(&missing, &["token", "new", "--name", "t", "--classroom", "vo-cp"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot read the configuration {} to check the classrooms and schools: pass --config FILE",
            missing.display()
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
