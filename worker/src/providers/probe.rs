//! `socialauth-api doctor`: whether each provider answers where its
//! configuration says, without a login. OpenID Connect: the discovery
//! document (its issuer checked) and the signing keys; OAuth 2 and
//! OAuth 1.0a: every configured endpoint answers HTTP at all (a 404 or 405
//! to a plain GET still shows the host is there).

use super::http::{HttpError, RetryPolicy};
use super::{ProviderClient, oidc};
use ::oauth2::http::{Method, Request, header};
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use url::Url;

/// One thing looked at and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub what: &'static str,
    /// What answered (`Ok`) or why nothing usable did (`Err`).
    pub outcome: Result<String, String>,
}

impl ProviderClient {
    /// Looks at `p` as [`Probe`]s; no breaker or budget applies.
    pub async fn probe(&self, p: &ProviderConfig) -> Vec<Probe> {
        let endpoints: Vec<(&'static str, Option<&Url>)> = match p.protocol {
            Protocol::Oidc => {
                let outcome = oidc::describe(&self.inner, p)
                    .await
                    .map_err(|e| e.to_string());
                return vec![Probe {
                    what: "discovery and keys",
                    outcome,
                }];
            }
            Protocol::OAuth2 => vec![
                ("authorize_url", p.authorize_url.as_ref()),
                ("token_url", p.token_url.as_ref()),
                ("userinfo_url", p.userinfo_url.as_ref()),
                ("emails_url", p.emails_url.as_ref()),
                ("revocation_url", p.revocation_url.as_ref()),
            ],
            Protocol::OAuth1 => vec![
                ("request_token_url", p.request_token_url.as_ref()),
                ("authorize_url", p.authorize_url.as_ref()),
                ("access_token_url", p.access_token_url.as_ref()),
                ("userinfo_url", p.userinfo_url.as_ref()),
            ],
        };
        let mut probes = Vec::new();
        for (what, url) in endpoints {
            if let Some(url) = url {
                probes.push(Probe {
                    what,
                    outcome: self.answers(url).await,
                });
            }
        }
        probes
    }

    /// A plain GET of `url`: the status it answers with.
    async fn answers(&self, url: &Url) -> Result<String, String> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|_| "not a usable URL".to_owned())?;
        let response = self
            .inner
            .http
            .send(request, RetryPolicy::ConnectOnly)
            .await
            .map_err(|e: HttpError| e.to_string())?;
        Ok(format!("answers (HTTP {})", response.status().as_u16()))
    }
}
