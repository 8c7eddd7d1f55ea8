//! Domain types, parsed at the edge.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A provider's name as it appears in URLs and configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderName(String);

impl ProviderName {
    /// `[a-z0-9_-]{1,64}`.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: one `@`, non-empty local part and domain, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let (local, domain) = raw.split_once('@')?;
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && raw.len() <= 254
            && !raw.chars().any(char::is_whitespace);
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is decided on.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// A redirect URI that the configured allow-list contains exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse_allowed(raw: &str, allowed: &[String]) -> Option<Self> {
        allowed
            .iter()
            .any(|a| a == raw)
            .then(|| Self(raw.to_owned()))
    }

    /// For values that were checked when they were first received.
    pub fn trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user of the app, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    /// Whether a provider verified `email` (a typed email is not).
    #[serde(default)]
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub referral_code: String,
    pub referred_by: Option<UserId>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// One link between a user and a provider identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialAccount {
    pub id: i64,
    pub user_id: UserId,
    pub provider: String,
    pub uid: String,
    pub email: Option<String>,
    pub expires_at: Option<i64>,
    pub needs_reauth: bool,
    pub created_at: i64,
    /// The last sign-in through this link (its creation, if none since).
    pub last_login_at: i64,
}

/// What the pipeline's first step makes of the provider's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub uid: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub name: Option<String>,
    pub picture: Option<String>,
}

/// Tokens the provider gave us, kept encrypted at rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderTokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Milliseconds since the Unix epoch.
    pub expires_at: Option<i64>,
    /// OAuth 1.0a token secret.
    pub token_secret: Option<Secret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_lowercase_slugs() {
        assert!(ProviderName::parse("google").is_some());
        assert!(ProviderName::parse("my-idp_2").is_some());
        assert!(ProviderName::parse("Google").is_none());
        assert!(ProviderName::parse("").is_none());
        assert!(ProviderName::parse("a/b").is_none());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse("a@b.io").is_some());
        assert!(Email::parse("a@b").is_none());
        assert!(Email::parse("@b.io").is_none());
        assert!(Email::parse("a b@c.io").is_none());
        assert_eq!(
            Email::parse("Ann@Example.COM").expect("valid").normalized(),
            "ann@example.com"
        );
    }

    #[test]
    fn redirect_uris_must_match_exactly() {
        let allowed = vec!["http://localhost:3000/cb".to_owned()];
        assert!(RedirectUri::parse_allowed("http://localhost:3000/cb", &allowed).is_some());
        assert!(RedirectUri::parse_allowed("http://localhost:3000/cb/", &allowed).is_none());
        assert!(RedirectUri::parse_allowed("http://localhost:3000/cb?x=1", &allowed).is_none());
    }
}
