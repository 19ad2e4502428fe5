//! Hostile input to the configuration parser and the cron rules: random
//! text never panics, and any configuration it accepts can be evaluated.

use borne::config;
use borne::schedule::CronExpr;
use proptest::prelude::*;

fn cron_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        "[0-9]{1,3}",
        "[0-9]{1,2}-[0-9]{1,2}",
        "\\*/[0-9]{1,3}",
        "[0-9]{1,2}(,[0-9]{1,2}){1,3}",
        prop::sample::select(vec![
            "Mon",
            "tue",
            "SUN",
            "Mon-Fri",
            "Fri-Sun",
            "Jan",
            "dec",
            "L",
            "?",
            "#",
            "-1",
            "99999999999"
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random cron expressions are parsed or refused with a message; the
    /// ones accepted can be evaluated around DST changes without panicking.
    #[test]
    fn random_cron_rules_never_panic(fields in prop::collection::vec(cron_field(), 0..8)) {
        let expr = fields.join(" ");
        if let Ok(c) = CronExpr::parse(&expr) {
            let yaml = format!("schedules:\n  s:\n    default_mode: available\n    rules:\n      - {{ at: {:?}, mode: locked }}\nschools:\n  - id: x\n    schedule: s\n    classrooms:\n      - {{ id: c, access_points: [ {{ id: a, sim: {{}} }} ] }}\n", c.source());
            let loaded = config::from_str(&yaml, "t.yaml", None);
            prop_assert!(loaded.is_ok(), "{expr}: {:?}", loaded.err());
            let cfg = loaded.unwrap().config;
            let classroom = &cfg.classrooms[0];
            for t in ["2026-03-29T00:30:00Z", "2026-10-25T00:30:00Z", "2026-12-31T23:59:59Z"] {
                let t: chrono::DateTime<chrono::Utc> = t.parse().unwrap();
                let _ = classroom.schedule.mode_at(classroom.timezone, t);
                let _ = classroom.schedule.next_change(classroom.timezone, t);
            }
        }
    }

    /// Random text as a configuration: an error list or a configuration, never a panic.
    #[test]
    fn random_text_configurations_never_panic(text in "\\PC{0,400}") {
        let _ = config::from_str(&text, "t.yaml", None);
    }

    /// Structurally plausible YAML with random values: never a panic.
    #[test]
    fn random_values_in_a_valid_shape_never_panic(
        tz in "[A-Za-z/_+-]{0,20}",
        minutes in any::<i64>(),
        at in "[ -~]{0,30}",
        mode in "[a-z]{0,10}",
        id in "[ -~]{0,70}",
        closed in "[0-9.-]{0,25}",
        qos in any::<i32>(),
    ) {
        let yaml = format!(r#"
timezone: {tz:?}
teacher_session: {{ default_minutes: {minutes}, max_minutes: {minutes} }}
calendars: {{ z: {{ closed: [{closed:?}] }} }}
schedules:
  s: {{ calendars: [z], rules: [ {{ at: {at:?}, mode: {mode:?} }} ] }}
mqtt: {{ keep_alive_seconds: {minutes} }}
schools:
  - id: {id:?}
    schedule: s
    classrooms:
      - id: {id:?}
        access_points:
          - {{ id: a1, mqtt: {{ preset: tasmota, topic: {id:?}, qos: {qos} }} }}
"#);
        let _ = config::from_str(&yaml, "t.yaml", None);
    }
}
