//! A removed link's provider tokens revoked at the provider (RFC 7009),
//! best effort: the refresh token first (revoking it ends the grant at
//! most providers), then the access token. The outcome is counted in
//! `socialauth_token_revocations_total{provider, outcome}`; nothing else
//! waits for it.

use crate::deps::Deps;
use crate::providers::TokenKind;
use socialauth_common::crypto::{Binding, Sealed, TokenColumn};
use socialauth_common::jobs::{JobResult, RevocationResult, RevokeJob};
use socialauth_common::secret::Secret;
use tracing::{info, warn};

pub async fn revoke(deps: &Deps, job: &RevokeJob) -> JobResult {
    let outcome = run(deps, job).await;
    metrics::counter!(
        "socialauth_token_revocations_total",
        "provider" => job.provider.as_str().to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
    info!(
        provider = job.provider.as_str(),
        account_id = job.account_id,
        outcome,
        "token revocation"
    );
    JobResult::Revoked(RevocationResult {
        outcome: outcome.to_owned(),
    })
}

/// `revoked`, `failed`, `not_supported` (no revocation endpoint, or the
/// provider is no longer configured) or `no_token`.
async fn run(deps: &Deps, job: &RevokeJob) -> &'static str {
    let Some(provider) = deps.catalogue.get(job.provider.as_str()) else {
        return "not_supported";
    };
    let sealed = [
        (
            &job.refresh_token_enc,
            TokenKind::Refresh,
            TokenColumn::RefreshToken,
        ),
        (
            &job.access_token_enc,
            TokenKind::Access,
            TokenColumn::AccessToken,
        ),
    ];
    let tokens: Vec<_> = sealed
        .into_iter()
        .filter_map(|(data, kind, column)| data.as_ref().map(|d| (d, kind, column)))
        .collect();
    if tokens.is_empty() {
        return "no_token";
    }
    let url = match deps.providers.revocation_endpoint(provider).await {
        Ok(Some(url)) => url,
        Ok(None) => return "not_supported",
        Err(e) => {
            warn!(error = %e, "no revocation endpoint");
            return "failed";
        }
    };
    let mut failed = false;
    for (data, kind, column) in tokens {
        let binding = Binding::Account {
            provider: job.provider.as_str(),
            uid: job.uid.as_deref().unwrap_or_default(),
            column,
        };
        let opened = job.key_id.as_ref().and_then(|key_id| {
            let sealed = Sealed {
                key_id: key_id.clone(),
                data: data.clone(),
            };
            deps.cipher.open(&sealed, binding).ok()
        });
        let Some(token) = opened.map(Secret::new) else {
            failed = true;
            continue;
        };
        if deps
            .providers
            .revoke(provider, &url, &token, kind)
            .await
            .is_err()
        {
            failed = true;
        }
    }
    if failed { "failed" } else { "revoked" }
}
