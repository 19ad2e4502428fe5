//! The identity provider as borne sees it: discovery (with its JWKS),
//! the authorization URL (state, nonce, PKCE), the code exchange and the ID
//! token checks. All protocol work is the `openidconnect` crate's; this file
//! chooses its settings and keeps the discovered metadata fresh.
//!
//! Discovery is retried in the background while the provider is down, so a
//! provider that is away at start never stops borne: token users go on,
//! the pages say sign-in is unavailable. An ID token signed with a key the
//! cached JWKS lacks (the provider rolled its keys over) makes borne fetch
//! the metadata and JWKS again, at most once per [`REFRESH_MIN_INTERVAL`],
//! and check the token once more.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::oidc::Oidc;

/// A forced refresh of the JWKS happens at most this often, so forged
/// tokens naming unknown keys cannot make borne hammer the provider.
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Known metadata is fetched again this often, to follow key rollovers
/// before a token needs them.
const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// Every call to the provider gives up after this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every claim of the ID token besides the standard ones (`groups`, or
/// whatever `roles_claim` and `user_claim` name).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

type TokenFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type Client = openidconnect::Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<TokenFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in failed (logged; the person sees a short page).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The provider could not be reached or its metadata is unusable.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused to exchange the code.
    #[error("the identity provider refused the code exchange: {0}")]
    Exchange(String),
    /// The ID token failed a check (issuer, audience, expiry, signature, nonce).
    #[error("the ID token was refused: {0}")]
    Token(String),
}

/// What a verified ID token says about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `user_claim` value.
    pub login: String,
    /// The `roles_claim` values (empty without one).
    pub groups: Vec<String>,
    /// The raw ID token, kept for the provider's end-session endpoint.
    pub id_token: String,
}

/// What the callback needs to finish a sign-in started at `/auth/login`.
pub struct Started {
    /// Where to send the browser.
    pub url: String,
    /// The `state` value (also the key of the pending flow).
    pub state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier for the code exchange.
    pub pkce_verifier: String,
}

struct Discovered {
    metadata: ProviderMetadataWithLogout,
    auth_type: AuthType,
    at: Instant,
}

/// The provider for one `oidc:` block.
pub struct Provider {
    /// The block it was built from (a reload with another block builds another).
    pub config: Oidc,
    secret: Option<String>,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    last_attempt: Mutex<Option<Instant>>,
    /// Ends the background discovery task (child of the daemon's shutdown).
    stop: CancellationToken,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Provider {
    /// A provider for `config`; nothing is fetched yet.
    ///
    /// # Errors
    /// When the client secret file cannot be read or the HTTP client cannot be built.
    pub fn new(config: Oidc, shutdown: &CancellationToken) -> Result<Provider, String> {
        let secret = match &config.client_secret_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read oidc.client_secret_file {}: {e}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        // No redirects: discovery and the token endpoint answer directly, and
        // following one could carry the client secret elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Provider {
            config,
            secret,
            http,
            discovered: RwLock::new(None),
            last_attempt: Mutex::new(None),
            stop: shutdown.child_token(),
        })
    }

    /// Keeps the metadata fresh until shutdown or until this provider is
    /// replaced: retries every `oidc.retry_seconds` while it is down,
    /// refreshes hourly once known.
    pub async fn run(self: Arc<Self>) {
        let stop = self.stop.clone();
        let weak = Arc::downgrade(&self);
        drop(self);
        loop {
            let Some(me) = weak.upgrade() else { return };
            let wait = match me.discover().await {
                Ok(()) => REFRESH_INTERVAL,
                Err(_) => me.config.retry,
            };
            drop(me);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Whether the metadata is known (sign-in can start).
    pub fn available(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Arc<Discovered>> {
        self.discovered.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The metadata, fetching it now when unknown and the last attempt is
    /// older than the retry interval.
    async fn ensure(&self) -> Result<Arc<Discovered>, SignInError> {
        if let Some(d) = self.current() {
            return Ok(d);
        }
        let recent = self
            .last_attempt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < REFRESH_MIN_INTERVAL.min(self.config.retry));
        if recent {
            return Err(SignInError::Unavailable("not reachable at the last attempt".into()));
        }
        self.discover().await?;
        self.current()
            .ok_or_else(|| SignInError::Unavailable("discovery gave nothing".into()))
    }

    /// Fetches the discovery document and the JWKS.
    async fn discover(&self) -> Result<(), SignInError> {
        *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| SignInError::Unavailable(e.to_string()))?;
        let result = ProviderMetadataWithLogout::discover_async(issuer, &self.http).await;
        let metadata = match result {
            Ok(m) => m,
            Err(e) => {
                let message = error_chain(&e);
                tracing::warn!(issuer = %self.config.issuer, error = %message, "identity provider discovery failed; sign-in unavailable, retrying");
                return Err(SignInError::Unavailable(message));
            }
        };
        let auth_type = match self.auth_type(&metadata) {
            Ok(a) => a,
            Err(message) => {
                tracing::error!(issuer = %self.config.issuer, "{message}");
                return Err(SignInError::Unavailable(message));
            }
        };
        let first = self.current().is_none();
        *self.discovered.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Discovered {
            metadata,
            auth_type,
            at: Instant::now(),
        }));
        if first {
            tracing::info!(issuer = %self.config.issuer, "identity provider discovered; sign-in available");
        }
        Ok(())
    }

    /// `client_secret_basic` when the provider accepts it (the spec's
    /// default when it says nothing), else `client_secret_post`.
    fn auth_type(&self, metadata: &ProviderMetadataWithLogout) -> Result<AuthType, String> {
        if self.secret.is_none() {
            // A public client: PKCE alone, client_id in the body.
            return Ok(AuthType::RequestBody);
        }
        let Some(methods) = metadata.token_endpoint_auth_methods_supported() else {
            return Ok(AuthType::BasicAuth);
        };
        if methods.contains(&CoreClientAuthMethod::ClientSecretBasic) {
            Ok(AuthType::BasicAuth)
        } else if methods.contains(&CoreClientAuthMethod::ClientSecretPost) {
            Ok(AuthType::RequestBody)
        } else {
            Err(format!(
                "the identity provider accepts neither client_secret_basic nor client_secret_post at its token endpoint ({}); sign-in unavailable",
                methods
                    .iter()
                    .map(|m| serde_json::to_string(m).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }

    fn client(&self, d: &Discovered) -> Result<Client, SignInError> {
        let redirect =
            RedirectUrl::new(self.config.redirect_uri.clone()).map_err(|e| SignInError::Unavailable(e.to_string()))?;
        Ok(Client::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(d.auth_type.clone()))
    }

    /// The provider's authorization URL with a fresh state, nonce and PKCE challenge.
    ///
    /// # Errors
    /// [`SignInError::Unavailable`] while the provider is unknown.
    pub async fn start(&self) -> Result<Started, SignInError> {
        let d = self.ensure().await?;
        let client = self.client(&d)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and checks the ID token: signature (JWKS, fetched
    /// again once if the key is unknown), issuer, audience, expiry and
    /// issue time within the clock skew, nonce.
    ///
    /// # Errors
    /// See [`SignInError`].
    pub async fn finish(&self, code: String, nonce: &str, pkce_verifier: String) -> Result<Identity, SignInError> {
        let d = self.ensure().await?;
        let client = self.client(&d)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Exchange(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::Token("the token response holds no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match self.verify(&client, id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                // A key rollover at the provider: fetch the JWKS again, once.
                let stale = d.at.elapsed() >= REFRESH_MIN_INTERVAL;
                if stale && self.discover().await.is_ok() {
                    let fresh = self
                        .current()
                        .ok_or_else(|| SignInError::Unavailable("no metadata".into()))?;
                    let client = self.client(&fresh)?;
                    self.verify(&client, id_token, &nonce)
                } else {
                    Err(ClaimsVerificationError::SignatureVerification(
                        SignatureVerificationError::NoMatchingKey,
                    ))
                }
            }
            other => other,
        }
        .map_err(|e| SignInError::Token(error_chain(&e)))?;
        // Read the claims named in the configuration from the verified set.
        let all = serde_json::to_value(&claims).map_err(|e| SignInError::Token(e.to_string()))?;
        let login = match all.get(&self.config.user_claim) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(SignInError::Token(format!(
                    "the ID token has no \"{}\" claim (oidc.user_claim); ask for the scope that carries it",
                    self.config.user_claim
                )));
            }
        };
        let groups = match self.config.roles_claim.as_ref().and_then(|c| all.get(c)) {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Ok(Identity {
            login,
            groups,
            id_token: id_token.to_string(),
        })
    }

    fn verify(
        &self,
        client: &Client,
        id_token: &openidconnect::IdToken<
            ExtraClaims,
            CoreGenderClaim,
            CoreJweContentEncryptionAlgorithm,
            CoreJwsSigningAlgorithm,
        >,
        nonce: &Nonce,
    ) -> Result<openidconnect::IdTokenClaims<ExtraClaims, CoreGenderClaim>, ClaimsVerificationError> {
        let skew = chrono::Duration::from_std(self.config.clock_skew).unwrap_or_default();
        // `exp` is compared with a clock set back by the skew (a token is
        // accepted up to that long after its expiry); `iat` may be that far
        // in the future.
        let verifier = client
            .id_token_verifier()
            .set_time_fn(move || Utc::now() - skew)
            .set_issue_time_verifier_fn(move |iat| {
                if iat > Utc::now() + skew {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        id_token.claims(&verifier, nonce).cloned()
    }

    /// The provider's end-session URL for this ID token, when it has one.
    pub fn end_session_url(&self, id_token: Option<&str>, post_logout: &str) -> Option<String> {
        let d = self.current()?;
        let endpoint = d.metadata.additional_metadata().end_session_endpoint.clone()?;
        let mut request =
            openidconnect::LogoutRequest::from(endpoint).set_client_id(ClientId::new(self.config.client_id.clone()));
        if let Ok(url) = PostLogoutRedirectUrl::new(post_logout.to_owned()) {
            request = request.set_post_logout_redirect_uri(url);
        }
        let mut url = request.http_get_url();
        if let Some(hint) = id_token {
            url.query_pairs_mut().append_pair("id_token_hint", hint);
        }
        Some(url.to_string())
    }
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
