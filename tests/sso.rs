//! Single sign-on (issue 18) against a real OpenID Provider: the
//! `oidc-provider` package run by Node on loopback (tests/oidc), its login
//! form filled in over HTTP with a cookie jar, as a browser would. Without
//! Node or `npm ci` in tests/oidc the tests print a note on stderr and pass,
//! unless `BORNE_REQUIRE_PEERS=1` (CI), where that is a failure.
//!
//! The whole flow in a real browser is in tests/browser (Chromium).

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use borne::core::Clock;
use borne::daemon::{self, Options, Running};
use borne::policy::Wifi;
use borne_test_support::daemon::{ManualClock, load_config, stop_running};
use borne_test_support::oidc::{
    self as oidc_support, ADMIN, CLIENT_SECRET, Person, ProviderOptions, STRANGER, TEACHER, TestProvider, free_port,
};
use borne_test_support::wait::{TIMEOUT, wait_for};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ADMIN_TOKEN: &str = "admin-token-0001";

fn config_yaml(port: u16, issuer: &str) -> String {
    format!(
        r#"
demo: true
timezone: Europe/Paris
state_dir: STATE_DIR
listen: 127.0.0.1:{port}
public_url: http://127.0.0.1:{port}
schedules:
  open:
    default_mode: available
    rules:
      - {{ at: "0 0 1 1 *", mode: available }}
schools:
  - id: jules-ferry
    schedule: open
    classrooms:
      - id: jf-cm1a
        access_points: [ {{ id: ap-cm1a, sim: {{}} }} ]
      - id: jf-cm2
        access_points: [ {{ id: ap-cm2, sim: {{}} }} ]
users:
  - name: mme-martin
    login: c.martin
    role: teacher
    classrooms: [jf-cm1a]
  - {{ name: admin, role: admin, token: {ADMIN_TOKEN} }}
oidc:
  issuer: {issuer}
  client_id: borne
  client_secret_file: secret.txt
  scopes: [openid, profile, email, groups]
  roles_claim: groups
  retry_seconds: 1
  session_idle_minutes: 30
  groups:
    - {{ group: dsi-ecoles, role: admin }}
"#
    )
}

/// borne in process on a fixed loopback port (the redirect URI names it),
/// with the provider's client secret in its directory.
struct Borne {
    port: u16,
    dir: Arc<tempfile::TempDir>,
    clock: Arc<ManualClock>,
    token: CancellationToken,
    running: Option<Running>,
    issuer: String,
}

impl Borne {
    async fn start(issuer: &str) -> Borne {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        std::fs::write(dir.path().join("secret.txt"), format!("{CLIENT_SECRET}\n")).expect("secret");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let clock = ManualClock::at(&chrono::Utc::now().to_rfc3339());
        let mut b = Borne {
            port,
            dir,
            clock,
            token: CancellationToken::new(),
            running: None,
            issuer: issuer.to_owned(),
        };
        b.run(listener).await;
        b
    }

    async fn run(&mut self, listener: TcpListener) {
        let config = load_config(&config_yaml(self.port, &self.issuer), self.dir.path());
        self.token = CancellationToken::new();
        let options = Options {
            clock: self.clock.clone() as Arc<dyn Clock>,
            listener: Some(listener),
            config_path: None,
            watchdog: None,
        };
        self.running = Some(
            daemon::start(config, options, self.token.clone())
                .await
                .expect("borne starts"),
        );
    }

    /// Stops and starts again on the same port and state directory.
    async fn restart(&mut self) {
        stop_running(&self.token, self.running.take()).await;
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("same port again");
        self.run(listener).await;
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn redirect_uri(port: u16) -> String {
        format!("http://127.0.0.1:{port}/auth/callback")
    }

    fn sim(&self, ap: &str) -> Option<Wifi> {
        self.running().sim.state(ap)
    }
}

impl Drop for Borne {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// A provider and borne wired to each other: borne's port is taken first
/// (the provider must know the redirect URI), then borne starts.
async fn pair(auth_method: &'static str) -> Option<(TestProvider, Borne)> {
    let provider_port = free_port();
    // borne binds first so its port can be registered at the provider; the
    // provider comes up right after (borne retries discovery every second).
    let borne = Borne::start(&format!("http://127.0.0.1:{provider_port}")).await;
    let provider = TestProvider::start_on(
        provider_port,
        ProviderOptions {
            redirect_uri: Borne::redirect_uri(borne.port),
            post_logout_redirect_uri: Some(borne.url("/")),
            auth_method: Some(auth_method),
        },
    )?;
    wait_available(&borne).await;
    Some((provider, borne))
}

async fn wait_available(borne: &Borne) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let v = get_json(&reqwest::Client::new(), borne.url("/auth/session")).await;
        if v["oidc"]["available"] == true {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sign-in never became available: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).build().expect("client")
}

/// Goes through the provider's login form as `person`; returns the last
/// answer (borne's page after the callback, or its refusal).
async fn sign_in(borne: &Borne, http: &reqwest::Client, person: Person, next: &str) -> reqwest::Response {
    let form = http
        .get(borne.url(&format!("/auth/login?next={next}")))
        .send()
        .await
        .expect("login starts");
    assert!(
        form.url().path().starts_with("/interaction/"),
        "expected the provider's login form, got {} ({})",
        form.url(),
        form.status()
    );
    let action = form.url().clone();
    let html = form.text().await.expect("form");
    assert!(html.contains("name=\"password\""), "{html}");
    http.post(action)
        .form(&[("login", person.login), ("password", person.password)])
        .send()
        .await
        .expect("form posted")
}

/// GET `url` with `http` (its cookies, if any); the answer's JSON.
async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    let url = url.into_url().expect("URL");
    http.get(url.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

async fn session(borne: &Borne, http: &reqwest::Client) -> Value {
    get_json(http, borne.url("/auth/session")).await
}

fn has_cookie(r: &reqwest::Response, name: &str) -> bool {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&format!("{name}=")) && !c.starts_with(&format!("{name}=;")))
}

async fn audit(borne: &Borne) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(borne.url("/api/v1/audit"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("JSON");
    v["entries"].as_array().cloned().unwrap_or_default()
}

/// The test provider publishes its discovery document and a JWKS whose key
/// changes when the test rotates it.
#[tokio::test]
async fn the_test_provider_serves_discovery_and_rotates_its_key() {
    let Some(provider) = TestProvider::start(ProviderOptions {
        redirect_uri: "http://127.0.0.1:9/auth/callback".into(),
        post_logout_redirect_uri: None,
        auth_method: Some("client_secret_basic"),
    }) else {
        return;
    };
    let http = reqwest::Client::new();
    let meta = get_json(&http, format!("{}/.well-known/openid-configuration", provider.issuer())).await;
    assert_eq!(meta["issuer"], provider.issuer());
    let jwks_uri = meta["jwks_uri"].as_str().unwrap().to_owned();
    let kid = |v: Value| v["keys"][0]["kid"].as_str().unwrap().to_owned();
    let before = kid(get_json(&http, &jwks_uri).await);
    let rotated = provider.rotate_key().await;
    let after = kid(get_json(&http, &jwks_uri).await);
    assert_ne!(before, after);
    assert_eq!(after, rotated);
}

/// A teacher signs in at the provider, lands on the page, sees their
/// classroom, switches it on with the session (CSRF header), and the audit
/// says `via: oidc`; sign-out ends the session and offers the provider's
/// end-session page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_signs_in_switches_their_classroom_and_signs_out() {
    let Some((provider, borne)) = pair("client_secret_basic").await else {
        return;
    };
    let http = browser();
    let r = sign_in(&borne, &http, TEACHER, "/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().as_str(), borne.url("/"));
    let s = session(&borne, &http).await;
    assert_eq!(s["user"]["name"], "mme-martin");
    assert_eq!(s["user"]["role"], "teacher");
    let csrf = s["csrf"].as_str().expect("csrf token").to_owned();

    let me = get_json(&http, borne.url("/api/v1/me")).await;
    assert_eq!(me["name"], "mme-martin");
    let list = get_json(&http, borne.url("/api/v1/classrooms")).await;
    let ids: Vec<&str> = list["classrooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["jf-cm1a"]);

    let r = http
        .post(borne.url("/api/v1/classrooms/jf-cm1a/wifi"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"wifi": "on", "minutes": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    wait_for("the AP on", || borne.sim("ap-cm1a") == Some(Wifi::On)).await;

    let lines = audit(&borne).await;
    let request = lines
        .iter()
        .find(|l| l["action"].as_str().is_some_and(|a| a.starts_with("teacher.")))
        .expect("teacher request audited");
    assert_eq!(request["actor"], "mme-martin");
    assert_eq!(request["via"], "oidc");
    let signin = lines
        .iter()
        .find(|l| l["action"] == "auth.signin")
        .expect("sign-in audited");
    assert_eq!(signin["actor"], "mme-martin");
    assert_eq!(signin["via"], "oidc");
    assert_eq!(signin["result"], "ok");

    // Sign-out: the CSRF rule applies to it as well.
    let r = http.post(borne.url("/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(borne.url("/auth/logout"))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    let redirect = out["redirect"].as_str().unwrap();
    assert!(
        redirect.starts_with(&format!("{}/session/end", provider.issuer())),
        "end-session offered: {redirect}"
    );
    assert!(redirect.contains("id_token_hint="));
    let r = http.get(borne.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(session(&borne, &http).await["user"].is_null());
    assert!(audit(&borne).await.iter().any(|l| l["action"] == "auth.signout"));
}

/// The CSRF rule: a cookie-authenticated write from another origin (a form
/// post or a fetch) is refused with 403 `csrf`; the same write with the
/// session's token or from `public_url` passes; bearer requests are unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_form_posts_and_fetches_are_refused() {
    let Some((_provider, borne)) = pair("client_secret_basic").await else {
        return;
    };
    let http = browser();
    assert_eq!(sign_in(&borne, &http, TEACHER, "/").await.status(), 200);
    let path = borne.url("/api/v1/classrooms/jf-cm1a/wifi");

    // A form on another site posting to borne (the browser sends the Lax
    // cookie only on top-level GETs, but an older browser or a same-site
    // subdomain could): refused.
    let r = http
        .post(&path)
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("wifi=on")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "csrf");
    // A fetch from another origin with a JSON body: refused.
    let r = http
        .post(&path)
        .header("Origin", "http://evil.example")
        .json(&json!({"wifi": "on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "csrf");
    // No Origin and no token: refused too.
    let r = http.post(&path).json(&json!({"wifi": "on"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // A wrong token: refused.
    let r = http
        .post(&path)
        .header("X-CSRF-Token", "not-the-token")
        .json(&json!({"wifi": "on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(borne.sim("ap-cm1a"), Some(Wifi::Off));
    // From the page's own origin: accepted.
    let r = http
        .post(&path)
        .header("Origin", borne.url(""))
        .json(&json!({"wifi": "on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Bearer requests keep working from anywhere (no cookie involved).
    let r = reqwest::Client::new()
        .post(borne.url("/api/v1/classrooms/jf-cm2/wifi"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Origin", "http://evil.example")
        .json(&json!({"wifi": "on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Someone the provider knows but borne does not gets a clear page, an
/// audit line, and no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_matching_nothing_gets_a_clear_page_an_audit_line_and_no_session() {
    let Some((_provider, borne)) = pair("client_secret_basic").await else {
        return;
    };
    let http = browser();
    let r = sign_in(&borne, &http, STRANGER, "/").await;
    assert_eq!(r.status(), 403);
    assert!(!has_cookie(&r, "borne_session"));
    let html = r.text().await.unwrap();
    assert!(html.contains("votre compte n&#39;a accès à aucune classe"), "{html}");
    assert!(html.contains("has access to no classroom"));
    assert!(session(&borne, &http).await["user"].is_null());
    let lines = audit(&borne).await;
    let refused = lines.iter().find(|l| l["action"] == "auth.signin").expect("audited");
    assert_eq!(refused["actor"], "p.inconnu");
    assert_eq!(refused["result"], "refused: no_access");
    assert_eq!(refused["via"], "oidc");
}

/// IT staff matched by a group mapping signs in and lands on /admin with
/// the admin role over every classroom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_matched_by_group_signs_in_to_the_dashboard() {
    let Some((_provider, borne)) = pair("client_secret_post").await else {
        return;
    };
    let http = browser();
    let r = sign_in(&borne, &http, ADMIN, "/admin").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().as_str(), borne.url("/admin"));
    let me = get_json(&http, borne.url("/api/v1/me")).await;
    assert_eq!(me["name"], "it.admin");
    assert_eq!(me["role"], "admin");
    let list = get_json(&http, borne.url("/api/v1/classrooms")).await;
    assert_eq!(list["classrooms"].as_array().unwrap().len(), 2);
}

/// ID tokens that fail a check are refused and open no session: wrong
/// issuer, wrong audience, expired, signed by another key, and one replayed
/// from an earlier sign-in (its nonce is not this sign-in's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_expired_or_replayed_id_tokens_are_refused() {
    let Some((provider, borne)) = pair("client_secret_basic").await else {
        return;
    };
    // One good sign-in first, so that `replay` has a token to hand back.
    assert_eq!(sign_in(&borne, &browser(), TEACHER, "/").await.status(), 200);
    for fault in ["wrong-issuer", "wrong-audience", "expired", "other-key", "replay"] {
        provider.set_fault(fault).await;
        let http = browser();
        let r = sign_in(&borne, &http, TEACHER, "/").await;
        assert_eq!(r.status(), 403, "{fault}");
        assert!(!has_cookie(&r, "borne_session"), "{fault}");
        let html = r.text().await.unwrap();
        assert!(html.contains("signin-failed"), "{fault}: {html}");
        assert!(session(&borne, &http).await["user"].is_null(), "{fault}");
    }
    provider.set_fault("none").await;
    assert_eq!(sign_in(&borne, &browser(), TEACHER, "/").await.status(), 200);
}

/// Starts a sign-in and returns the provider's redirect to the callback,
/// unfollowed (`http` stops there): through the login form, or at once
/// when the provider already knows the browser.
async fn callback_url(borne: &Borne, http: &reqwest::Client) -> String {
    let mut r = http.get(borne.url("/auth/login?next=/")).send().await.unwrap();
    if r.url().path().starts_with("/interaction/") {
        let action = r.url().clone();
        r = http
            .post(action)
            .form(&[("login", TEACHER.login), ("password", TEACHER.password)])
            .send()
            .await
            .unwrap();
    }
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("redirect to the callback")
        .to_owned()
}

/// A callback URL (state and code) works once: replayed, it is refused.
/// A callback from a browser that did not start the sign-in is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_or_foreign_callback_is_refused() {
    let Some((_provider, borne)) = pair("client_secret_basic").await else {
        return;
    };
    let callback_path = "/auth/callback";
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(move |a| {
            // Stop on the way to the callback and on the way out of it.
            let from_callback = a.previous().last().is_some_and(|u| u.path() == callback_path);
            if a.url().path() == callback_path || from_callback {
                a.stop()
            } else {
                a.follow()
            }
        }))
        .build()
        .unwrap();
    let callback = callback_url(&borne, &http).await;
    assert!(callback.starts_with(&borne.url(callback_path)), "{callback}");
    // Another browser (no sign-in cookie) cannot use it.
    let r = reqwest::Client::new().get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // That attempt used the state up: the rightful browser must start again.
    let r = http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // A fresh sign-in works once, and only once.
    let callback = callback_url(&borne, &http).await;
    let first = http.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), 303);
    assert!(has_cookie(&first, "borne_session"));
    let again = http.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(!has_cookie(&again, "borne_session"));
}

/// A provider that is down when borne starts: borne runs, token users work,
/// the sign-in says it is unavailable; once the provider is up, sign-in works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_at_start_does_not_stop_borne() {
    if oidc_support::require_node().is_none() {
        return;
    }
    let provider_port = free_port();
    let borne = Borne::start(&format!("http://127.0.0.1:{provider_port}")).await;
    let s = get_json(&reqwest::Client::new(), borne.url("/auth/session")).await;
    assert_eq!(s["oidc"]["available"], false);
    let r = reqwest::Client::new()
        .get(borne.url("/api/v1/classrooms"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(borne.url("/auth/login?next=/")).await.unwrap();
    assert_eq!(r.status(), 503);
    let html = r.text().await.unwrap();
    assert!(html.contains("indisponible") && html.contains("unavailable"), "{html}");

    let Some(_provider) = TestProvider::start_on(
        provider_port,
        ProviderOptions {
            redirect_uri: Borne::redirect_uri(borne.port),
            post_logout_redirect_uri: None,
            auth_method: Some("client_secret_basic"),
        },
    ) else {
        return;
    };
    wait_available(&borne).await;
    assert_eq!(sign_in(&borne, &browser(), TEACHER, "/").await.status(), 200);
}

/// The provider rolls its signing key over (the old key leaves its JWKS):
/// the next sign-in still works, borne fetching the new JWKS by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_survives_a_key_rollover_at_the_provider() {
    let Some((provider, borne)) = pair("client_secret_basic").await else {
        return;
    };
    assert_eq!(sign_in(&borne, &browser(), TEACHER, "/").await.status(), 200);
    provider.rotate_key().await;
    // borne refreshes a JWKS at most every 10 s (forged kids cannot make it
    // hammer the provider): wait that out, as a real rollover would.
    tokio::time::sleep(borne::api::oidc::provider::REFRESH_MIN_INTERVAL).await;
    let r = sign_in(&borne, &browser(), TEACHER, "/").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// Sessions live in the state database: a restart keeps them. They end at
/// the idle lifetime, and a reload that removes the person ends theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_restarts_and_end_when_idle_or_removed() {
    let Some((_provider, mut borne)) = pair("client_secret_basic").await else {
        return;
    };
    let http = browser();
    assert_eq!(sign_in(&borne, &http, TEACHER, "/").await.status(), 200);
    borne.restart().await;
    let r = http.get(borne.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the session survived the restart");

    // 29 minutes idle (limit 30): still valid, and that use counts.
    borne.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(http.get(borne.url("/api/v1/me")).send().await.unwrap().status(), 200);
    borne.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(http.get(borne.url("/api/v1/me")).send().await.unwrap().status(), 200);
    // 31 minutes idle: ended.
    borne.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(http.get(borne.url("/api/v1/me")).send().await.unwrap().status(), 401);

    // A new session, then a reload that removes mme-martin's login.
    let http = browser();
    assert_eq!(sign_in(&borne, &http, TEACHER, "/").await.status(), 200);
    assert_eq!(http.get(borne.url("/api/v1/me")).send().await.unwrap().status(), 200);
    let yaml = config_yaml(borne.port, &borne.issuer).replace("    login: c.martin\n", "    token: martin-token-01\n");
    let config = load_config(&yaml, borne.dir.path());
    borne
        .running()
        .core
        .replace_config(Arc::new(config))
        .await
        .expect("reload");
    assert_eq!(http.get(borne.url("/api/v1/me")).send().await.unwrap().status(), 401);
}

/// Reload that re-scopes a person re-scopes their session at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rescopes_a_signed_in_teacher() {
    let Some((_provider, borne)) = pair("client_secret_basic").await else {
        return;
    };
    let http = browser();
    assert_eq!(sign_in(&borne, &http, TEACHER, "/").await.status(), 200);
    let yaml = config_yaml(borne.port, &borne.issuer).replace("classrooms: [jf-cm1a]", "classrooms: [jf-cm2]");
    borne
        .running()
        .core
        .replace_config(Arc::new(load_config(&yaml, Path::new(borne.dir.path()))))
        .await
        .expect("reload");
    let list = get_json(&http, borne.url("/api/v1/classrooms")).await;
    assert_eq!(list["classrooms"][0]["id"], "jf-cm2");
    assert_eq!(list["classrooms"].as_array().unwrap().len(), 1);
}
