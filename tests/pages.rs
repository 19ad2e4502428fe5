//! The teacher page, the IT dashboard and their assets, served by the real
//! daemon on a loopback port (no browser): status codes, content types,
//! caching, the security headers on every answer, and the rules the strict
//! Content-Security-Policy depends on (no inline script, style or handler).
//! The browser suite in `tests/browser/` covers what the pages do.

use std::collections::BTreeSet;

use borne::daemon::{Options, Running, start};
use borne_test_support::fixtures::{ALWAYS_AVAILABLE, HEAD};
use regex::Regex;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use tokio_util::sync::CancellationToken;

fn config() -> String {
    [
        HEAD,
        ALWAYS_AVAILABLE,
        r#"schools:
  - id: s1
    name: École des tests
    schedule: open
    classrooms:
      - id: c1
        name: CM1
        access_points: [ { id: c1-ap1, sim: {} } ]
users:
  - { name: admin, role: admin, token: pages-admin-token-1 }
"#,
    ]
    .concat()
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGES: [&str; 2] = ["/", "/admin"];

const ASSETS: [(&str, &str); 7] = [
    ("/assets/style.css", "text/css; charset=utf-8"),
    ("/assets/i18n.js", "text/javascript; charset=utf-8"),
    ("/assets/common.js", "text/javascript; charset=utf-8"),
    ("/assets/teacher.js", "text/javascript; charset=utf-8"),
    ("/assets/admin.js", "text/javascript; charset=utf-8"),
    ("/assets/calendars.js", "text/javascript; charset=utf-8"),
    ("/assets/icon.svg", "image/svg+xml"),
];

struct Server {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = config().replace("STATE_DIR", &dir.path().join("state").display().to_string());
        let loaded = borne::config::from_str(&text, "pages-test.yaml", Some(dir.path())).expect("valid config");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let shutdown = CancellationToken::new();
        let options = Options {
            listener: Some(listener),
            ..Options::default()
        };
        let running = start(loaded.config, options, shutdown.clone())
            .await
            .expect("daemon starts");
        Server {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::builder().no_proxy().build().expect("client"),
            shutdown,
            running: Some(running),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    async fn text(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.text().await.expect("body")
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            r.wait().await.expect("clean shutdown");
        }
    }
}

fn assert_hardened(path: &str, h: &HeaderMap) {
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(get("content-security-policy"), CSP, "CSP of {path}");
    assert_eq!(get("x-content-type-options"), "nosniff", "nosniff on {path}");
    assert_eq!(get("referrer-policy"), "no-referrer", "Referrer-Policy of {path}");
    assert_eq!(get("x-frame-options"), "DENY", "X-Frame-Options of {path}");
}

#[tokio::test]
async fn pages_and_assets_are_served_with_types_caching_and_security_headers() {
    let server = Server::start().await;
    let all = PAGES
        .iter()
        .map(|p| (*p, "text/html; charset=utf-8"))
        .chain(ASSETS.iter().copied());
    for (path, content_type) in all {
        let r = server.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        let h = r.headers().clone();
        assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), content_type, "type of {path}");
        assert_hardened(path, &h);
        assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "no-cache", "cache of {path}");
        let etag = h.get(header::ETAG).expect("etag").clone();
        let body = r.bytes().await.expect("body");
        assert!(!body.is_empty(), "{path} is empty");

        // A browser revalidating its copy gets 304, still hardened.
        let again = server
            .client
            .get(format!("{}{path}", server.base))
            .header(header::IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "revalidation of {path}");
        assert_eq!(again.headers().get(header::ETAG), Some(&etag));
        assert_hardened(path, again.headers());

        let head = server
            .client
            .head(format!("{}{path}", server.base))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_assets_are_404_and_hardened() {
    let server = Server::start().await;
    for path in [
        "/assets/nope.js",
        "/assets/index.html",
        "/assets/..%2FCargo.toml",
        "/assets/%2e%2e%2fsrc%2fmain.rs",
        "/assets/style.css.map",
    ] {
        let r = server.get(path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "GET {path}");
        assert_hardened(path, r.headers());
    }
    // The trailing-slash form of the dashboard leads to it.
    let r = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/admin/", server.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers().get(header::LOCATION).unwrap(), "/admin");
    server.stop().await;
}

#[tokio::test]
async fn html_has_no_inline_script_style_or_handler_and_links_only_served_assets() {
    let server = Server::start().await;
    let script = Regex::new(r"(?s)<script\b([^>]*)>(.*?)</script>").unwrap();
    let handler = Regex::new(r"(?i)<[^>]*\son[a-z]+\s*=").unwrap();
    let local = Regex::new(r#"(?:src|href)="(/assets/[^"]+)""#).unwrap();
    for page in PAGES {
        let html = server.text(page).await;
        assert!(html.starts_with("<!doctype html>"), "{page} doctype");
        assert!(!html.contains("style="), "{page} has a style attribute");
        assert!(!html.to_lowercase().contains("<style"), "{page} has a <style> element");
        assert!(!handler.is_match(&html), "{page} has an inline event handler");
        assert!(!html.contains("javascript:"), "{page} has a javascript: URL");
        let mut scripts = 0;
        for c in script.captures_iter(&html) {
            scripts += 1;
            assert!(
                c[1].contains("src=\"/assets/"),
                "{page}: script without a src: {}",
                &c[0]
            );
            assert!(c[2].trim().is_empty(), "{page}: script with a body: {}", &c[0]);
        }
        assert_eq!(scripts, html.matches("<script").count(), "{page}: unclosed <script>");
        assert!(scripts >= 1, "{page} loads no script");
        for c in local.captures_iter(&html) {
            let r = server.get(&c[1]).await;
            assert_eq!(r.status(), StatusCode::OK, "{page} links {} which is not served", &c[1]);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn scripts_import_only_served_modules_and_avoid_what_the_csp_forbids() {
    let server = Server::start().await;
    let import = Regex::new(r#"(?m)^\s*(?:import|export)\b[^;]*?from\s+'\./([^']+)'"#).unwrap();
    for (path, _) in ASSETS.iter().filter(|(p, _)| p.ends_with(".js")) {
        let js = server.text(path).await;
        for c in import.captures_iter(&js) {
            let r = server.get(&format!("/assets/{}", &c[1])).await;
            assert_eq!(
                r.status(),
                StatusCode::OK,
                "{path} imports {} which is not served",
                &c[1]
            );
        }
        // Text from the server (an override's reason) must never become markup,
        // and inline styles or eval would be refused by the CSP.
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            ".style.",
        ] {
            assert!(!js.contains(forbidden), "{path} uses {forbidden}");
        }
        // EventSource cannot send the bearer token.
        assert!(!js.contains("new EventSource"), "{path} uses EventSource");
    }
    server.stop().await;
}

/// The keys of the `fr` and `en` string tables, read off i18n.js.
fn table_keys(js: &str, name: &str) -> BTreeSet<String> {
    let start = js
        .find(&format!("const {name} = {{"))
        .unwrap_or_else(|| panic!("no table {name}"));
    let body = &js[start..];
    let end = body.find("\n};").expect("end of table");
    let key = Regex::new(r"(?m)^  ([A-Za-z][A-Za-z0-9]*):").unwrap();
    key.captures_iter(&body[..end]).map(|c| c[1].to_owned()).collect()
}

#[tokio::test]
async fn french_and_english_have_the_same_strings() {
    let server = Server::start().await;
    let js = server.text("/assets/i18n.js").await;
    let fr = table_keys(&js, "fr");
    let en = table_keys(&js, "en");
    assert!(fr.len() > 50, "only {} French strings found", fr.len());
    let only_fr: Vec<_> = fr.difference(&en).collect();
    let only_en: Vec<_> = en.difference(&fr).collect();
    assert!(
        only_fr.is_empty() && only_en.is_empty(),
        "only in fr: {only_fr:?}; only in en: {only_en:?}"
    );

    // Every key the pages name is in the tables.
    let used = Regex::new(r#"data-i18n(?:-placeholder|-label)?="([A-Za-z0-9]+)""#).unwrap();
    let property = Regex::new(r"\bt\.([A-Za-z][A-Za-z0-9]*)").unwrap();
    for page in PAGES {
        let html = server.text(page).await;
        for c in used.captures_iter(&html) {
            assert!(fr.contains(&c[1]), "{page} uses unknown string {}", &c[1]);
        }
    }
    for script in [
        "/assets/teacher.js",
        "/assets/admin.js",
        "/assets/common.js",
        "/assets/calendars.js",
    ] {
        let js = server.text(script).await;
        for c in property.captures_iter(&js) {
            assert!(fr.contains(&c[1]), "{script} uses unknown string t.{}", &c[1]);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_api_keeps_its_own_json_errors_beside_the_pages() {
    let server = Server::start().await;
    // The pages' routes must not shadow the API or its JSON 404s.
    let r = server.get("/api/v1/nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let r = server.get("/api/v1/me").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}
