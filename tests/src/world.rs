//! A running IdP plus a running socialauth stack configured for it, and the
//! steps a client of the djoser flow takes.

use crate::browser::{Callback, ScriptedUser};
use crate::idp::{HS256_CLIENT_ID, Idp, IdpConfig, STANDARD_CLIENT_ID};
use crate::oauth1_idp::{Oauth1Config, Oauth1Idp, STANDARD_CONSUMER_KEY};
use crate::stack::{Mode, Stack, StackOptions};
use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};
use socialauth_common::crypto::TokenColumn;

/// Where the app wants its users back (nothing listens there: the scripted
/// user stops at the redirect).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/callback";

pub struct World {
    pub idp: Idp,
    pub oauth1: Oauth1Idp,
    pub stack: Stack,
    pub http: reqwest::Client,
}

/// `twitter`: the preset pointed at the OAuth 1.0a test provider.
pub fn twitter_toml(oauth1: &Oauth1Idp) -> String {
    let base = &oauth1.base_url;
    let secret = &oauth1.consumer().secret;
    format!(
        r#"[providers.twitter]
preset = "twitter"
request_token_url = "{base}/oauth/request_token"
authorize_url = "{base}/oauth/authenticate"
access_token_url = "{base}/oauth/access_token"
userinfo_url = "{base}/1.1/account/verify_credentials.json?include_email=true"
client_id = "{STANDARD_CONSUMER_KEY}"
client_secret = "{secret}"
"#
    )
}

/// `corp`: OpenID Connect by discovery; `corpoauth`: the same IdP as a plain
/// OAuth2 provider with explicit endpoints; `corphs`: OpenID Connect with
/// the client whose id_tokens the IdP signs HS256.
pub fn providers_toml(idp: &Idp) -> String {
    let secret = &idp.config.clients[0].client_secret;
    let hs_secret = idp
        .config
        .clients
        .iter()
        .find(|c| c.client_id == HS256_CLIENT_ID)
        .map(|c| c.client_secret.as_str())
        .unwrap_or_default();
    let issuer = &idp.issuer;
    format!(
        r#"[providers.corp]
protocol = "oidc"
issuer = "{issuer}"
client_id = "{STANDARD_CLIENT_ID}"
client_secret = "{secret}"

[providers.corpoauth]
protocol = "oauth2"
authorize_url = "{issuer}/auth"
token_url = "{issuer}/token"
userinfo_url = "{issuer}/me"
client_id = "{STANDARD_CLIENT_ID}"
client_secret = "{secret}"
scopes = ["openid", "email", "profile"]

[providers.corphs]
protocol = "oidc"
issuer = "{issuer}"
client_id = "{HS256_CLIENT_ID}"
client_secret = "{hs_secret}"
"#
    )
}

impl World {
    pub async fn start(mode: Mode) -> anyhow::Result<Self> {
        Self::start_with(mode, |_| {}).await
    }

    pub async fn start_with(
        mode: Mode,
        adjust: impl FnOnce(&mut StackOptions),
    ) -> anyhow::Result<Self> {
        Self::start_with_idp(mode, |_| {}, adjust).await
    }

    /// [`World::start_with`] with the OpenID Connect provider's standard
    /// configuration changed by `idp` first.
    pub async fn start_with_idp(
        mode: Mode,
        idp: impl FnOnce(&mut IdpConfig),
        adjust: impl FnOnce(&mut StackOptions),
    ) -> anyhow::Result<Self> {
        let mut idp_config = IdpConfig::standard(REDIRECT_URI);
        idp(&mut idp_config);
        let (idp, oauth1) = tokio::try_join!(
            Idp::start(idp_config),
            Oauth1Idp::start(Oauth1Config::standard())
        )?;
        let providers = format!("{}\n{}", providers_toml(&idp), twitter_toml(&oauth1));
        let mut opts = StackOptions::new(mode, providers, REDIRECT_URI);
        adjust(&mut opts);
        let stack = Stack::start(opts).await?;
        Ok(Self {
            idp,
            oauth1,
            stack,
            http: reqwest::Client::new(),
        })
    }

    /// `GET /auth/o/{provider}/?redirect_uri=…` → (status, body).
    pub async fn begin(&self, provider: &str, redirect_uri: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .get(self.stack.url(&format!("/auth/o/{provider}/")));
        if let Some(r) = redirect_uri {
            req = req.query(&[("redirect_uri", r)]);
        }
        send(req).await
    }

    /// The provider's redirect back to the app after `user` logged in.
    pub async fn callback(&self, provider: &str, user: &str) -> anyhow::Result<Callback> {
        let (status, body) = self.begin(provider, Some(REDIRECT_URI)).await;
        anyhow::ensure!(status == StatusCode::OK, "begin: {status} {body}");
        let url = body["authorization_url"]
            .as_str()
            .context("authorization_url")?;
        let password = &self
            .idp
            .config
            .user(user)
            .context("no such IdP user")?
            .password;
        ScriptedUser::new()?
            .authorize(url, user, password, REDIRECT_URI)
            .await
    }

    /// `POST /auth/o/{provider}/` with a JSON body.
    pub async fn post_json(&self, provider: &str, body: &Value) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.stack.url(&format!("/auth/o/{provider}/")))
                .json(body),
        )
        .await
    }

    /// `POST /auth/o/{provider}/` as a form.
    pub async fn post_form(&self, provider: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.stack.url(&format!("/auth/o/{provider}/")))
                .form(fields),
        )
        .await
    }

    /// A whole login of `user` through `provider` (JSON body).
    pub async fn login(&self, provider: &str, user: &str) -> anyhow::Result<(StatusCode, Value)> {
        let cb = self.callback(provider, user).await?;
        Ok(self
            .post_json(
                provider,
                &json!({"code": cb.code.context("code")?, "state": cb.state.context("state")?}),
            )
            .await)
    }

    /// `GET path` with `Authorization: <scheme> <token>`.
    pub async fn get_auth(&self, path: &str, scheme: &str, token: &str) -> (StatusCode, Value) {
        send(
            self.http
                .get(self.stack.url(path))
                .header("Authorization", format!("{scheme} {token}")),
        )
        .await
    }
}

impl World {
    /// What a mobile app or SPA does itself: an authorization request with
    /// its own PKCE pair, the user's login, and the code it brings back.
    /// Returns (code, code_verifier).
    pub async fn client_side_code(&self, user: &str) -> anyhow::Result<(String, String)> {
        self.client_side_code_with_nonce(user, None).await
    }

    /// [`World::client_side_code`] with an OpenID Connect `nonce` in the
    /// authorization request.
    pub async fn client_side_code_with_nonce(
        &self,
        user: &str,
        nonce: Option<&str>,
    ) -> anyhow::Result<(String, String)> {
        self.client_side_code_for(STANDARD_CLIENT_ID, user, nonce)
            .await
    }

    /// [`World::client_side_code_with_nonce`] for the IdP's client
    /// `client_id`.
    pub async fn client_side_code_for(
        &self,
        client_id: &str,
        user: &str,
        nonce: Option<&str>,
    ) -> anyhow::Result<(String, String)> {
        self.client_side_code_scoped(client_id, user, nonce, "openid email profile")
            .await
    }

    /// [`World::client_side_code_for`] asking for `scope`.
    pub async fn client_side_code_scoped(
        &self,
        client_id: &str,
        user: &str,
        nonce: Option<&str>,
        scope: &str,
    ) -> anyhow::Result<(String, String)> {
        use base64::Engine;
        use sha2::Digest;
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&format!("{}/auth", self.idp.issuer))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", scope)
            .append_pair("state", "client-state")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(nonce) = nonce {
            url.query_pairs_mut().append_pair("nonce", nonce);
        }
        let password = &self
            .idp
            .config
            .user(user)
            .context("no such IdP user")?
            .password;
        let cb = ScriptedUser::new()?
            .authorize(url.as_str(), user, password, REDIRECT_URI)
            .await?;
        Ok((cb.code.context("code")?, verifier))
    }

    /// `POST /social-auth` with a JSON body.
    pub async fn social_auth(&self, body: &Value) -> (StatusCode, Value) {
        send(self.http.post(self.stack.url("/social-auth")).json(body)).await
    }

    /// `POST /social-auth` as a form.
    pub async fn social_auth_form(&self, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        send(self.http.post(self.stack.url("/social-auth")).form(fields)).await
    }

    /// The user authorizes a request token at the OAuth 1.0a provider;
    /// returns (oauth_token, oauth_verifier) from the callback.
    pub async fn authorize_oauth1(
        &self,
        authorization_url: &str,
        screen_name: &str,
    ) -> anyhow::Result<(String, String)> {
        let password = &self.oauth1.user(screen_name).password;
        let cb = ScriptedUser::new()?
            .authorize_oauth1(authorization_url, screen_name, password, REDIRECT_URI)
            .await?;
        Ok((
            cb.oauth_token().context("oauth_token")?.to_owned(),
            cb.oauth_verifier().context("oauth_verifier")?.to_owned(),
        ))
    }

    /// `PATCH path` with a JSON body and `Authorization: Token …`.
    pub async fn patch_auth(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        send(
            self.http
                .patch(self.stack.url(path))
                .header("Authorization", format!("Token {token}"))
                .json(body),
        )
        .await
    }
}

/// Sends and returns the status with the JSON body (`null` when empty).
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            (status, body)
        }
        Err(e) => (StatusCode::IM_A_TEAPOT, Value::String(e.to_string())),
    }
}

impl World {
    /// The user revokes the app's access at the IdP: `refresh_token`
    /// revoked (RFC 7009, as the standard client), its grant with it.
    pub async fn revoke_at_idp(&self, refresh_token: &str) -> anyhow::Result<()> {
        let client = &self.idp.config.clients[0];
        let revoked = self
            .http
            .post(format!("{}/token/revocation", self.idp.issuer))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await?;
        anyhow::ensure!(
            revoked.status().is_success(),
            "revocation: {}",
            revoked.status()
        );
        Ok(())
    }

    /// The api's `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(self.stack.url("/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    /// The IdP's RFC 7662 answer about `token` (asked as the standard
    /// client): whether it is active.
    pub async fn active_at_idp(&self, token: &str) -> anyhow::Result<bool> {
        let client = &self.idp.config.clients[0];
        let body: Value = self
            .http
            .post(self.idp.introspection_endpoint())
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&[("token", token)])
            .send()
            .await?
            .json()
            .await?;
        Ok(body["active"] == true)
    }

    /// The provider access token stored (sealed) with the user's link
    /// `account_id`, opened with the stack's key.
    pub async fn stored_access_token(
        &self,
        user_id: i64,
        account_id: i64,
    ) -> anyhow::Result<String> {
        Ok(self.stored_tokens(user_id, account_id).await?.0)
    }

    /// The provider access token and refresh token (if any) stored with
    /// the user's link `account_id`, opened with the stack's key.
    pub async fn stored_tokens(
        &self,
        user_id: i64,
        account_id: i64,
    ) -> anyhow::Result<(String, Option<String>)> {
        let config_path = &self.stack.config_path;
        let settings = socialauth_common::config::Settings::load(Some(config_path))?;
        let cipher = if settings.is_embedded() && settings.security.encryption_key.is_none() {
            // The embedded default keeps its key beside its database.
            let dir = config_path.parent().unwrap_or(std::path::Path::new("."));
            let key = std::fs::read_to_string(dir.join("socialauth.db.key"))?;
            let id = settings.security.encryption_key_id.as_str();
            socialauth_common::crypto::TokenCipher::new(id, vec![(id, key.trim())])?
        } else {
            socialauth_common::bootstrap::token_cipher(&settings)?
        };
        let store = self.stack.store().await?;
        let mut tx = store.begin().await?;
        let stored = tx
            .find_stored_accounts(socialauth_common::types::UserId(user_id))
            .await?;
        let link = stored
            .iter()
            .find(|s| s.account.id == account_id)
            .context("no such link")?;
        let key_id = link.tokens.key_id.clone().unwrap_or_default();
        let open = |data: &str, column| {
            let sealed = socialauth_common::crypto::Sealed {
                key_id: key_id.clone(),
                data: data.to_owned(),
            };
            let binding = socialauth_common::crypto::Binding::Account {
                provider: &link.account.provider,
                uid: &link.account.uid,
                column,
            };
            cipher.open(&sealed, binding)
        };
        let access = open(
            link.tokens.access_token.as_deref().unwrap_or_default(),
            TokenColumn::AccessToken,
        )?;
        let refresh = link
            .tokens
            .refresh_token
            .as_deref()
            .map(|r| open(r, TokenColumn::RefreshToken))
            .transpose()?;
        Ok((access, refresh))
    }
}
