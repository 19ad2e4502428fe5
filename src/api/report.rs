//! `GET /api/v1/report`: the usage report for the steering committee, JSON
//! or CSV. Admins and viewers see every classroom; a teacher sees their own.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;

use super::AppState;
use super::auth::Auth;
use super::csv::{self, Sep};
use super::error::ApiError;
use crate::report::table::{self, Group, Period, Row};

/// The longest range one request may cover, in days.
pub const MAX_DAYS: i64 = 400;

/// The report as JSON.
#[derive(Serialize)]
pub struct Report {
    from: NaiveDate,
    to: NaiveDate,
    group: Group,
    period: Period,
    rows: Vec<Row>,
}

struct Params {
    from: NaiveDate,
    to: NaiveDate,
    group: Group,
    period: Period,
    format: Option<String>,
    sep: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest("bad_query", message)
}

fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
    let (mut from, mut to, mut group, mut period, mut format, mut sep) = (None, None, None, None, None, None);
    let date = |k: &str, v: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad(format!("{k} is a date like 2026-09-01, not \"{v}\"")))
    };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let (k, v) = (k.as_ref(), v.as_ref());
        let dup = match k {
            "from" => from.replace(date(k, v)?).is_some(),
            "to" => to.replace(date(k, v)?).is_some(),
            "group" => group
                .replace(
                    Group::parse(v).ok_or_else(|| bad(format!("group is classroom, school or city, not \"{v}\"")))?,
                )
                .is_some(),
            "period" => period
                .replace(Period::parse(v).ok_or_else(|| bad(format!("period is day, week or month, not \"{v}\"")))?)
                .is_some(),
            "format" => format.replace(v.to_owned()).is_some(),
            "sep" => sep.replace(v.to_owned()).is_some(),
            other => {
                return Err(bad(format!(
                    "unknown parameter \"{other}\" (known: from, to, group, period, format, sep)"
                )));
            }
        };
        if dup {
            return Err(bad(format!("{k} may be given once")));
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(bad(
            "from and to are required (dates, inclusive, like 2026-09-01)".into()
        ));
    };
    if to < from {
        return Err(bad(format!("to ({to}) is before from ({from})")));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_DAYS {
        return Err(bad(format!(
            "the range covers {days} days; ask at most {MAX_DAYS} per request"
        )));
    }
    Ok(Params {
        from,
        to,
        group: group.unwrap_or(Group::Classroom),
        period: period.unwrap_or(Period::Day),
        format,
        sep,
    })
}

/// `GET /api/v1/report`.
pub async fn report(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = parse(raw.as_deref())?;
    let as_csv = csv::wants_csv(p.format.as_deref(), &headers)?;
    let sep = Sep::parse(p.sep.as_deref())?;
    let rows = state.core.report(&auth.user, p.from, p.to, p.group, p.period).await?;
    if !as_csv {
        return Ok(Json(Report {
            from: p.from,
            to: p.to,
            group: p.group,
            period: p.period,
            rows,
        })
        .into_response());
    }
    let header = table::csv_header(p.group);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut w = csv::Writer::new(sep, &header);
    for r in &rows {
        let cells = table::csv_cells(r, p.group);
        w.row(cells.iter().map(String::as_str));
    }
    Ok(w.into_response(&format!("borne-report-{}-{}.csv", p.from, p.to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_names_are_checked() {
        let p = parse(Some("from=2026-09-01&to=2026-09-30&group=school&period=week")).unwrap();
        assert_eq!((p.group, p.period), (Group::School, Period::Week));
        assert!(parse(Some("from=2026-09-01")).is_err());
        assert!(parse(Some("from=2026-09-02&to=2026-09-01")).is_err());
        assert!(parse(Some("from=2025-01-01&to=2026-09-01")).is_err());
        assert!(parse(Some("from=2026-09-01&to=2026-09-01&group=region")).is_err());
        assert!(parse(Some("from=01/09/2026&to=2026-09-01")).is_err());
        assert!(parse(Some("from=2026-09-01&to=2026-09-01&x=1")).is_err());
    }
}
