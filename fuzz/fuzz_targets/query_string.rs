//! Any query string on the routes that read one (`redirect_uri` of the
//! authorization URLs, the audit log's paging): a value, or a 400 in the
//! contract's shape; a redirect URI is taken only when on the list.

#![no_main]

use libfuzzer_sys::fuzz_target;
use socialauth_api::routes::redirect_flow::AuthorizeQuery;
use socialauth_api::service::admin::AuditParams;
use socialauth_fuzz::{check_refusal, query, redirect_uri};

fuzz_target!(|data: &[u8]| {
    match query::<AuthorizeQuery>(data) {
        Some(Ok(q)) => redirect_uri(q.redirect_uri.as_deref().unwrap_or_default()),
        Some(Err(e)) => check_refusal(&e),
        None => {}
    }
    if let Some(Err(e)) = query::<AuditParams>(data) {
        check_refusal(&e);
    }
});
