//! The values parsed at the edge, on any text: provider names (path
//! segments after percent-decoding), emails, redirect URIs, Apple's
//! `user` (a JSON object or its text). Taken only when valid; refused in
//! the contract's shape.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use socialauth_api::service::token_login::supplied_name;
use socialauth_common::types::Email;
use socialauth_fuzz::{check_refusal, provider, redirect_uri};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    provider(&text);
    redirect_uri(&text);
    if let Some(email) = Email::parse(&text) {
        assert_eq!(email.as_str(), text.trim());
        assert!(!email.as_str().chars().any(char::is_whitespace));
        assert!(email.domain().contains('.'));
    }
    let values = [
        Some(Value::String(text.into_owned())),
        serde_json::from_slice::<Value>(data).ok(),
    ];
    for value in values.into_iter().flatten() {
        if let Err(e) = supplied_name(Some(value)) {
            check_refusal(&e);
        }
    }
});
