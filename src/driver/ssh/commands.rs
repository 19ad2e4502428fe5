//! What borne runs on an access point and how it reads the answers.
//!
//! Everything here is pure: command strings are built from the
//! configuration, and command output is turned into an [`Observation`] or a
//! [`DriverError`]. Nothing panics on what an AP prints: garbage, partial or
//! huge output becomes a [`DriverError::Protocol`] saying which command
//! printed it.
//!
//! Error messages never quote `ubus call network.wireless status` output:
//! its `config` blocks carry the Wi-Fi passphrase (`"key"`), and error
//! messages reach the API's `last_error`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::config::CustomCommands;
use crate::domain::{Observation, ObservedWifi, Wifi};
use crate::driver::DriverError;

/// Most bytes read from a command's stdout. An OpenWrt status with four
/// radios and a hundred stations is about 30 KiB; anything near this limit
/// is not an answer to our question.
pub(super) const MAX_STDOUT: usize = 1 << 20;

/// Most bytes of stderr kept (the rest is read and dropped).
pub(super) const MAX_STDERR: usize = 64 << 10;

/// Characters of stderr kept in a [`DriverError::CommandFailed`].
const STDERR_IN_ERROR: usize = 500;

/// Most radios borne accepts on one AP: real hardware has one to four.
const MAX_RADIOS: usize = 64;

/// Lists the `wifi-device` sections of the saved configuration.
pub(super) const OPENWRT_DISCOVER: &str = "uci -q show wireless";

/// Marks the start of one interface's `iw station dump` in the output of
/// [`OPENWRT_OBSERVE`]. No line of JSON starts with `@`.
const IFACE_MARKER: &str = "@@borne iface ";

/// Reads the running state of every radio and the stations of every
/// interface netifd brought up, in one exec.
///
/// `ubus` prints one key per line, so `sed` can pick the `ifname`s out of
/// the status; which of those interfaces count (radios considered, mode
/// `ap`) is decided in Rust by [`parse_openwrt_observe`]. A failing `ubus`
/// fails the command with its exit status; a failing `iw` (interface gone
/// between the two) only leaves that interface without stations.
pub(super) const OPENWRT_OBSERVE: &str = concat!(
    "s=$(ubus call network.wireless status) || exit; ",
    "printf '%s\\n' \"$s\"; ",
    "for i in $(printf '%s\\n' \"$s\" | sed -n 's/^[[:space:]]*\"ifname\":[[:space:]]*\"\\([^\"]*\\)\".*$/\\1/p'); do ",
    "printf '@@borne iface %s\\n' \"$i\"; ",
    "iw dev \"$i\" station dump 2>/dev/null; ",
    "done; ",
    "exit 0"
);

/// Quotes one shell word.
///
/// # Errors
/// [`DriverError::Setup`] when `word` holds a NUL byte, which no shell
/// word can carry.
pub(super) fn quote(word: &str) -> Result<String, DriverError> {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .map_err(|_| DriverError::Setup(format!("cannot pass {word:?} to a shell: it contains a NUL byte")))
}

/// The one command that switches every radio in `radios` and makes it stick
/// across a reboot: set `disabled` in the saved configuration, commit it,
/// then `wifi reload` so that netifd applies it to the running system.
///
/// `wifi reload` rather than `wifi up`/`wifi down`: on current OpenWrt it
/// is `ubus call network reload`, which makes netifd compare the committed
/// configuration with the running one and only touch the radios that
/// changed; `wifi up` first takes every radio down, disconnecting clients
/// of radios that borne does not manage.
///
/// # Errors
/// [`DriverError::Setup`] when `radios` is empty or a name cannot be quoted.
pub(super) fn openwrt_switch(radios: &[String], wifi: Wifi) -> Result<String, DriverError> {
    if radios.is_empty() {
        return Err(DriverError::Setup("no radio to switch".to_owned()));
    }
    let disabled = match wifi {
        Wifi::On => "0",
        Wifi::Off => "1",
    };
    let mut parts = Vec::with_capacity(radios.len() + 2);
    for radio in radios {
        // Only the name is quoted (when it needs it): the command stays as
        // readable as the one an admin would type.
        parts.push(format!("uci set wireless.{}.disabled={disabled}", quote(radio)?));
    }
    parts.push("uci commit wireless".to_owned());
    parts.push("wifi reload".to_owned());
    Ok(parts.join(" && "))
}

/// Whether `name` is a uci section name borne can pass around: the
/// characters config validation allows for `radios:`.
fn is_section_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `wifi-device` sections listed by [`OPENWRT_DISCOVER`], in order.
///
/// # Errors
/// [`DriverError::Protocol`] for output that is not `uci show` output or
/// lists no radio; [`DriverError::Setup`] for an unnamed radio section,
/// which netifd and borne cannot address reliably.
pub(super) fn parse_uci_radios(stdout: &str) -> Result<Vec<String>, DriverError> {
    if stdout.len() > MAX_STDOUT {
        return Err(DriverError::Protocol(format!(
            "`{OPENWRT_DISCOVER}` printed more than {MAX_STDOUT} bytes"
        )));
    }
    let mut radios = Vec::new();
    for line in stdout.lines() {
        let line = line.trim_end_matches('\r');
        let Some((path, value)) = line.split_once('=') else {
            continue;
        };
        if value != "wifi-device" {
            continue;
        }
        let Some(section) = path.strip_prefix("wireless.") else {
            continue;
        };
        if section.starts_with('@') {
            return Err(DriverError::Setup(format!(
                "`{OPENWRT_DISCOVER}` lists an unnamed radio section ({path}); name it on the AP \
                 (uci rename {path}=radio0 && uci commit wireless) or list the radios in borne's \
                 configuration (radios:)"
            )));
        }
        if !is_section_name(section) {
            return Err(DriverError::Protocol(format!(
                "`{OPENWRT_DISCOVER}` printed a radio section name borne does not accept: {:?}",
                excerpt(section, 80)
            )));
        }
        if !radios.iter().any(|r| r == section) {
            radios.push(section.to_owned());
        }
        if radios.len() > MAX_RADIOS {
            return Err(DriverError::Protocol(format!(
                "`{OPENWRT_DISCOVER}` lists more than {MAX_RADIOS} radios"
            )));
        }
    }
    if radios.is_empty() {
        return Err(DriverError::Protocol(format!(
            "`{OPENWRT_DISCOVER}` lists no wifi-device section: is this an OpenWrt AP with a radio?"
        )));
    }
    Ok(radios)
}

/// What [`OPENWRT_OBSERVE`] printed, for the radios `radios` (all radios
/// of the status when empty): the state of the running radios and the
/// stations associated to their access-point interfaces.
///
/// A radio is on when netifd reports it `up`, off when it does not, and
/// unknown while netifd is still setting it up or tearing it down
/// (`pending`). Radios that disagree make the AP [`ObservedWifi::Unknown`].
/// Clients are counted on interfaces of radios that are up, in mode `ap`
/// (or without a mode), so that a mesh or client uplink is not counted.
///
/// # Errors
/// [`DriverError::Protocol`] when the status is not the JSON object
/// `ubus` prints or a radio lacks a boolean `up`; [`DriverError::Setup`]
/// when a configured radio is not in it.
pub(super) fn parse_openwrt_observe(stdout: &str, radios: &[String]) -> Result<Observation, DriverError> {
    const WHAT: &str = "`ubus call network.wireless status`";
    if stdout.len() > MAX_STDOUT {
        return Err(DriverError::Protocol(format!(
            "{WHAT} printed more than {MAX_STDOUT} bytes"
        )));
    }
    let (json, stations) = match stdout.find(&format!("\n{IFACE_MARKER}")) {
        Some(i) => (&stdout[..i], &stdout[i + 1..]),
        None if stdout.starts_with(IFACE_MARKER) => ("", stdout),
        None => (stdout, ""),
    };
    let json = json.trim();
    if json.is_empty() {
        return Err(DriverError::Protocol(format!("{WHAT} printed nothing")));
    }
    // The serde_json message gives a line and column, never the text.
    let status: Map<String, Value> = serde_json::from_str(json)
        .map_err(|e| DriverError::Protocol(format!("{WHAT} did not print a JSON object: {e}")))?;
    if status.is_empty() {
        return Err(DriverError::Protocol(format!(
            "{WHAT} lists no radio: is the wireless configured on this AP?"
        )));
    }

    let considered: Vec<(&str, &Value)> = if radios.is_empty() {
        status.iter().map(|(name, v)| (name.as_str(), v)).collect()
    } else {
        let mut out = Vec::with_capacity(radios.len());
        for radio in radios {
            match status.get(radio) {
                Some(v) => out.push((radio.as_str(), v)),
                None => {
                    let found: Vec<&str> = status.keys().map(|k| excerpt(k, 32)).collect();
                    return Err(DriverError::Setup(format!(
                        "radio \"{radio}\" is not in {WHAT} (radios there: {}); fix radios: in borne's configuration",
                        found.join(", ")
                    )));
                }
            }
        }
        out
    };

    let counts = station_counts(stations);
    let mut state: Option<ObservedWifi> = None;
    let mut clients: u32 = 0;
    for (name, radio) in considered {
        let up = radio.get("up").and_then(Value::as_bool).ok_or_else(|| {
            DriverError::Protocol(format!(
                "radio \"{}\" in {WHAT} has no boolean \"up\"",
                excerpt(name, 32)
            ))
        })?;
        let pending = radio.get("pending").and_then(Value::as_bool).unwrap_or(false);
        let this = if pending {
            ObservedWifi::Unknown
        } else if up {
            ObservedWifi::On
        } else {
            ObservedWifi::Off
        };
        state = Some(match state {
            None => this,
            Some(prev) if prev == this => prev,
            Some(_) => ObservedWifi::Unknown,
        });
        if up {
            clients = clients.saturating_add(radio_clients(radio, &counts));
        }
    }
    // `considered` is never empty: `status` is not, and `radios` entries were all found.
    let wifi = state.unwrap_or(ObservedWifi::Unknown);
    Ok(Observation::read(wifi, Some(clients)))
}

/// Stations per interface in the `@@borne iface` sections of the output.
fn station_counts(text: &str) -> HashMap<&str, u32> {
    let mut counts = HashMap::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if let Some(ifname) = line.strip_prefix(IFACE_MARKER) {
            let ifname = ifname.trim_end_matches('\r');
            counts.entry(ifname).or_insert(0);
            current = Some(ifname);
        } else if line.starts_with("Station ")
            && let Some(ifname) = current
        {
            let n: &mut u32 = counts.entry(ifname).or_insert(0);
            *n = n.saturating_add(1);
        }
    }
    counts
}

/// Stations on the access-point interfaces of one radio's status.
fn radio_clients(radio: &Value, counts: &HashMap<&str, u32>) -> u32 {
    let Some(interfaces) = radio.get("interfaces").and_then(Value::as_array) else {
        return 0;
    };
    interfaces
        .iter()
        .filter(|iface| {
            let mode = iface.get("config").and_then(|c| c.get("mode")).and_then(Value::as_str);
            mode.is_none_or(|m| m == "ap")
        })
        .filter_map(|iface| iface.get("ifname").and_then(Value::as_str))
        .map(|ifname| counts.get(ifname).copied().unwrap_or(0))
        .fold(0u32, u32::saturating_add)
}

/// The state told by a custom `status_command`, from its exit status and
/// stdout (without its final newline; a regex needs `(?m)` for `^`/`$` to
/// match at each line).
///
/// Each side is decided on its own, as the configuration documents it:
/// "on" when `status_on` matches (without it: exit status 0), "off" when
/// `status_off` matches (without it: a non-zero exit status). Without
/// either regex exactly one side holds; with regexes, output that matches
/// both or neither is an error rather than a guess.
///
/// # Errors
/// [`DriverError::Protocol`] when the output says both or neither.
pub(super) fn custom_state(
    cmds: &CustomCommands,
    status: i32,
    stdout: &str,
    stderr: &str,
) -> Result<ObservedWifi, DriverError> {
    // Without its final newline, so that `^on$` matches what `echo on` prints.
    let text = stdout.trim_end_matches(['\n', '\r']);
    let on = match &cmds.status_on {
        Some(re) => re.is_match(text),
        None => status == 0,
    };
    let off = match &cmds.status_off {
        Some(re) => re.is_match(text),
        None => status != 0,
    };
    let describe = |side: &str, re: &Option<regex::Regex>, exit: &str| match re {
        Some(re) => format!("{side} /{}/", re.as_str()),
        None => format!("{side} (exit status {exit})"),
    };
    match (on, off) {
        (true, false) => Ok(ObservedWifi::On),
        (false, true) => Ok(ObservedWifi::Off),
        (both, _) => Err(DriverError::Protocol(format!(
            "status_command output (exit {status}) matches {} {}: stdout {:?}, stderr {:?}",
            if both { "both" } else { "neither" },
            [
                describe("status_on", &cmds.status_on, "0"),
                describe("status_off", &cmds.status_off, "not 0")
            ]
            .join(if both { " and " } else { " nor " }),
            excerpt(stdout.trim(), 100),
            excerpt(stderr.trim(), 100),
        ))),
    }
}

/// The number a custom `clients_command` printed.
///
/// # Errors
/// [`DriverError::Protocol`] when it printed anything but one integer.
pub(super) fn parse_clients(stdout: &str) -> Result<u32, DriverError> {
    let text = stdout.trim();
    text.parse::<u32>().map_err(|_| {
        DriverError::Protocol(format!(
            "clients_command printed {:?}, not a number of clients",
            excerpt(text, 100)
        ))
    })
}

/// Stderr as it goes into [`DriverError::CommandFailed`]: trimmed, cut to
/// about 500 characters.
pub(super) fn stderr_for_error(stderr: &str) -> String {
    let trimmed = stderr.trim();
    let cut = excerpt(trimmed, STDERR_IN_ERROR);
    if cut.len() < trimmed.len() {
        format!("{cut}…")
    } else {
        cut.to_owned()
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn excerpt(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radios(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn custom(on: Option<&str>, off: Option<&str>) -> CustomCommands {
        CustomCommands {
            on_command: "on".into(),
            off_command: "off".into(),
            status_command: "status".into(),
            status_on: on.map(|r| regex::Regex::new(r).expect("test regex")),
            status_off: off.map(|r| regex::Regex::new(r).expect("test regex")),
            clients_command: None,
            lease_command: None,
        }
    }

    /// A status as `ubus` prints it on OpenWrt 23.05, trimmed: radio0 up
    /// with an AP and a mesh interface, radio1 disabled.
    const STATUS_MIXED: &str = r#"{
	"radio0": {
		"up": true,
		"pending": false,
		"autostart": true,
		"disabled": false,
		"retry_setup_failed": false,
		"config": { "channel": "1", "htmode": "HE20", "disabled": false },
		"interfaces": [
			{
				"section": "default_radio0",
				"ifname": "phy0-ap0",
				"config": { "mode": "ap", "ssid": "Classe", "encryption": "psk2", "key": "secret-wifi-passphrase", "network": [ "lan" ] },
				"vlans": [ ],
				"stations": [ ]
			},
			{
				"section": "mesh0",
				"ifname": "phy0-mesh0",
				"config": { "mode": "mesh" }
			}
		]
	},
	"radio1": {
		"up": false,
		"pending": false,
		"autostart": true,
		"disabled": true,
		"retry_setup_failed": false,
		"config": { "channel": "36", "disabled": true },
		"interfaces": [ { "section": "default_radio1", "config": { "mode": "ap", "ssid": "Classe" } } ]
	}
}"#;

    fn stations(ifname: &str, n: usize) -> String {
        let mut out = format!("{IFACE_MARKER}{ifname}\n");
        for i in 0..n {
            out.push_str(&format!(
                "Station 02:00:00:00:00:{i:02x} (on {ifname})\n\tinactive time:\t40 ms\n\trx bytes:\t1000\n\tsignal:  \t-50 dBm\n"
            ));
        }
        out
    }

    #[test]
    fn quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(quote("radio_5g-0").unwrap(), "radio_5g-0");
        assert_eq!(quote("a b").unwrap(), "'a b'");
        assert_eq!(quote("x';reboot;'").unwrap(), r#""x';reboot;'""#);
        assert_eq!(quote("$(reboot)").unwrap(), "'$(reboot)'");
        assert!(matches!(quote("a\0b"), Err(DriverError::Setup(_))));
    }

    #[test]
    fn switch_off_sets_commits_and_reloads_in_one_command() {
        let cmd = openwrt_switch(&radios(&["radio0", "radio1"]), Wifi::Off).unwrap();
        assert_eq!(
            cmd,
            "uci set wireless.radio0.disabled=1 && uci set wireless.radio1.disabled=1 \
             && uci commit wireless && wifi reload"
        );
    }

    #[test]
    fn switch_on_clears_disabled() {
        let cmd = openwrt_switch(&radios(&["radio0"]), Wifi::On).unwrap();
        assert_eq!(
            cmd,
            "uci set wireless.radio0.disabled=0 && uci commit wireless && wifi reload"
        );
    }

    #[test]
    fn switch_quotes_hostile_radio_names() {
        let cmd = openwrt_switch(&radios(&["r0;reboot"]), Wifi::Off).unwrap();
        assert_eq!(
            cmd,
            "uci set wireless.'r0;reboot'.disabled=1 && uci commit wireless && wifi reload"
        );
        assert!(openwrt_switch(&[], Wifi::Off).is_err());
    }

    #[test]
    fn discovery_keeps_only_wifi_devices_in_order() {
        let out = "wireless.radio0=wifi-device\nwireless.radio0.type='mac80211'\n\
                   wireless.radio0.disabled='0'\nwireless.default_radio0=wifi-iface\n\
                   wireless.default_radio0.device='radio0'\nwireless.radio1=wifi-device\n\
                   wireless.radio_5g-x=wifi-device\r\nwireless.radio0=wifi-device\n";
        assert_eq!(
            parse_uci_radios(out).unwrap(),
            radios(&["radio0", "radio1", "radio_5g-x"])
        );
    }

    #[test]
    fn discovery_rejects_empty_garbage_and_unnamed_sections() {
        assert!(matches!(parse_uci_radios(""), Err(DriverError::Protocol(_))));
        assert!(matches!(
            parse_uci_radios("sh: uci: not found\n"),
            Err(DriverError::Protocol(_))
        ));
        assert!(matches!(
            parse_uci_radios("wireless.@wifi-device[0]=wifi-device\n"),
            Err(DriverError::Setup(m)) if m.contains("uci rename")
        ));
        assert!(matches!(
            parse_uci_radios("wireless.bad$(x)=wifi-device\n"),
            Err(DriverError::Protocol(_))
        ));
        let many: String = (0..100).map(|i| format!("wireless.r{i}=wifi-device\n")).collect();
        assert!(matches!(parse_uci_radios(&many), Err(DriverError::Protocol(_))));
    }

    #[test]
    fn observe_all_radios_on() {
        let out = format!(
            "{}\n{}{}",
            r#"{"radio0": {"up": true, "pending": false, "interfaces": [{"ifname": "wlan0", "config": {"mode": "ap"}}]},
                "radio1": {"up": true, "interfaces": [{"ifname": "wlan1"}]}}"#,
            stations("wlan0", 3),
            stations("wlan1", 2)
        );
        assert_eq!(
            parse_openwrt_observe(&out, &[]).unwrap(),
            Observation::read(ObservedWifi::On, Some(5))
        );
    }

    #[test]
    fn observe_all_radios_off_counts_no_client() {
        let out = r#"{"radio0": {"up": false, "disabled": true, "interfaces": [{"section": "x", "config": {"mode": "ap"}}]}}"#;
        assert_eq!(
            parse_openwrt_observe(out, &[]).unwrap(),
            Observation::read(ObservedWifi::Off, Some(0))
        );
    }

    #[test]
    fn observe_mixed_radios_is_unknown_unless_only_one_is_considered() {
        let out = format!(
            "{STATUS_MIXED}\n{}{}",
            stations("phy0-ap0", 4),
            stations("phy0-mesh0", 1)
        );
        let all = parse_openwrt_observe(&out, &[]).unwrap();
        assert_eq!(
            all,
            Observation::read(ObservedWifi::Unknown, Some(4)),
            "mesh stations are not clients"
        );
        let r0 = parse_openwrt_observe(&out, &radios(&["radio0"])).unwrap();
        assert_eq!(r0, Observation::read(ObservedWifi::On, Some(4)));
        let r1 = parse_openwrt_observe(&out, &radios(&["radio1"])).unwrap();
        assert_eq!(r1, Observation::read(ObservedWifi::Off, Some(0)));
    }

    #[test]
    fn observe_pending_radio_is_unknown() {
        let out = r#"{"radio0": {"up": false, "pending": true}}"#;
        assert_eq!(parse_openwrt_observe(out, &[]).unwrap().wifi, ObservedWifi::Unknown);
    }

    #[test]
    fn observe_missing_configured_radio_is_a_setup_error() {
        let err = parse_openwrt_observe(STATUS_MIXED, &radios(&["radio2"])).unwrap_err();
        assert!(
            matches!(&err, DriverError::Setup(m) if m.contains("radio0, radio1")),
            "{err}"
        );
    }

    #[test]
    fn observe_garbage_is_a_protocol_error_without_the_output() {
        for out in [
            "",
            "   \n",
            "Command failed: Not found",
            "{\"radio0\": {\"up\": tr",
            "[1, 2]",
            "{}",
            "{\"radio0\": {\"up\": \"yes\"}}",
            "{\"radio0\": 3}",
            "@@borne iface wlan0\nStation x\n",
        ] {
            match parse_openwrt_observe(out, &[]) {
                Err(DriverError::Protocol(m)) => assert!(m.contains("network.wireless"), "{m}"),
                other => panic!("{out:?} gave {other:?}"),
            }
        }
        let err = parse_openwrt_observe("{\"radio0\": {\"key\": \"secret-wifi\", \"up\": 1}}", &[]).unwrap_err();
        assert!(!err.to_string().contains("secret-wifi"), "{err}");
    }

    #[test]
    fn observe_huge_or_deep_output_is_an_error_not_a_panic() {
        let huge = format!(
            "{{\"radio0\": {{\"up\": true, \"x\": \"{}\"}}}}",
            "a".repeat(MAX_STDOUT)
        );
        assert!(matches!(
            parse_openwrt_observe(&huge, &[]),
            Err(DriverError::Protocol(_))
        ));
        let deep = format!("{{\"radio0\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse_openwrt_observe(&deep, &[]),
            Err(DriverError::Protocol(_))
        ));
        let many_stations = format!(
            "{{\"r\": {{\"up\": true, \"interfaces\": [{{\"ifname\": \"w\"}}]}}}}\n{}",
            stations("w", 5000)
        );
        assert_eq!(parse_openwrt_observe(&many_stations, &[]).unwrap().clients, Some(5000));
    }

    #[test]
    fn stations_of_unknown_or_down_interfaces_are_not_counted() {
        let out = format!(
            "{}\n{}{}",
            r#"{"radio0": {"up": true, "interfaces": [{"ifname": "wlan0"}]}, "radio1": {"up": false, "interfaces": [{"ifname": "wlan1"}]}}"#,
            stations("wlan1", 7),
            stations("other", 2)
        );
        let obs = parse_openwrt_observe(&out, &radios(&["radio0"])).unwrap();
        assert_eq!(obs, Observation::read(ObservedWifi::On, Some(0)));
    }

    #[test]
    fn observe_command_is_one_exec_reading_status_and_stations() {
        assert!(OPENWRT_OBSERVE.starts_with("s=$(ubus call network.wireless status) || exit; "));
        assert!(OPENWRT_OBSERVE.contains("iw dev \"$i\" station dump"));
        assert!(OPENWRT_OBSERVE.contains(IFACE_MARKER.trim_end()));
    }

    #[test]
    fn custom_without_regexes_uses_the_exit_status() {
        let c = custom(None, None);
        assert_eq!(custom_state(&c, 0, "", "").unwrap(), ObservedWifi::On);
        assert_eq!(custom_state(&c, 1, "", "").unwrap(), ObservedWifi::Off);
        assert_eq!(
            custom_state(&c, 127, "", "sh: wl: not found").unwrap(),
            ObservedWifi::Off
        );
    }

    #[test]
    fn custom_with_regexes_reads_stdout() {
        let c = custom(Some("^radio: up"), Some("^radio: down"));
        assert_eq!(custom_state(&c, 0, "radio: up\n", "").unwrap(), ObservedWifi::On);
        assert_eq!(custom_state(&c, 0, "radio: down\n", "").unwrap(), ObservedWifi::Off);
        // With both regexes the exit status does not matter (grep exits 1 on no match).
        assert_eq!(custom_state(&c, 1, "radio: down\n", "").unwrap(), ObservedWifi::Off);
        let err = custom_state(&c, 127, "", "sh: wl: not found").unwrap_err();
        assert!(
            matches!(&err, DriverError::Protocol(m) if m.contains("neither") && m.contains("wl: not found")),
            "{err}"
        );
        let both = custom(Some("up"), Some("u"));
        assert!(matches!(custom_state(&both, 0, "up", ""), Err(DriverError::Protocol(m)) if m.contains("both")));
    }

    #[test]
    fn custom_with_one_regex_uses_the_exit_status_for_the_other_side() {
        let c = custom(Some("^1$"), None);
        assert_eq!(custom_state(&c, 0, "1\n", "").unwrap(), ObservedWifi::On);
        assert_eq!(custom_state(&c, 1, "0\n", "").unwrap(), ObservedWifi::Off);
        assert!(
            custom_state(&c, 0, "0\n", "").is_err(),
            "exit 0 and no match says neither"
        );
    }

    #[test]
    fn clients_must_be_one_integer() {
        assert_eq!(parse_clients(" 12\n").unwrap(), 12);
        assert_eq!(parse_clients("0").unwrap(), 0);
        for bad in ["", "-1", "twelve", "1 2", "99999999999"] {
            assert!(matches!(parse_clients(bad), Err(DriverError::Protocol(_))), "{bad:?}");
        }
    }

    #[test]
    fn stderr_is_trimmed_and_capped_on_a_char_boundary() {
        assert_eq!(stderr_for_error("  uci: Invalid argument\n"), "uci: Invalid argument");
        let long = "é".repeat(400);
        let cut = stderr_for_error(&long);
        assert!(cut.len() <= STDERR_IN_ERROR + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
