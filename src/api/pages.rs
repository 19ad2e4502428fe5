//! The teacher page (`/`), the IT dashboard (`/admin`) and their assets
//! (`/assets/{file}`): static files embedded in the binary.
//!
//! The pages hold no data and no token: the scripts read the token from the
//! address's fragment (`/#token=...`, which never reaches the server) or from
//! what the user pasted, keep it in `localStorage`, and call the JSON API
//! with `Authorization: Bearer`. So the pages themselves need no
//! authentication and can be cached.
//!
//! Every answer here carries a strict Content-Security-Policy (no inline
//! script or style anywhere) and the usual hardening headers. Files are
//! served with an `ETag` and `Cache-Control: no-cache`: browsers revalidate
//! (a 304 costs nothing), so an upgraded binary's pages are picked up at once.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::AppState;

/// The Content-Security-Policy of every page and asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An embedded file.
struct File {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

static TEACHER_PAGE: File = File {
    name: "index.html",
    content_type: HTML,
    body: include_bytes!("pages/index.html"),
};

static ADMIN_PAGE: File = File {
    name: "admin.html",
    content_type: HTML,
    body: include_bytes!("pages/admin.html"),
};

/// What `/assets/{file}` serves; anything else is a 404.
static ASSETS: &[File] = &[
    File {
        name: "style.css",
        content_type: CSS,
        body: include_bytes!("pages/style.css"),
    },
    File {
        name: "i18n.js",
        content_type: JS,
        body: include_bytes!("pages/i18n.js"),
    },
    File {
        name: "common.js",
        content_type: JS,
        body: include_bytes!("pages/common.js"),
    },
    File {
        name: "teacher.js",
        content_type: JS,
        body: include_bytes!("pages/teacher.js"),
    },
    File {
        name: "admin.js",
        content_type: JS,
        body: include_bytes!("pages/admin.js"),
    },
    File {
        name: "report.js",
        content_type: JS,
        body: include_bytes!("pages/report.js"),
    },
    File {
        name: "calendars.js",
        content_type: JS,
        body: include_bytes!("pages/calendars.js"),
    },
    File {
        name: "icon.svg",
        content_type: SVG,
        body: include_bytes!("pages/icon.svg"),
    },
];

/// ETags, computed once from the embedded bytes.
static ETAGS: LazyLock<Vec<(&'static str, HeaderValue)>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .chain([&TEACHER_PAGE, &ADMIN_PAGE])
        .map(|f| {
            let digest = Sha256::digest(f.body);
            let tag = format!("\"{}\"", hex::encode(&digest[..12]));
            // Hex digits and quotes: always a valid header value.
            (
                f.name,
                HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\"")),
            )
        })
        .collect()
});

/// Routes of the pages and their assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(teacher_page))
        .route("/admin", get(admin_page))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/assets/{file}", get(asset))
        .layer(middleware::map_response(harden))
}

async fn teacher_page(headers: HeaderMap) -> Response {
    serve(&TEACHER_PAGE, &headers)
}

async fn admin_page(headers: HeaderMap) -> Response {
    serve(&ADMIN_PAGE, &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|f| f.name == file) {
        Some(f) => serve(f, &headers),
        None => (
            StatusCode::NOT_FOUND,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            "not found\n",
        )
            .into_response(),
    }
}

/// The file, or 304 when the browser's copy is current.
fn serve(file: &File, request: &HeaderMap) -> Response {
    let etag = ETAGS
        .iter()
        .find(|(name, _)| *name == file.name)
        .map(|(_, tag)| tag.clone());
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(tag) = &etag {
        let matches = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|candidate| {
                let c = candidate.trim();
                c == "*" || c.trim_start_matches("W/").as_bytes() == tag.as_bytes()
            });
        if matches {
            return (StatusCode::NOT_MODIFIED, [cache, (header::ETAG, tag.clone())]).into_response();
        }
    }
    let mut response = (
        [
            cache,
            (header::CONTENT_TYPE, HeaderValue::from_static(file.content_type)),
        ],
        file.body,
    )
        .into_response();
    if let Some(tag) = etag {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// Security headers on every answer of these routes (404s included). Also
/// fit for any other non-API answer (`api::router` may layer it on its
/// fallback).
pub(super) async fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_an_etag_and_a_type() {
        assert_eq!(ETAGS.len(), ASSETS.len() + 2);
        for f in ASSETS {
            assert!(!f.body.is_empty(), "{} is empty", f.name);
            assert!(ETAGS.iter().any(|(n, _)| *n == f.name));
        }
    }

    #[test]
    fn pages_have_no_inline_script_or_style() {
        let handler = regex::Regex::new(r"<[^>]*\son[a-z]+\s*=").expect("regex");
        for page in [&TEACHER_PAGE, &ADMIN_PAGE] {
            let text = std::str::from_utf8(page.body).expect("utf-8");
            assert!(!text.contains("style="), "{} has a style attribute", page.name);
            assert!(!text.contains("<style"), "{} has a style element", page.name);
            for (i, _) in text.match_indices("<script") {
                let tag_end = text[i..].find('>').expect("closed tag") + i;
                assert!(text[i..tag_end].contains("src="), "{} has an inline script", page.name);
                assert!(
                    text[tag_end + 1..].starts_with("</script>"),
                    "{} has a script body",
                    page.name
                );
            }
            assert!(!handler.is_match(text), "{} has an inline event handler", page.name);
            assert!(!text.contains("javascript:"), "{} has a javascript: URL", page.name);
        }
    }
}
