//! The `borne` command: parses arguments, sets up logging, loads the
//! configuration and hands over to the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use borne::config::{self, LoadError, Loaded, Role};

#[derive(Parser)]
#[command(name = "borne", version, about = "Switches classroom Wi-Fi access points on and off")]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "BORNE_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Log format (text on a terminal by default, else JSON is advised for journald/Loki).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// HTTP address, instead of the configuration's `listen` (each
        /// instance of a cluster runs the same file; not part of its hash).
        #[arg(long, env = "BORNE_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        /// This instance's id, instead of `ha.instance_id` (default
        /// `<hostname>:<port>`; not part of the configuration's hash).
        #[arg(long, env = "BORNE_INSTANCE_ID", value_parser = parse_instance_id)]
        instance_id: Option<String>,
    },
    /// Validate the configuration and print a summary.
    Check {
        /// Treat warnings (such as a missing key file) as errors.
        #[arg(long)]
        strict: bool,
        /// Fetch the `url:` calendars first (the only time `check` uses the network).
        #[arg(long)]
        fetch: bool,
    },
    /// Show what the schedules alone decide.
    Plan {
        /// Mode and desired state of every classroom at this instant (RFC 3339).
        #[arg(long, conflicts_with_all = ["from", "days"])]
        at: Option<DateTime<chrono::FixedOffset>>,
        /// Start of the interval whose mode changes to list (RFC 3339).
        #[arg(long, requires = "days")]
        from: Option<DateTime<chrono::FixedOffset>>,
        /// Length of the interval in days.
        #[arg(long, requires = "from", value_parser = clap::value_parser!(u32).range(1..=400))]
        days: Option<u32>,
        /// Only the classrooms of this school (repeat for several).
        #[arg(long)]
        school: Vec<String>,
        /// Only this classroom (repeat for several; adds to --school).
        #[arg(long)]
        classroom: Vec<String>,
        /// Each distinct schedule once, with the classrooms that share it.
        #[arg(long)]
        group: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The usage report (on-time by cause, sessions, overrides, refusals),
    /// read from the state database; works while the daemon runs.
    Report {
        /// First day, inclusive (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day, inclusive (YYYY-MM-DD).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// One row per classroom, school or for the whole city.
        #[arg(long, value_enum, default_value_t = GroupArg::Classroom)]
        group: GroupArg,
        /// One row per day, week or month.
        #[arg(long, value_enum, default_value_t = PeriodArg::Day)]
        period: PeriodArg,
        /// CSV output (the API's columns).
        #[arg(long)]
        csv: bool,
        /// CSV separator.
        #[arg(long, value_enum, default_value_t = SepArg::Comma, requires = "csv")]
        sep: SepArg,
    },
    /// Turn an inventory spreadsheet into configuration files.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Inspect calendars.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The PostgreSQL state database (`database:` in the configuration).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply the schema migrations (a daemon also does at start).
    Migrate {
        /// Then copy this SQLite state (the state directory or its borne.db)
        /// into the database, which must hold no borne state yet; a second
        /// run with the same file copies nothing.
        #[arg(long, value_name = "PATH")]
        from_sqlite: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// CSV (school_id,school_name,classroom_id,classroom_name,ap_id,driver,address,preset[,schedule])
    /// to DIR/<school_id>.yaml, one file per school, ready for `include:`. Nothing is written
    /// when any row is wrong.
    Import {
        /// The CSV file (`,` or `;` separated, UTF-8 with or without BOM).
        file: PathBuf,
        /// Directory of the school files (created if needed; existing files are replaced).
        #[arg(long)]
        out: PathBuf,
        /// Schedule of every school (a `schedule` column wins where given).
        #[arg(long)]
        schedule: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// List the users with their scope, expiry and last use (reads the
    /// configuration and the state database; the daemon may be running).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print a fresh token and the `users:` entry holding its SHA-256; with
    /// --csv, a token per row of a staff list, written as DIR/users.yaml and
    /// one printable sheet per school (DIR/<school_id>.html).
    New {
        /// The user's name (shown in the audit log).
        #[arg(long, required_unless_present = "csv")]
        name: Option<String>,
        /// Its role.
        #[arg(long, value_enum, default_value_t = RoleArg::Teacher, conflicts_with = "csv")]
        role: RoleArg,
        /// A classroom it may switch (repeat for several).
        #[arg(long, conflicts_with = "csv")]
        classroom: Vec<String>,
        /// A school whose classrooms it may see and switch (repeat for several).
        #[arg(long, conflicts_with = "csv")]
        school: Vec<String>,
        /// Base URL of the pages for the sign-in link (default: public_url of the configuration).
        #[arg(long)]
        url: Option<String>,
        /// Staff list: CSV with the header name,role,classrooms,schools,expires
        /// (`,` or `;` separated, UTF-8 with or without BOM; ids separated by
        /// spaces; expires YYYY-MM-DD or empty). Nothing is written when any row is wrong.
        #[arg(long, requires = "out", conflicts_with = "name")]
        csv: Option<PathBuf>,
        /// Directory of users.yaml and the sheets (created if needed).
        #[arg(long, requires = "csv")]
        out: Option<PathBuf>,
        /// Replace files already in the --out directory.
        #[arg(long, requires = "csv")]
        force: bool,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Print a calendar's closed days with their source (ICS event, public holiday, local).
    Show {
        /// The calendar's name under `calendars:`.
        name: String,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day, inclusive (YYYY-MM-DD).
        #[arg(long)]
        to: chrono::NaiveDate,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GroupArg {
    Classroom,
    School,
    City,
}

#[derive(Clone, Copy, ValueEnum)]
enum PeriodArg {
    Day,
    Week,
    Month,
}

#[derive(Clone, Copy, ValueEnum)]
enum SepArg {
    Comma,
    Semicolon,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Teacher,
    Admin,
    Viewer,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            log_format,
            listen,
            instance_id,
        } => {
            init_tracing(log_format);
            run(&cli.config, listen, instance_id)
        }
        Command::Check { strict, fetch } => {
            if fetch && !fetch_calendars(&cli.config) {
                return ExitCode::FAILURE;
            }
            check(&cli.config, strict)
        }
        Command::Plan {
            at,
            from,
            days,
            school,
            classroom,
            group,
            json,
        } => {
            let Some(loaded) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            let c = &loaded.config;
            let opts = borne::cli::PlanOptions {
                schools: school,
                classrooms: classroom,
                group,
                json,
            };
            let text = match (at, from, days) {
                (_, Some(from), Some(days)) => borne::cli::plan_interval(c, from.with_timezone(&Utc), days, &opts),
                (Some(at), _, _) => borne::cli::plan_at(c, at.with_timezone(&Utc), &opts),
                _ => borne::cli::plan_at(c, Utc::now(), &opts),
            };
            match text {
                Ok(t) => print_out(&t),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Report {
            from,
            to,
            group,
            period,
            csv,
            sep,
        } => {
            use borne::report::{Group, Period};
            let Some(loaded) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            let group = match group {
                GroupArg::Classroom => Group::Classroom,
                GroupArg::School => Group::School,
                GroupArg::City => Group::City,
            };
            let period = match period {
                PeriodArg::Day => Period::Day,
                PeriodArg::Week => Period::Week,
                PeriodArg::Month => Period::Month,
            };
            let sep = csv.then_some(match sep {
                SepArg::Comma => borne::api::csv::Sep::Comma,
                SepArg::Semicolon => borne::api::csv::Sep::Semicolon,
            });
            match borne::cli::report_rows(&loaded.config, from, to, group, period, Utc::now()) {
                Ok(rows) => {
                    print!("{}", borne::cli::render_report(&rows, group, sep));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Inventory {
            command: InventoryCommand::Import { file, out, schedule },
        } => inventory_import(&file, &out, schedule.as_deref()),
        Command::Db {
            command: DbCommand::Migrate { from_sqlite },
        } => {
            let Some(loaded) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            match borne::cli::db_migrate(&loaded.config, from_sqlite.as_deref()) {
                Ok(text) => print_out(&text),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Calendar {
            command: CalendarCommand::Show { name, from, to },
        } => {
            let Some(loaded) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            match borne::cli::calendar_show(&loaded.config, &name, from, to) {
                Ok(text) => print_out(&text),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token {
            command: TokenCommand::List { json },
        } => {
            let Some(loaded) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            let c = &loaded.config;
            let uses = match &c.database {
                Some(db) => borne::store::postgres::PostgresStore::connect(db, "borne-token-list")
                    .and_then(|s| borne::store::Store::token_uses(&s)),
                None => borne::store::sqlite::token_uses_offline(&c.state_dir),
            };
            match uses {
                Ok(uses) => print_out(&borne::cli::token_list(
                    c,
                    &uses.into_iter().collect(),
                    Utc::now(),
                    json,
                )),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token {
            command:
                TokenCommand::New {
                    csv: Some(csv),
                    out: Some(out),
                    url,
                    force,
                    ..
                },
        } => token_csv(&cli.config, &csv, &out, url, force),
        Command::Token {
            command:
                TokenCommand::New {
                    name,
                    role,
                    classroom,
                    school,
                    url,
                    ..
                },
        } => {
            let role = match role {
                RoleArg::Teacher => Role::Teacher,
                RoleArg::Admin => Role::Admin,
                RoleArg::Viewer => Role::Viewer,
            };
            let name = name.unwrap_or_default();
            if let Some(bad) = classroom.iter().chain(&school).find(|id| !config::is_valid_id(id)) {
                eprintln!("error: \"{bad}\" is not an id (1 to 64 characters among a-z, 0-9 and -)");
                return ExitCode::FAILURE;
            }
            if role == Role::Teacher && classroom.is_empty() && school.is_empty() {
                eprintln!("error: a teacher needs --classroom (or --school) to switch");
                return ExitCode::FAILURE;
            }
            let Some(loaded) = load_for_tokens(&cli.config) else {
                return ExitCode::FAILURE;
            };
            if let Err(errors) = borne::cli::check_scope(&loaded.config, &classroom, &school) {
                for e in &errors {
                    eprintln!("error: {e} ({})", cli.config.display());
                }
                return ExitCode::FAILURE;
            }
            let base = url.unwrap_or_else(|| loaded.config.public_url.clone());
            match borne::cli::new_token() {
                Ok(token) => {
                    let qr = std::io::stdout().is_terminal();
                    print_out(&borne::cli::token_entry(
                        &token, &name, role, &classroom, &school, &base, qr,
                    ))
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The configuration `token new` checks scopes against; `None` after
/// saying why it could not be read (a token for a classroom that does not
/// exist would switch nothing, so there is no going on without it).
fn load_for_tokens(path: &std::path::Path) -> Option<Loaded> {
    let loaded = load(path);
    if loaded.is_none() {
        eprintln!(
            "error: cannot read the configuration {} to check the classrooms and schools: pass --config FILE (or set BORNE_CONFIG)",
            path.display()
        );
    }
    loaded
}

/// `borne token new --csv FILE --out DIR`: checks every row, then writes
/// DIR/users.yaml and the sheets; the tokens appear only in the sheets.
fn token_csv(
    config_path: &std::path::Path,
    csv: &std::path::Path,
    out: &std::path::Path,
    url: Option<String>,
    force: bool,
) -> ExitCode {
    use borne::cli::token_csv;
    let Some(loaded) = load_for_tokens(config_path) else {
        return ExitCode::FAILURE;
    };
    let c = &loaded.config;
    let base = match borne::cli::token_csv::base_url(url.as_deref(), &c.public_url) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match std::fs::read(csv) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                eprintln!(
                    "error: {} is not UTF-8 text (save the spreadsheet as CSV UTF-8)",
                    csv.display()
                );
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", csv.display());
            return ExitCode::FAILURE;
        }
    };
    // Names already in the configuration clash with the new file, except
    // when it replaces the users.yaml they may come from (checked by
    // `borne check` once it is included).
    let existing: Vec<&str> = if out.join("users.yaml").exists() {
        Vec::new()
    } else {
        c.users.iter().map(|u| u.name.as_str()).collect()
    };
    let today = Utc::now().with_timezone(&c.timezone).date_naive();
    let people = match token_csv::read(&text, &csv.display().to_string(), c, &existing, today) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s), nothing written", csv.display(), errors.len());
            return ExitCode::FAILURE;
        }
    };
    let written = token_csv::onboard(&people, c, &base, today, borne::cli::new_token)
        .and_then(|o| token_csv::write(out, &o.files, force).map(|paths| (o, paths)));
    match written {
        Ok((o, paths)) => {
            let mut text = format!("{} user(s): {}\n", people.len(), paths[0].display());
            for ((_, cards), path) in o.cards.iter().zip(&paths[1..]) {
                text.push_str(&format!("  {} ({cards} card(s))\n", path.display()));
            }
            text.push_str(&format!(
                "The tokens are only in the sheets (mode 0600): print them, hand them out, then delete them.\n\
                 Add `{}` to include: in the configuration, run `borne check`, then reload borne.\n",
                paths[0].display()
            ));
            print_out(&text)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to standard output. A reader that went away (`borne plan
/// | head -1`) ends the command quietly with success, as `yes | head`
/// does; `print!` would panic.
fn print_out(text: &str) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn inventory_import(file: &std::path::Path, out: &std::path::Path, schedule: Option<&str>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let schools = match borne::cli::inventory::import(&text, &file.display().to_string(), schedule) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s), nothing written", file.display(), errors.len());
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = write_files(out, &schools) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    print_out(&format!(
        "{} school file(s) written to {} (add `include: [{}/*.yaml]` to the main file)\n",
        schools.len(),
        out.display(),
        out.display()
    ))
}

/// Writes `DIR/<name>.yaml` files: each through a temporary file renamed
/// into place, so a reader never sees half a file.
fn write_files(dir: &std::path::Path, files: &[(String, String)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(format!("{name}.yaml"));
        let tmp = dir.join(format!(".{name}.yaml.tmp"));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Loads the configuration, printing every error; `None` when it is invalid.
fn load(path: &std::path::Path) -> Option<Loaded> {
    match config::load(path) {
        Ok(loaded) => Some(loaded),
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("error: {e}");
            None
        }
        Err(LoadError::Invalid { source_name, errors }) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{source_name}: {} error(s)", errors.len());
            None
        }
    }
}

/// `borne check --fetch`: fetches every `url:` calendar into state_dir;
/// false when the configuration cannot be loaded or the runtime not built.
fn fetch_calendars(path: &std::path::Path) -> bool {
    let Some(loaded) = load(path) else {
        return false;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("error: cannot start the async runtime");
        return false;
    };
    let limits = borne::calendars::fetch::Limits::default();
    runtime.block_on(async {
        for c in loaded.config.calendars.values() {
            if let config::calendars::CalendarSource::Url { url, .. } = &c.source {
                let config = &loaded.config;
                match borne::calendars::fetch::refresh(
                    &config.state_dir,
                    &c.name,
                    url,
                    config.timezone,
                    limits,
                    Utc::now(),
                )
                .await
                {
                    Ok(days) => eprintln!(
                        "fetched calendars.{}: {} closure(s) from {url}",
                        c.name,
                        days.closed.len()
                    ),
                    Err(e) => eprintln!("warning: calendars.{}.url: {e} (the last good copy is kept)", c.name),
                }
            }
        }
    });
    true
}

fn check(path: &std::path::Path, strict: bool) -> ExitCode {
    let Some(mut loaded) = load(path) else {
        return ExitCode::FAILURE;
    };
    let coverage = loaded.config.coverage_warnings(chrono::Local::now().date_naive());
    loaded.warnings.extend(coverage);
    eprint!("{}", borne::cli::warnings(&loaded));
    if strict && !loaded.warnings.is_empty() {
        eprintln!(
            "{}: {} warning(s), refused with --strict",
            path.display(),
            loaded.warnings.len()
        );
        return ExitCode::FAILURE;
    }
    print_out(&format!("{}\n", borne::cli::summary(&loaded.config)))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn run(path: &std::path::Path, listen: Option<std::net::SocketAddr>, instance_id: Option<String>) -> ExitCode {
    let Some(mut loaded) = load(path) else {
        return ExitCode::FAILURE;
    };
    // What differs between the instances of a cluster; the configuration's
    // hash was computed without either.
    if let Some(listen) = listen {
        loaded.config.listen = listen;
    }
    if let Some(id) = instance_id {
        loaded.config.ha.instance_id = Some(id);
    }
    borne::daemon::main(path.to_owned(), loaded)
}

fn parse_instance_id(s: &str) -> Result<String, String> {
    config::ha::check_instance_id(s).map(|()| s.to_owned())
}
