//! The printed sign-in sheet of one school (`borne token new --csv`): an A4
//! HTML page, one card per teacher with its name, classrooms, sign-in link
//! and the link's QR code as inline SVG. It loads nothing from anywhere
//! (no script, font, image or style sheet outside the file), so it prints
//! the same offline, and French comes first for the people who hand it out.

use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::config::Role;

/// One card: who, what it opens, and the secret link.
#[derive(Debug, Clone)]
pub struct Card {
    /// The user's name.
    pub name: String,
    /// Its role (the link opens the teacher page or the dashboard).
    pub role: Role,
    /// Its classrooms: id and name.
    pub classrooms: Vec<(String, String)>,
    /// Its whole schools: id and name.
    pub schools: Vec<(String, String)>,
    /// The sign-in link, token included.
    pub link: String,
    /// Last day the token is accepted.
    pub expires: Option<NaiveDate>,
}

/// Text escaped for HTML content and double-quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The link's QR code as an inline `<svg>` element (one path of dark
/// modules on a white square, quiet zone included). Error correction M:
/// a card that is folded or scratched still scans.
///
/// # Errors
/// The link is too long for a QR code.
pub fn qr_svg(link: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("cannot make a QR code of a {}-byte link: {e}", link.len()))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .build();
    // The renderer writes a standalone file; inline SVG in HTML takes the
    // element alone.
    let element = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
    Ok(element.replacen("<svg ", "<svg class=\"qr\" aria-hidden=\"true\" ", 1))
}

const STYLE: &str = r#"
@page { size: A4; margin: 10mm; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #000; background: #fff; font-size: 9pt; }
header { margin: 0 0 3mm; }
header h1 { font-size: 13pt; margin: 0 0 1mm; }
header p { margin: 0; }
.en { color: #444; font-style: italic; }
.sheet { display: grid; grid-template-columns: 1fr 1fr; }
.card { border: 0.3mm dashed #777; padding: 3mm; min-height: 62mm; display: grid; grid-template-columns: 36mm 1fr; grid-template-rows: 1fr auto; column-gap: 3mm; break-inside: avoid; page-break-inside: avoid; }
.card svg.qr { width: 36mm; height: 36mm; }
.card h2 { font-size: 11pt; margin: 0 0 1mm; overflow-wrap: anywhere; }
.card .what { margin: 0 0 0.8mm; }
.card .link { grid-column: 1 / span 2; font-family: "DejaVu Sans Mono", monospace; font-size: 7pt; word-break: break-all; margin: 1.5mm 0 0; }
.card .how { font-size: 7.5pt; margin: 1mm 0 0; }
@media screen { body { max-width: 190mm; margin: 5mm auto; } }
"#;

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Teacher => "Enseignant·e <span class=\"en\">/ Teacher</span>",
        Role::Admin => "Direction : tableau de bord <span class=\"en\">/ Dashboard</span>",
        Role::Viewer => "Consultation <span class=\"en\">/ Read-only</span>",
    }
}

fn card_html(out: &mut String, card: &Card) -> Result<(), String> {
    let qr = qr_svg(&card.link)?;
    let _ = writeln!(out, "<article class=\"card\">\n{qr}\n<div>");
    let _ = writeln!(out, "<h2>{}</h2>", escape(&card.name));
    let _ = writeln!(out, "<p class=\"what\">{}</p>", role_text(card.role));
    if !card.classrooms.is_empty() {
        let label = if card.classrooms.len() == 1 {
            "Classe <span class=\"en\">/ Classroom</span>"
        } else {
            "Classes <span class=\"en\">/ Classrooms</span>"
        };
        let list: Vec<String> = card
            .classrooms
            .iter()
            .map(|(id, name)| format!("<span class=\"classroom\">{} ({})</span>", escape(name), escape(id)))
            .collect();
        let _ = writeln!(out, "<p class=\"what\">{label} : {}</p>", list.join(", "));
    }
    if !card.schools.is_empty() {
        let list: Vec<String> = card
            .schools
            .iter()
            .map(|(id, name)| format!("<span class=\"school\">{} ({})</span>", escape(name), escape(id)))
            .collect();
        let _ = writeln!(
            out,
            "<p class=\"what\">Toute l’école <span class=\"en\">/ Whole school</span> : {}</p>",
            list.join(", ")
        );
    }
    if let Some(d) = card.expires {
        let _ = writeln!(
            out,
            "<p class=\"what\">Valable jusqu’au {} inclus <span class=\"en\">/ Valid through {d}</span></p>",
            d.format("%d/%m/%Y")
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"how\">Scannez le code ou ouvrez le lien. Lien personnel : ne le partagez pas.<br><span class=\"en\">Scan the code or open the link. Personal link: do not share it.</span></p>"
    );
    let _ = writeln!(out, "</div>\n<p class=\"link\">{}</p>\n</article>", escape(&card.link));
    Ok(())
}

/// The HTML sheet of school `school_name` (`school_id`) with its cards;
/// `generated`: the day printed in the header.
///
/// # Errors
/// A link is too long for a QR code.
pub fn render_sheet(
    school_name: &str,
    school_id: &str,
    cards: &[Card],
    generated: NaiveDate,
) -> Result<String, String> {
    let title = format!("{} — liens de connexion au Wi-Fi", escape(school_name));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>"
    );
    let _ = writeln!(
        out,
        "<header>\n<h1>{} ({}) — Wi-Fi des classes : liens de connexion</h1>\n\
         <p>Confidentiel : découpez les cartes et remettez chacune à la personne nommée. {} carte(s), imprimé le {}.</p>\n\
         <p class=\"en\">Classroom Wi-Fi sign-in links. Confidential: cut out the cards and hand each to the person named. {} card(s), printed on {generated}.</p>\n</header>\n<main class=\"sheet\">",
        escape(school_name),
        escape(school_id),
        cards.len(),
        generated.format("%d/%m/%Y"),
        cards.len(),
    );
    for card in cards {
        card_html(&mut out, card)?;
    }
    let _ = writeln!(out, "</main>\n</body>\n</html>");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_the_sheet() {
        let card = Card {
            name: "<b>O'Neil & \"Co\"</b>".into(),
            role: Role::Teacher,
            classrooms: vec![("c1".into(), "CM1 <A>".into())],
            schools: vec![],
            link: "https://x.example/#token=abc".into(),
            expires: None,
        };
        let html = render_sheet(
            "École <Voltaire>",
            "s1",
            &[card],
            NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
        )
        .unwrap();
        assert!(
            html.contains("&lt;b&gt;O&#39;Neil &amp; &quot;Co&quot;&lt;/b&gt;"),
            "{html}"
        );
        assert!(html.contains("CM1 &lt;A&gt;"));
        assert!(html.contains("École &lt;Voltaire&gt;"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn the_qr_element_is_inline_svg_without_an_xml_declaration() {
        let svg = qr_svg("https://x.example/#token=abc").unwrap();
        assert!(svg.starts_with("<svg class=\"qr\""), "{svg}");
        assert!(!svg.contains("<?xml"));
        assert!(svg.ends_with("</svg>"));
    }
}
