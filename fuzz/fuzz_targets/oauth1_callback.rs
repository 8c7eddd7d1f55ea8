//! OAuth 1.0a's callback, built from fuzzed values: the provider's redirect
//! (`?oauth_token=…&oauth_verifier=…`), the djoser POST and `/social-auth`
//! step 2 (`oauth_token`, `oauth_token_secret`, `oauth_verifier`), as a
//! form and as JSON. Whatever the values, each arrives exactly as sent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use socialauth_api::service::redirect_flow::CallbackForm;
use socialauth_api::service::social_auth::SocialAuthForm;
use socialauth_fuzz::{FORM, JSON, body, exposed, query};

fuzz_target!(|input: (String, String, String, Option<String>)| {
    let (token, verifier, secret, email) = input;
    let mut pairs = vec![
        ("oauth_token", token.as_str()),
        ("oauth_verifier", verifier.as_str()),
    ];
    let redirect = serde_urlencoded::to_string(&pairs).expect("strings encode");
    let from_redirect: CallbackForm = query(redirect.as_bytes())
        .expect("an encoded query is a URI")
        .expect("the provider's redirect parses");
    assert_eq!(from_redirect.oauth_token.as_deref(), Some(token.as_str()));
    assert_eq!(
        exposed(&from_redirect.oauth_verifier),
        Some(verifier.as_str())
    );

    pairs.push(("oauth_token_secret", secret.as_str()));
    pairs.push(("provider", "twitter"));
    if let Some(email) = &email {
        pairs.push(("email", email.as_str()));
    }
    let form = serde_urlencoded::to_string(&pairs).expect("strings encode");
    let json = json!({
        "provider": "twitter",
        "oauth_token": token,
        "oauth_token_secret": secret,
        "oauth_verifier": verifier,
        "email": email,
    })
    .to_string();
    for (content_type, bytes) in [(FORM, form.as_bytes()), (JSON, json.as_bytes())] {
        let f: SocialAuthForm = body(content_type, bytes).expect("step 2 parses");
        assert_eq!(f.oauth_token.as_deref(), Some(token.as_str()));
        assert_eq!(exposed(&f.oauth_token_secret), Some(secret.as_str()));
        assert_eq!(exposed(&f.oauth_verifier), Some(verifier.as_str()));
        assert_eq!(f.email, email);
        let f: CallbackForm = body(content_type, bytes).expect("the djoser POST parses");
        assert_eq!(f.oauth_token.as_deref(), Some(token.as_str()));
        assert_eq!(exposed(&f.oauth_verifier), Some(verifier.as_str()));
    }
});
