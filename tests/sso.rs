//! Single sign-on (issue 18) against a real OpenID Provider: the
//! `oidc-provider` package run by Node on loopback (tests/oidc). Without
//! Node or `npm ci` in tests/oidc the tests print a note on stderr and pass,
//! unless `BORNE_REQUIRE_PEERS=1` (CI), where that is a failure.

#[path = "support/oidc/mod.rs"]
mod oidc_support;

use oidc_support::{ProviderOptions, TestProvider};

fn options() -> ProviderOptions {
    ProviderOptions {
        redirect_uri: "http://127.0.0.1:9/auth/callback".into(),
        post_logout_redirect_uri: None,
        auth_method: Some("client_secret_basic"),
    }
}

/// The test provider publishes its discovery document and a JWKS whose key
/// changes when the test rotates it.
#[tokio::test]
async fn the_test_provider_serves_discovery_and_rotates_its_key() {
    let Some(provider) = TestProvider::start(options()) else {
        return;
    };
    let http = reqwest::Client::new();
    let meta: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", provider.issuer()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], provider.issuer());
    let jwks_uri = meta["jwks_uri"].as_str().unwrap().to_owned();
    let kid = |v: serde_json::Value| v["keys"][0]["kid"].as_str().unwrap().to_owned();
    let before = kid(http.get(&jwks_uri).send().await.unwrap().json().await.unwrap());
    let rotated = provider.rotate_key().await;
    let after = kid(http.get(&jwks_uri).send().await.unwrap().json().await.unwrap());
    assert_ne!(before, after);
    assert_eq!(after, rotated);
}
