//! Sign-in with the schools' identity provider (OpenID Connect, issue 18),
//! beside the bearer links.
//!
//! Routes: `GET /auth/login?next=/admin` starts the authorization code flow
//! (state, nonce, PKCE), `GET /auth/callback` finishes it and opens a
//! server-side session (a random id in an `HttpOnly; SameSite=Lax` cookie,
//! `Secure` unless the public URL is plain-HTTP loopback), `POST
//! /auth/logout` ends it, `GET /auth/session` tells the pages whether
//! sign-in is offered and who is signed in (with the session's CSRF token).
//!
//! A cookie session authenticates API requests like a token
//! ([`cookie_user`], called by `auth`); every state-changing request that
//! rides on the cookie must carry the session's CSRF token in
//! `X-CSRF-Token` or an `Origin` equal to `public_url`, else 403 `csrf`
//! ([`csrf`]). Bearer requests are unchanged.
//!
//! Receives the configuration from core, hands verified identities to
//! [`identity::resolve`] and sessions to the store
//! (`store::login_sessions`).

pub mod identity;
pub mod provider;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::{ApiError, AppState};
use crate::config::oidc::Oidc;
use crate::config::{Config, User};
use crate::store::login_sessions::{LoginSession, LoginSessions};
use crate::store::{AuditRecord, Batch};
use provider::{Provider, SignInError};

/// The session cookie.
pub const SESSION_COOKIE: &str = "borne_session";
/// Binds a sign-in in progress to the browser that started it.
pub const SIGNIN_COOKIE: &str = "borne_signin";
/// The header carrying the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A sign-in not finished within this is forgotten.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// At most this many sign-ins in progress; the oldest give way.
const PENDING_MAX: usize = 10_000;

struct Pending {
    nonce: String,
    pkce_verifier: String,
    next: String,
    created: Instant,
}

/// Sign-in state shared by the routes: the provider for the `oidc:` block
/// in force, sign-ins in progress, and the sessions.
pub struct SignIn {
    shutdown: CancellationToken,
    provider: Mutex<Option<Arc<Provider>>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Opened on first use; a failure is not kept (a database that was
    /// unreachable may be back at the next request).
    sessions: Mutex<Option<Arc<LoginSessions>>>,
}

impl SignIn {
    /// Nothing started yet; [`provider`](Self::provider) builds on first use.
    pub fn new(shutdown: CancellationToken) -> SignIn {
        SignIn {
            shutdown,
            provider: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(None),
        }
    }

    /// The provider for the configuration in force (rebuilt when a reload
    /// changed the `oidc:` block), or `None` without one.
    pub fn provider(&self, config: &Config) -> Option<Arc<Provider>> {
        let mut current = self.provider.lock().unwrap_or_else(|e| e.into_inner());
        let Some(wanted) = &config.oidc else {
            *current = None;
            return None;
        };
        if let Some(p) = current.as_ref()
            && p.config == *wanted
        {
            return Some(p.clone());
        }
        match Provider::new(wanted.clone(), &self.shutdown) {
            Ok(p) => {
                let p = Arc::new(p);
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(p.clone().run());
                }
                *current = Some(p.clone());
                Some(p)
            }
            Err(e) => {
                tracing::error!(error = %e, "sign-in with the identity provider is unavailable");
                *current = None;
                None
            }
        }
    }

    /// The session table, opened on first use.
    fn sessions(&self, core: &crate::core::Core) -> Result<Arc<LoginSessions>, ApiError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = &*sessions {
            return Ok(s.clone());
        }
        match core.writer().login_sessions() {
            Ok(s) => Ok(sessions.insert(Arc::new(s)).clone()),
            Err(e) => {
                tracing::error!(error = %e, "cannot open the sign-in sessions");
                Err(ApiError::Unavailable(
                    "les sessions ne sont pas disponibles / sessions are unavailable".into(),
                ))
            }
        }
    }
}

/// The sign-in routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route("/auth/session", get(session_info))
}

/// Starts the provider's discovery at once (rather than at the first
/// visit), when a runtime is there to run it.
pub fn start(state: &AppState) {
    let _ = state.oidc.provider(&state.core.config());
}

// --- Cookies and ids ------------------------------------------------------------

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash_id(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The value of cookie `name`, if the request has it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Names and values are ours: base64url and fixed ASCII.
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("borne_invalid=; Max-Age=0"))
}

/// Only a path on this site: `/x`, never `//host` or `/\host`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

// --- Pages ------------------------------------------------------------------------

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A short page in French then English (the pages' stylesheet, no script).
fn page(status: StatusCode, id: &str, fr: &str, en: &str, back: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Wi-Fi</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
<body><main class=\"page\"><section class=\"signin\" id=\"{id}\">\
<p class=\"notice notice-warn\" role=\"alert\">{fr}</p>\
<p class=\"notice notice-warn\" lang=\"en\">{en}</p>\
<p><a href=\"{back}\">Retour / Back</a></p></section></main></body></html>\n",
        fr = escape(fr),
        en = escape(en),
        back = escape(back),
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn unavailable_page(back: &str) -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "signin-unavailable",
        "La connexion avec l'ENT est indisponible pour le moment. Réessayez plus tard, ou utilisez votre lien de connexion.",
        "Sign-in with your school account is unavailable right now. Try again later, or use your sign-in link.",
        back,
    )
}

// --- Routes -----------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// `GET /auth/login?next=/admin`: off to the provider.
async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let config = state.core.config();
    let next = safe_next(q.next.as_deref());
    let Some(provider) = state.oidc.provider(&config) else {
        return page(
            StatusCode::NOT_FOUND,
            "signin-not-configured",
            "La connexion avec l'ENT n'est pas configurée ici.",
            "Sign-in with a school account is not configured here.",
            &next,
        );
    };
    let started = match provider.start().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in could not start");
            return unavailable_page(&next);
        }
    };
    {
        let mut pending = state.oidc.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| p.created.elapsed() < PENDING_TTL);
        if pending.len() >= PENDING_MAX
            && let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.created).map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(
            started.state.clone(),
            Pending {
                nonce: started.nonce,
                pkce_verifier: started.pkce_verifier,
                next,
                created: Instant::now(),
            },
        );
    }
    let secure = provider.config.secure_cookie;
    let mut response = (StatusCode::SEE_OTHER, [(header::CACHE_CONTROL, "no-store")]).into_response();
    let h = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&started.url) {
        h.insert(header::LOCATION, location);
    }
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SIGNIN_COOKIE,
            &started.state,
            "/auth",
            Some(PENDING_TTL.as_secs()),
            secure,
        ),
    );
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn source(state: &AppState, headers: &HeaderMap, request: &Request) -> String {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.0);
    super::auth::client_addr(state, headers, peer).to_string()
}

fn sign_in_audit(
    at: DateTime<Utc>,
    actor: &str,
    role: Option<String>,
    action: &str,
    detail: String,
    result: &str,
    source: String,
) -> AuditRecord {
    AuditRecord {
        at,
        actor: actor.to_owned(),
        role,
        classroom: None,
        access_point: None,
        action: action.to_owned(),
        detail,
        result: result.to_owned(),
        source: Some(source),
        via: Some("oidc".into()),
    }
}

/// `GET /auth/callback`: the provider sends the browser back here.
async fn callback(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let q: CallbackQuery = match Query::try_from_uri(request.uri()) {
        Ok(Query(q)) => q,
        Err(_) => return bad_callback("/", "malformed callback"),
    };
    let source = source(&state, &headers, &request);
    let config = state.core.config();
    let Some(provider) = state.oidc.provider(&config) else {
        return unavailable_page("/");
    };
    let Some(state_param) = q.state.clone() else {
        return bad_callback("/", "no state");
    };
    // The state is single-use: taken out now, whatever happens next.
    let pending = state
        .oidc
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&state_param)
        .filter(|p| p.created.elapsed() < PENDING_TTL);
    let Some(pending) = pending else {
        return bad_callback("/", "unknown, expired or already used state");
    };
    // The browser finishing the sign-in must be the one that started it
    // (else a link could sign a victim in as the attacker).
    let bound = cookie(&headers, SIGNIN_COOKIE).is_some_and(|c| bool::from(c.as_bytes().ct_eq(state_param.as_bytes())));
    if !bound {
        return bad_callback(&pending.next, "state not bound to this browser");
    }
    if let Some(error) = q.error {
        tracing::info!(error = %error, description = ?q.error_description, "the identity provider ended the sign-in");
        return page(
            StatusCode::FORBIDDEN,
            "signin-refused",
            "L'ENT n'a pas confirmé la connexion.",
            "Your school account provider did not confirm the sign-in.",
            &pending.next,
        );
    }
    let Some(code) = q.code else {
        return bad_callback(&pending.next, "no code");
    };
    let identity = match provider.finish(code, &pending.nonce, pending.pkce_verifier).await {
        Ok(i) => i,
        Err(e @ SignInError::Unavailable(_)) => {
            tracing::warn!(error = %e, "sign-in failed");
            return unavailable_page(&pending.next);
        }
        Err(e) => {
            tracing::warn!(error = %e, client = %source, "sign-in refused");
            return page(
                StatusCode::FORBIDDEN,
                "signin-failed",
                "La connexion a échoué : la réponse de l'ENT n'a pas pu être vérifiée. Réessayez ; si cela persiste, prévenez le service informatique.",
                "Sign-in failed: the answer of your school account provider could not be verified. Try again; if it persists, tell IT.",
                &pending.next,
            );
        }
    };
    let oidc = provider.config.clone();
    let oidc_for_prune = oidc.clone();
    let now = state.core.now();
    let Some(user) = identity::resolve(&config, &oidc, &identity.login, &identity.groups) else {
        let record = sign_in_audit(
            now,
            &identity.login,
            None,
            "auth.signin",
            format!("groups: {}", identity.groups.join(", ")),
            "refused: no_access",
            source,
        );
        if let Err(e) = state.core.writer().commit(Batch::audit(vec![record])).await {
            tracing::error!(error = %e, "cannot audit a refused sign-in");
        }
        return page(
            StatusCode::FORBIDDEN,
            "no-access",
            &format!(
                "Vous êtes connecté à l'ENT en tant que « {} », mais votre compte n'a accès à aucune classe. Si vous devriez en avoir, prévenez le service informatique.",
                identity.login
            ),
            &format!(
                "You are signed in to your school account as \"{}\", but your account has access to no classroom. If it should, tell IT.",
                identity.login
            ),
            "/",
        );
    };
    let sessions = match state.oidc.sessions(&state.core) {
        Ok(s) => s,
        Err(_) => return unavailable_page(&pending.next),
    };
    let id = random_token();
    let session = LoginSession {
        id_sha256: hash_id(&id),
        login: identity.login.clone(),
        groups: identity.groups.clone(),
        user: user.name.clone(),
        csrf: random_token(),
        id_token: Some(identity.id_token),
        created: now,
        last_seen: now,
    };
    let stored = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            // Each sign-in also clears the sessions that ended unnoticed
            // (nobody came back with their cookie), so the table stays small.
            if let Err(e) = sessions.retain(|s| resolve_live(&config, &oidc_for_prune, s, now).is_some()) {
                tracing::warn!(error = %e, "cannot clear ended sessions");
            }
            sessions.insert(session)
        }
    })
    .await;
    if !matches!(stored, Ok(Ok(()))) {
        tracing::error!("cannot store a sign-in session");
        return unavailable_page(&pending.next);
    }
    let record = sign_in_audit(
        now,
        &user.name,
        Some(user.role.as_str().to_owned()),
        "auth.signin",
        format!("login {}", identity.login),
        "ok",
        source,
    );
    if let Err(e) = state.core.writer().commit(Batch::audit(vec![record])).await {
        tracing::error!(error = %e, "cannot audit a sign-in");
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::CACHE_CONTROL, "no-store")]).into_response();
    let h = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&pending.next) {
        h.insert(header::LOCATION, location);
    }
    // No Max-Age: a browser session cookie; the server ends it at the
    // idle or absolute lifetime anyway.
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, "/", None, oidc.secure_cookie),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, "", "/auth", Some(0), oidc.secure_cookie),
    );
    response
}

fn bad_callback(back: &str, why: &str) -> Response {
    tracing::info!(reason = why, "sign-in callback refused");
    page(
        StatusCode::BAD_REQUEST,
        "signin-expired",
        "Cette connexion a expiré ou a déjà servi. Recommencez depuis la page.",
        "This sign-in has expired or was already used. Start again from the page.",
        back,
    )
}

/// `POST /auth/logout`: ends the session (the CSRF rule applies, see
/// [`csrf`]); answers where to go next: the provider's end-session page
/// when it has one, else the page.
async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let source = source(&state, &headers, &request);
    let config = state.core.config();
    let provider = state.oidc.provider(&config);
    let mut redirect = "/".to_owned();
    if let Some(id) = cookie(&headers, SESSION_COOKIE)
        && let Ok(sessions) = state.oidc.sessions(&state.core)
    {
        let hash = hash_id(id);
        let removed = tokio::task::spawn_blocking(move || sessions.remove(&hash)).await;
        if let Ok(Ok(Some(session))) = removed {
            let record = sign_in_audit(
                state.core.now(),
                &session.user,
                None,
                "auth.signout",
                format!("login {}", session.login),
                "ok",
                source,
            );
            if let Err(e) = state.core.writer().commit(Batch::audit(vec![record])).await {
                tracing::error!(error = %e, "cannot audit a sign-out");
            }
            if let Some(p) = &provider
                && let Some(url) = p.end_session_url(session.id_token.as_deref(), &format!("{}/", config.public_url))
            {
                redirect = url;
            }
        }
    }
    let secure = config.oidc.as_ref().is_none_or(|o| o.secure_cookie);
    let mut response = axum::Json(serde_json::json!({ "signed_out": true, "redirect": redirect })).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", Some(0), secure));
    response
}

/// `GET /auth/session`: what the pages need to offer sign-in or run on the session.
async fn session_info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let config = state.core.config();
    let provider = state.oidc.provider(&config);
    let oidc = provider.as_ref().map(|p| {
        serde_json::json!({
            "label": p.config.label,
            "available": p.available(),
        })
    });
    let mut body = serde_json::json!({ "oidc": oidc, "user": null });
    if let Some(Ok((user, session))) = cookie_user(&state, &headers) {
        body["user"] = serde_json::json!({
            "name": user.name,
            "role": user.role,
            "login": session.login,
        });
        body["csrf"] = serde_json::Value::String(session.csrf);
    }
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// --- Authentication and CSRF --------------------------------------------------------

/// The user of the request's session cookie: `None` without one, an error
/// when it names no live session (expired, signed out, or a person a
/// reload removed; the session is then ended).
pub fn cookie_user(state: &AppState, headers: &HeaderMap) -> Option<Result<(User, LoginSession), ApiError>> {
    let id = cookie(headers, SESSION_COOKIE)?;
    let config = state.core.config();
    let ended = || {
        Some(Err(ApiError::Unauthorized(
            "your session has ended; sign in again (votre session est terminée : reconnectez-vous)".into(),
        )))
    };
    let Some(oidc) = config.oidc.as_ref() else {
        return ended();
    };
    let sessions = match state.oidc.sessions(&state.core) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let hash = hash_id(id);
    let session = sessions.get(&hash)?;
    let now = state.core.now();
    let Some(user) = resolve_live(&config, oidc, &session, now) else {
        // Gone from memory at once; the row follows in the background.
        let sessions = sessions.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = sessions.remove(&hash) {
                tracing::warn!(error = %e, "cannot delete an ended session");
            }
        });
        return ended();
    };
    if sessions.touch(&hash, now) {
        let sessions = sessions.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = sessions.flush_seen(&hash) {
                tracing::warn!(error = %e, "cannot record a session's last use");
            }
        });
    }
    Some(Ok((user, session)))
}

/// The user of a session that has neither expired (idle or absolute
/// lifetime) nor lost its match in the configuration.
fn resolve_live(config: &Config, oidc: &Oidc, session: &LoginSession, now: DateTime<Utc>) -> Option<User> {
    let age = (now - session.created).to_std().unwrap_or_default();
    let idle = (now - session.last_seen).to_std().unwrap_or_default();
    if age >= oidc.session_max || idle >= oidc.session_idle {
        return None;
    }
    identity::resolve(config, oidc, &session.login, &session.groups)
}

fn csrf_refused() -> Response {
    let body = serde_json::json!({
        "error": "csrf",
        "message": "requête refusée : elle ne vient pas de cette page (jeton CSRF ou Origin manquant) / request refused: it does not come from this site's pages (missing CSRF token or Origin)",
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// The CSRF rule: a state-changing request authenticated by the session
/// cookie (no `Authorization` header) needs `X-CSRF-Token` equal to its
/// session's token, or an `Origin` equal to `public_url`; else 403 `csrf`.
pub async fn csrf(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = request.headers();
    if safe || headers.contains_key(header::AUTHORIZATION) {
        return next.run(request).await;
    }
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return next.run(request).await;
    };
    let config = state.core.config();
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.trim_end_matches('/') == config.public_url);
    let token_ok = || {
        let Some(presented) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Ok(sessions) = state.oidc.sessions(&state.core) else {
            return false;
        };
        sessions
            .get(&hash_id(id))
            .is_some_and(|s| bool::from(s.csrf.as_bytes().ct_eq(presented.as_bytes())))
    };
    if origin_ok || token_ok() {
        next.run(request).await
    } else {
        csrf_refused()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/admin")), "/admin");
        assert_eq!(safe_next(Some("/?x=1#y")), "/?x=1#y");
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "admin",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; borne_session_x=2; borne_session=abc"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn the_session_cookie_is_http_only_lax_and_secure_unless_told() {
        let c = set_cookie(SESSION_COOKIE, "v", "/", None, true);
        assert_eq!(c, "borne_session=v; Path=/; HttpOnly; SameSite=Lax; Secure");
        let c = set_cookie(SESSION_COOKIE, "v", "/", None, false);
        assert_eq!(c, "borne_session=v; Path=/; HttpOnly; SameSite=Lax");
    }
}
