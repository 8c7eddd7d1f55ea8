//! A scripted end user: a cookie-jar HTTP client that follows an
//! authorization URL through the test IdP's login and consent forms and stops
//! at the redirect back to the app, without a browser.
//!
//! It only ever talks to 127.0.0.1; any other host is an error, never a request.

use anyhow::{Context, bail};
use reqwest::{StatusCode, redirect};
use std::time::Duration;
use url::Url;

/// Redirects and form posts one authorization may take.
const MAX_STEPS: usize = 30;

/// What the IdP sent back to the app's redirect URI.
#[derive(Clone, Debug)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    /// Every query parameter, in order (`iss` included where the IdP sends it).
    pub query: Vec<(String, String)>,
    pub url: Url,
}

impl Callback {
    fn from_url(url: Url) -> Self {
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let find = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Self {
            code: find("code"),
            state: find("state"),
            error: find("error"),
            query,
            url,
        }
    }

    /// The first query parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// OAuth 1.0a: the request token the provider sends back.
    pub fn oauth_token(&self) -> Option<&str> {
        self.param("oauth_token")
    }

    /// OAuth 1.0a: the verifier to exchange with the request token.
    pub fn oauth_verifier(&self) -> Option<&str> {
        self.param("oauth_verifier")
    }

    /// OAuth 1.0a, Twitter's shape: the request token the user refused
    /// (`denied=<oauth_token>`).
    pub fn denied(&self) -> Option<&str> {
        self.param("denied")
    }
}

/// What the scripted user does at the IdP's forms.
#[derive(Clone, Copy)]
enum Decision<'a> {
    /// Sign in and allow.
    Allow { login: &'a str, password: &'a str },
    /// Sign in, then deny at the consent form.
    DenyConsent { login: &'a str, password: &'a str },
    /// Cancel at the first form (login or consent).
    Cancel,
}

/// What the scripted user does at an OAuth 1.0a provider's form.
#[derive(Clone, Copy)]
enum Oauth1Decision<'a> {
    /// Sign in, which authorizes the app.
    Allow { login: &'a str, password: &'a str },
    /// Press "Cancel" (no sign-in).
    Deny,
}

/// The OAuth 1.0a provider's authorization form: where it posts and its
/// hidden fields (the request token).
#[derive(Debug, PartialEq)]
struct Oauth1Form {
    action: String,
    hidden: Vec<(String, String)>,
}

/// One end user with their own cookie jar (so their own IdP session).
#[derive(Clone, Debug)]
pub struct ScriptedUser {
    client: reqwest::Client,
}

enum Step {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

impl ScriptedUser {
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the scripted user's HTTP client")?;
        Ok(Self { client })
    }

    /// The user's HTTP client (cookie jar included, redirects not followed).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Follows `authorization_url`, signs in with `login`/`password`, allows
    /// the consent, and returns the first redirect whose location starts with
    /// `redirect_prefix`. A refused password is an error, not a callback.
    /// A user with a live IdP session (a second call) may skip the forms.
    pub async fn authorize(
        &self,
        authorization_url: &str,
        login: &str,
        password: &str,
        redirect_prefix: &str,
    ) -> anyhow::Result<Callback> {
        self.drive(
            authorization_url,
            Decision::Allow { login, password },
            redirect_prefix,
        )
        .await
    }

    /// Like [`authorize`](Self::authorize) but the user signs in and then
    /// denies at the consent form: the callback carries `error=access_denied`.
    pub async fn deny(
        &self,
        authorization_url: &str,
        login: &str,
        password: &str,
        redirect_prefix: &str,
    ) -> anyhow::Result<Callback> {
        self.drive(
            authorization_url,
            Decision::DenyConsent { login, password },
            redirect_prefix,
        )
        .await
    }

    /// The user cancels at the first form they see (usually the login form):
    /// the callback carries `error=access_denied`.
    pub async fn cancel(
        &self,
        authorization_url: &str,
        redirect_prefix: &str,
    ) -> anyhow::Result<Callback> {
        self.drive(authorization_url, Decision::Cancel, redirect_prefix)
            .await
    }

    /// OAuth 1.0a (Twitter's shape): follows `authorization_url`
    /// (`…/oauth/authorize?oauth_token=…`), signs in at the provider's form
    /// with `login`/`password` (which authorizes the app) and returns the
    /// first redirect whose location starts with `callback_prefix`; its query
    /// carries `oauth_token` and `oauth_verifier` ([`Callback::oauth_token`],
    /// [`Callback::oauth_verifier`]). A refused password is an error, not a
    /// callback.
    pub async fn authorize_oauth1(
        &self,
        authorization_url: &str,
        login: &str,
        password: &str,
        callback_prefix: &str,
    ) -> anyhow::Result<Callback> {
        self.drive_oauth1(
            authorization_url,
            Oauth1Decision::Allow { login, password },
            callback_prefix,
        )
        .await
    }

    /// OAuth 1.0a: the user presses "Cancel" at the provider's form without
    /// signing in; the callback carries `denied=<oauth_token>`
    /// ([`Callback::denied`]) and no verifier.
    pub async fn deny_oauth1(
        &self,
        authorization_url: &str,
        callback_prefix: &str,
    ) -> anyhow::Result<Callback> {
        self.drive_oauth1(authorization_url, Oauth1Decision::Deny, callback_prefix)
            .await
    }

    async fn drive_oauth1(
        &self,
        authorization_url: &str,
        decision: Oauth1Decision<'_>,
        callback_prefix: &str,
    ) -> anyhow::Result<Callback> {
        let start = Url::parse(authorization_url).with_context(|| {
            format!(
                "authorization URL {}",
                Url::parse(authorization_url)
                    .map(|u| without_query(&u))
                    .unwrap_or_else(|_| "(not a URL)".to_owned())
            )
        })?;
        if start.as_str().starts_with(callback_prefix) {
            bail!("the authorization URL itself starts with the callback prefix");
        }
        let mut step = Step::Get(start);
        let mut submitted = false;

        for _ in 0..MAX_STEPS {
            let (url, request) = match step {
                Step::Get(url) => {
                    ensure_local(&url)?;
                    (url.clone(), self.client.get(url))
                }
                Step::Post(url, form) => {
                    ensure_local(&url)?;
                    (url.clone(), self.client.post(url).form(&form))
                }
            };
            let response = request
                .send()
                .await
                .with_context(|| format!("request to {}", without_query(&url)))?;
            let status = response.status();

            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .context("a redirect without Location")?
                    .to_str()
                    .context("a Location that is not text")?
                    .to_owned();
                let target = url
                    .join(&location)
                    .context("resolving a Location that is not a URL")?;
                if location.starts_with(callback_prefix)
                    || target.as_str().starts_with(callback_prefix)
                {
                    return Ok(Callback::from_url(target));
                }
                step = Step::Get(target);
                continue;
            }

            let body = response.text().await.unwrap_or_default();
            if status != StatusCode::OK {
                bail!(
                    "the provider answered {status} at {}: {}",
                    without_query(&url),
                    error_text(&body).unwrap_or_else(|| snippet(&body))
                );
            }
            let Some(form) = oauth1_form(&body) else {
                bail!(
                    "unexpected page at {}: {}",
                    without_query(&url),
                    snippet(&body)
                );
            };
            let target = url.join(&form.action).context("resolving a form action")?;
            let mut fields = form.hidden;
            match decision {
                Oauth1Decision::Allow { login, password } => {
                    if submitted {
                        bail!(
                            "the provider refused the login: {}",
                            error_text(&body).unwrap_or_else(|| snippet(&body))
                        );
                    }
                    fields.push(("login".to_owned(), login.to_owned()));
                    fields.push(("password".to_owned(), password.to_owned()));
                    fields.push(("allow".to_owned(), "1".to_owned()));
                }
                Oauth1Decision::Deny => {
                    if submitted {
                        bail!("the provider showed its form again after Cancel");
                    }
                    fields.push(("deny".to_owned(), "1".to_owned()));
                }
            }
            submitted = true;
            step = Step::Post(target, fields);
        }
        bail!("no redirect to {callback_prefix} after {MAX_STEPS} steps")
    }

    async fn drive(
        &self,
        authorization_url: &str,
        decision: Decision<'_>,
        redirect_prefix: &str,
    ) -> anyhow::Result<Callback> {
        let start = Url::parse(authorization_url)
            .with_context(|| format!("authorization URL {authorization_url:?}"))?;
        if start.as_str().starts_with(redirect_prefix) {
            bail!("the authorization URL itself starts with the redirect prefix");
        }
        let mut step = Step::Get(start);
        let mut logged_in = false;
        let mut consented = false;

        for _ in 0..MAX_STEPS {
            let (url, request) = match step {
                Step::Get(url) => {
                    ensure_local(&url)?;
                    (url.clone(), self.client.get(url))
                }
                Step::Post(url, form) => {
                    ensure_local(&url)?;
                    (url.clone(), self.client.post(url).form(&form))
                }
            };
            let response = request
                .send()
                .await
                .with_context(|| format!("request to {}", without_query(&url)))?;
            let status = response.status();

            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .context("a redirect without Location")?
                    .to_str()
                    .context("a Location that is not text")?
                    .to_owned();
                let target = url
                    .join(&location)
                    .with_context(|| format!("resolving Location {location:?}"))?;
                if location.starts_with(redirect_prefix)
                    || target.as_str().starts_with(redirect_prefix)
                {
                    return Ok(Callback::from_url(target));
                }
                step = Step::Get(target);
                continue;
            }

            let body = response.text().await.unwrap_or_default();
            if status != StatusCode::OK {
                bail!(
                    "the IdP answered {status} at {}: {}",
                    without_query(&url),
                    snippet(&body)
                );
            }
            let actions = form_actions(&body);
            let action = |suffix: &str| {
                actions
                    .iter()
                    .find(|a| a.split('?').next().unwrap_or(a).ends_with(suffix))
                    .map(|a| url.join(a))
                    .transpose()
                    .context("resolving a form action")
            };
            let login_form = action("/login")?;
            let consent_form = action("/confirm")?;
            let abort_form = action("/abort")?;

            step = match (decision, login_form, consent_form) {
                (Decision::Cancel, Some(_), _) | (Decision::Cancel, _, Some(_)) => Step::Post(
                    abort_form.context("no cancel form on the IdP's page")?,
                    vec![],
                ),
                (
                    Decision::Allow { login, password } | Decision::DenyConsent { login, password },
                    Some(target),
                    _,
                ) => {
                    if logged_in {
                        bail!(
                            "the IdP refused the login: {}",
                            error_text(&body).unwrap_or_else(|| snippet(&body))
                        );
                    }
                    logged_in = true;
                    Step::Post(
                        target,
                        vec![
                            ("login".to_owned(), login.to_owned()),
                            ("password".to_owned(), password.to_owned()),
                        ],
                    )
                }
                (Decision::Allow { .. }, None, Some(target)) => {
                    if consented {
                        bail!("the IdP showed the consent form twice");
                    }
                    consented = true;
                    Step::Post(target, vec![])
                }
                (Decision::DenyConsent { .. }, None, Some(_)) => Step::Post(
                    abort_form.context("no deny form on the IdP's page")?,
                    vec![],
                ),
                (_, None, None) => bail!(
                    "unexpected page at {}: {}",
                    without_query(&url),
                    snippet(&body)
                ),
            };
        }
        bail!("no redirect to {redirect_prefix} after {MAX_STEPS} steps")
    }
}

/// Only 127.0.0.1 over http(s): the tests' traffic never leaves the machine.
fn ensure_local(url: &Url) -> anyhow::Result<()> {
    let scheme_ok = matches!(url.scheme(), "http" | "https");
    if !scheme_ok || url.host_str() != Some("127.0.0.1") {
        bail!(
            "refusing to send a request to {} (only 127.0.0.1 is allowed)",
            without_query(url)
        );
    }
    Ok(())
}

/// A URL for messages: its query may carry codes or state.
fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

fn snippet(body: &str) -> String {
    let text: String = body.chars().take(600).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `action` of every `<form …>` on the page (the IdP's markup is ours:
/// double-quoted attributes, no nesting).
fn form_actions(html: &str) -> Vec<String> {
    let mut actions = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        rest = &rest[start + 5..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        if let Some(at) = tag.find("action=\"") {
            let value = &tag[at + 8..];
            if let Some(end) = value.find('"') {
                actions.push(html_unescape(&value[..end]));
            }
        }
    }
    actions
}

/// The text of the `id="error"` element, if any.
fn error_text(html: &str) -> Option<String> {
    let at = html.find("id=\"error\"")?;
    let rest = &html[at..];
    let open = rest.find('>')?;
    let text = &rest[open + 1..];
    let close = text.find('<')?;
    Some(html_unescape(text[..close].trim()))
}

/// The first form posting to `…/oauth/authenticate` or `…/oauth/authorize`,
/// with its hidden inputs (the provider's markup is ours: double-quoted
/// attributes, no nesting).
fn oauth1_form(html: &str) -> Option<Oauth1Form> {
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        rest = &rest[start + 5..];
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let Some(action) = attribute(&rest[..tag_end], "action") else {
            continue;
        };
        let path = action.split('?').next().unwrap_or(&action);
        if !(path.ends_with("/oauth/authenticate") || path.ends_with("/oauth/authorize")) {
            continue;
        }
        let inner = &rest[tag_end..rest.find("</form>").unwrap_or(rest.len())];
        let mut hidden = Vec::new();
        let mut inputs = inner;
        while let Some(at) = inputs.find("<input") {
            inputs = &inputs[at + 6..];
            let tag = &inputs[..inputs.find('>').unwrap_or(inputs.len())];
            if attribute(tag, "type").as_deref() == Some("hidden")
                && let Some(name) = attribute(tag, "name")
            {
                hidden.push((name, attribute(tag, "value").unwrap_or_default()));
            }
        }
        return Some(Oauth1Form { action, hidden });
    }
    None
}

/// The value of ` name="…"` in the inside of a tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(at) = tag[from..].find(&needle) {
        let at = from + at;
        let preceded_by_space = tag[..at].ends_with(|c: char| c.is_ascii_whitespace());
        let value = &tag[at + needle.len()..];
        if preceded_by_space && let Some(end) = value.find('"') {
            return Some(html_unescape(&value[..end]));
        }
        from = at + needle.len();
    }
    None
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_actions_are_found_in_order() {
        let html = r#"<p>x</p><form id="login" method="post" action="/interaction/a/login">
            <input name="login"></form><form id="abort" action="/interaction/a/abort?x=1&amp;y=2"></form>"#;
        assert_eq!(
            form_actions(html),
            vec!["/interaction/a/login", "/interaction/a/abort?x=1&y=2"]
        );
    }

    #[test]
    fn error_text_is_read_from_the_error_element() {
        let html = r#"<p id="error" class="error">Invalid username or password.</p>"#;
        assert_eq!(
            error_text(html).as_deref(),
            Some("Invalid username or password.")
        );
        assert_eq!(error_text("<p>fine</p>"), None);
    }

    #[test]
    fn other_hosts_are_refused() {
        for url in [
            "http://localhost:3000/cb",
            "https://accounts.google.com/o/oauth2/auth",
            "http://127.0.0.2/x",
            "file:///etc/passwd",
        ] {
            let url = Url::parse(url).expect("url");
            assert!(ensure_local(&url).is_err(), "{url}");
        }
        assert!(ensure_local(&Url::parse("http://127.0.0.1:1234/auth").expect("url")).is_ok());
    }

    #[test]
    fn oauth1_form_is_found_with_its_hidden_token() {
        let html = r#"<p id="error" class="error">Invalid username or password.</p>
<form id="search" action="/search"><input type="hidden" name="q" value="x"></form>
<form id="oauth_form" method="post" action="/oauth/authenticate" autocomplete="off">
<input type="hidden" name="oauth_token" value="a-b_c&amp;d">
<input type="text" name="login" autofocus>
<input type="password" name="password">
<button type="submit" name="deny" value="1">Cancel</button>
</form>"#;
        assert_eq!(
            oauth1_form(html),
            Some(Oauth1Form {
                action: "/oauth/authenticate".to_owned(),
                hidden: vec![("oauth_token".to_owned(), "a-b_c&d".to_owned())],
            })
        );
        assert_eq!(oauth1_form(r#"<form action="/login"></form>"#), None);
    }

    #[test]
    fn attribute_matches_whole_names_only() {
        let tag = r#" data-name="no" name="yes" value="1""#;
        assert_eq!(attribute(tag, "name").as_deref(), Some("yes"));
        assert_eq!(attribute(tag, "value").as_deref(), Some("1"));
        assert_eq!(attribute(tag, "type"), None);
    }

    #[test]
    fn callback_exposes_oauth1_parameters() {
        let cb = Callback::from_url(
            Url::parse("http://127.0.0.1:9/cb?oauth_token=t&oauth_verifier=v").expect("url"),
        );
        assert_eq!(cb.oauth_token(), Some("t"));
        assert_eq!(cb.oauth_verifier(), Some("v"));
        assert_eq!(cb.denied(), None);
        let denied = Callback::from_url(Url::parse("http://127.0.0.1:9/cb?denied=t").expect("url"));
        assert_eq!(denied.denied(), Some("t"));
        assert_eq!(denied.oauth_verifier(), None);
    }

    #[test]
    fn callback_parses_code_state_and_error() {
        let cb = Callback::from_url(
            Url::parse("http://127.0.0.1:9/cb?code=abc&state=s%20t&iss=http%3A%2F%2F127.0.0.1%3A1")
                .expect("url"),
        );
        assert_eq!(cb.code.as_deref(), Some("abc"));
        assert_eq!(cb.state.as_deref(), Some("s t"));
        assert_eq!(cb.error, None);
        assert_eq!(cb.param("iss"), Some("http://127.0.0.1:1"));
    }
}
