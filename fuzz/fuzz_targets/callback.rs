//! The djoser callback's parameters (`code`, `state`, `oauth_token`,
//! `oauth_verifier`, `email`, `referral_code`) as the provider's redirect
//! carries them (a query string) and as the client posts them (a form):
//! the same bytes give the same fields either way, and what was parsed,
//! posted again as JSON, comes back unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use socialauth_api::service::redirect_flow::CallbackForm;
use socialauth_fuzz::{FORM, JSON, body, checked, exposed, query, uri_query};

fn fields(f: &CallbackForm) -> [Option<&str>; 6] {
    [
        exposed(&f.code),
        exposed(&f.state),
        f.email.as_deref(),
        f.referral_code.as_deref(),
        f.oauth_token.as_deref(),
        exposed(&f.oauth_verifier),
    ]
}

const NAMES: [&str; 6] = [
    "code",
    "state",
    "email",
    "referral_code",
    "oauth_token",
    "oauth_verifier",
];

fuzz_target!(|data: &[u8]| {
    // The query as the server sees it (a fragment never reaches it),
    // posted as a form too.
    if let Some(seen) = uri_query(data) {
        let posted = checked(body::<CallbackForm>(FORM, seen.as_bytes()));
        let from_query = query::<CallbackForm>(data).expect("a URI");
        match (&posted, from_query) {
            (Some(p), Ok(q)) => assert_eq!(fields(p), fields(&q)),
            (None, Err(_)) => {}
            (p, q) => panic!("query and form disagree: {p:?} / {q:?}"),
        }
    }
    let Some(posted) = checked(body::<CallbackForm>(FORM, data)) else {
        return;
    };
    let json: Map<String, Value> = NAMES
        .iter()
        .zip(fields(&posted))
        .filter_map(|(n, v)| v.map(|v| ((*n).to_owned(), Value::String(v.to_owned()))))
        .collect();
    let again = body::<CallbackForm>(JSON, Value::Object(json).to_string().as_bytes())
        .expect("the JSON of parsed fields parses");
    assert_eq!(fields(&posted), fields(&again));
});
