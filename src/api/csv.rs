//! CSV answers (the audit log and the usage report): UTF-8 with a header
//! row, `,` by default or `;` (`sep=semicolon`, what a French spreadsheet
//! expects), quoted only where needed.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The field separator of a CSV answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sep {
    /// `,` (RFC 4180).
    Comma,
    /// `;` (French spreadsheet defaults, where `,` is the decimal mark).
    Semicolon,
}

impl Sep {
    /// `sep=comma|semicolon` (absent: comma).
    ///
    /// # Errors
    /// Any other value.
    pub fn parse(v: Option<&str>) -> Result<Sep, ApiError> {
        match v {
            None | Some("comma") => Ok(Sep::Comma),
            Some("semicolon") => Ok(Sep::Semicolon),
            Some(other) => Err(ApiError::BadRequest(
                "bad_query",
                format!("sep is comma or semicolon, not \"{other}\""),
            )),
        }
    }

    fn char(self) -> char {
        match self {
            Sep::Comma => ',',
            Sep::Semicolon => ';',
        }
    }
}

/// Whether the client asked for CSV: `format=csv`, or `Accept: text/csv`
/// (before any JSON in the list).
///
/// # Errors
/// `format` other than `csv` or `json`.
pub fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some(other) => {
            return Err(ApiError::BadRequest(
                "bad_query",
                format!("format is json or csv, not \"{other}\""),
            ));
        }
        None => {}
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "text/csv" => return Ok(true),
            "application/json" => return Ok(false),
            _ => {}
        }
    }
    Ok(false)
}

/// Builds CSV text.
pub struct Writer {
    sep: char,
    out: String,
}

impl Writer {
    /// A document starting with `header`.
    pub fn new(sep: Sep, header: &[&str]) -> Writer {
        let mut w = Writer {
            sep: sep.char(),
            out: String::new(),
        };
        w.row(header.iter().copied());
        w
    }

    /// Appends a row.
    pub fn row<'a>(&mut self, fields: impl IntoIterator<Item = &'a str>) {
        for (i, f) in fields.into_iter().enumerate() {
            if i > 0 {
                self.out.push(self.sep);
            }
            self.field(f);
        }
        self.out.push_str("\r\n");
    }

    fn field(&mut self, f: &str) {
        // A cell starting with = + - @ is a formula to a spreadsheet: a
        // reason typed by a user must stay text (CSV injection).
        let formula = f.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let quote = formula || f.contains([self.sep, '"', '\n', '\r']);
        if quote {
            self.out.push('"');
            if formula {
                self.out.push('\'');
            }
            self.out.push_str(&f.replace('"', "\"\""));
            self.out.push('"');
        } else {
            self.out.push_str(f);
        }
    }

    /// The document as text.
    pub fn text(self) -> String {
        self.out
    }

    /// The document as an HTTP answer, offered as a download named `filename`.
    pub fn into_response(self, filename: &str) -> Response {
        let mut r = self.out.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_where_needed_and_defuses_formulas() {
        let mut w = Writer::new(Sep::Semicolon, &["a", "b"]);
        w.row(["x;y", "plain"]);
        w.row(["say \"hi\"", "=1+1"]);
        w.row(["line\nbreak", "-3"]);
        assert_eq!(
            w.out,
            "a;b\r\n\"x;y\";plain\r\n\"say \"\"hi\"\"\";\"'=1+1\"\r\n\"line\nbreak\";\"'-3\"\r\n"
        );
    }

    #[test]
    fn accept_header_and_format() {
        let mut h = HeaderMap::new();
        assert!(!wants_csv(None, &h).unwrap());
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv;q=0.9, */*"));
        assert!(wants_csv(None, &h).unwrap());
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json, text/csv"));
        assert!(!wants_csv(None, &h).unwrap());
        assert!(wants_csv(Some("csv"), &h).unwrap());
        assert!(wants_csv(Some("xml"), &h).is_err());
        assert_eq!(Sep::parse(Some("semicolon")).unwrap(), Sep::Semicolon);
        assert!(Sep::parse(Some("tab")).is_err());
    }
}
