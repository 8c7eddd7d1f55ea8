//! Re-encryption (`POST /admin/reencrypt`): every link's sealed provider
//! tokens opened and sealed again with the current key in the current
//! format, page by page in link id order. Every worker (and the embedded
//! default) looks for a running re-encryption whose key is its own current
//! key every `[reencrypt] poll_interval_ms`; one holds it under a lease
//! and writes each page with its place, so another goes on from there when
//! it dies. A page's writes hold only while a link's tokens are still as
//! read: a refresh or a sign-in that wrote meanwhile keeps what it wrote
//! (sealed with the current key already).
//!
//! Metrics: `socialauth_reencrypt_rows_total{outcome}` (moved, changed,
//! failed) as pages are written; `socialauth_sealed_tokens{key_id,
//! format}`, links by key and format, counted when a re-encryption starts
//! and when it ends. The api exports each re-encryption's progress from
//! the database at every scrape.

use crate::deps::Deps;
use socialauth_common::config::ReencryptSettings;
use socialauth_common::crypto::{
    Binding, CryptoError, SealFormat, Sealed, TokenCipher, TokenColumn,
};
use socialauth_common::now_ms;
use socialauth_common::store::{
    Reencryption, ReencryptionPage, Resealed, SealedCount, SealedTokens, StoreError, StoredAccount,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};
use uuid::Uuid;

/// Looks for a re-encryption to work on every `settings.poll_interval_ms`
/// (with jitter) until `stop`; 0: never.
pub async fn run(deps: Arc<Deps>, settings: ReencryptSettings, mut stop: watch::Receiver<bool>) {
    if settings.poll_interval_ms == 0 {
        return;
    }
    // This process, as the holder of a re-encryption's lease: after an
    // error it takes its own again at once.
    let owner = Uuid::new_v4();
    let every = Duration::from_millis(settings.poll_interval_ms);
    loop {
        let jitter = every.mul_f64(rand::random::<f64>() * 0.2);
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(every + jitter) => {}
        }
        if let Err(e) = work(&deps, &settings, owner, &stop).await {
            warn!(error = %e, "re-encryption interrupted; it goes on at the next look");
        }
    }
}

/// Takes the running re-encryption to this process's current key, if any
/// is free, and works through it until it is done, cancelled, taken over
/// or this process stops.
pub async fn work(
    deps: &Deps,
    settings: &ReencryptSettings,
    owner: Uuid,
    stop: &watch::Receiver<bool>,
) -> Result<Option<Reencryption>, StoreError> {
    let cipher = deps.cipher.as_ref();
    let key_id = cipher.current_key_id();
    let lease_ms = i64::try_from(settings.lease_secs.max(1).saturating_mul(1000)).unwrap_or(60_000);
    let now = now_ms();
    let Some(run) = deps
        .store
        .take_reencryption(key_id, owner, now, now.saturating_add(lease_ms))
        .await?
    else {
        return Ok(None);
    };
    info!(id = %run.id, key_id, after_id = run.after_id, "re-encryption taken");
    let started = deps.store.count_sealed_tokens().await?;
    export_sealed(&started, &[]);
    if run.total.is_none() {
        deps.store
            .set_reencryption_total(run.id, owner, due(&started, key_id))
            .await?;
    }
    let page_size = settings.page_size.max(1);
    let mut after = run.after_id;
    loop {
        if *stop.borrow() {
            deps.store.release_reencryption(run.id, owner).await?;
            info!(id = %run.id, after_id = after, "re-encryption left for another process");
            return Ok(None);
        }
        let rows = deps
            .store
            .find_reencryption_due(key_id, after, page_size)
            .await?;
        let Some(to) = rows.last().map(|r| r.account.id) else {
            let ended = deps.store.count_sealed_tokens().await?;
            export_sealed(&ended, &started);
            let remaining = due(&ended, key_id);
            let finished = deps
                .store
                .finish_reencryption(run.id, owner, remaining, now_ms())
                .await?;
            if finished {
                info!(id = %run.id, key_id, remaining, "re-encryption done");
            }
            return deps.store.find_reencryption(run.id).await;
        };
        let (items, failed) = reseal_page(cipher, &rows);
        let now = now_ms();
        let page = ReencryptionPage {
            id: run.id,
            owner,
            from: after,
            to,
            items: &items,
            failed: i64::try_from(failed).unwrap_or(i64::MAX),
            now,
            lease_until: now.saturating_add(lease_ms),
        };
        let Some(written) = deps.store.write_reencryption_page(&page).await? else {
            info!(id = %run.id, "re-encryption no longer held here (cancelled, or taken over)");
            return Ok(None);
        };
        let changed = items.len() - written.len();
        for (outcome, n) in [
            ("moved", written.len()),
            ("changed", changed),
            ("failed", failed),
        ] {
            metrics::counter!("socialauth_reencrypt_rows_total", "outcome" => outcome)
                .increment(n as u64);
        }
        after = to;
        if settings.pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(settings.pause_ms)).await;
        }
    }
}

/// Links of `counts` not under `key_id` in the current format.
fn due(counts: &[SealedCount], key_id: &str) -> i64 {
    counts
        .iter()
        .filter(|c| c.key_id != key_id || c.format != SealFormat::CURRENT.as_str())
        .map(|c| c.links)
        .sum()
}

/// `socialauth_sealed_tokens{key_id, format}` as counted; a pair counted
/// `before` and no longer there is 0.
fn export_sealed(counts: &[SealedCount], before: &[SealedCount]) {
    for gone in before.iter().filter(|b| {
        !counts
            .iter()
            .any(|c| c.key_id == b.key_id && c.format == b.format)
    }) {
        metrics::gauge!("socialauth_sealed_tokens", "key_id" => gone.key_id.clone(), "format" => gone.format.clone())
            .set(0.0);
    }
    for c in counts {
        metrics::gauge!("socialauth_sealed_tokens", "key_id" => c.key_id.clone(), "format" => c.format.clone())
            .set(c.links as f64);
    }
}

/// Each link's tokens sealed again, and how many links could not be
/// opened (left as they are, each named in the log).
pub fn reseal_page(cipher: &TokenCipher, rows: &[StoredAccount]) -> (Vec<Resealed>, usize) {
    let mut items = Vec::with_capacity(rows.len());
    let mut failed = 0;
    for stored in rows {
        match reseal(cipher, stored) {
            Ok(item) => items.push(item),
            Err(e) => {
                failed += 1;
                warn!(
                    account_id = stored.account.id,
                    provider = stored.account.provider,
                    error = %e,
                    "a link's tokens could not be opened to seal them again"
                );
            }
        }
    }
    (items, failed)
}

/// One link's tokens opened and sealed again for the same columns.
fn reseal(cipher: &TokenCipher, stored: &StoredAccount) -> Result<Resealed, CryptoError> {
    let tokens = &stored.tokens;
    let key_id = tokens
        .key_id
        .clone()
        .ok_or_else(|| CryptoError::UnknownKeyId(String::new()))?;
    let again = |data: &Option<String>, column| {
        data.as_ref()
            .map(|data| {
                let sealed = Sealed {
                    key_id: key_id.clone(),
                    data: data.clone(),
                };
                let binding = Binding::Account {
                    provider: &stored.account.provider,
                    uid: &stored.account.uid,
                    column,
                };
                cipher.reseal(&sealed, binding).map(|s| s.data)
            })
            .transpose()
    };
    Ok(Resealed {
        account_id: stored.account.id,
        new: SealedTokens {
            key_id: Some(cipher.current_key_id().to_owned()),
            access_token: again(&tokens.access_token, TokenColumn::AccessToken)?,
            refresh_token: again(&tokens.refresh_token, TokenColumn::RefreshToken)?,
            token_secret: again(&tokens.token_secret, TokenColumn::TokenSecret)?,
            expires_at: tokens.expires_at,
        },
        old: tokens.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use socialauth_common::crypto::generate_key;
    use socialauth_common::types::{SocialAccount, UserId};

    fn link(id: i64, uid: &str, tokens: SealedTokens) -> StoredAccount {
        StoredAccount {
            account: SocialAccount {
                id,
                user_id: UserId(1),
                provider: "corp".into(),
                uid: uid.into(),
                email: None,
                expires_at: tokens.expires_at,
                needs_reauth: false,
                created_at: 0,
                last_login_at: 0,
            },
            tokens,
        }
    }

    fn sealed(cipher: &TokenCipher, uid: &str, secret: bool) -> SealedTokens {
        let seal = |v: &str, column| {
            let binding = Binding::Account {
                provider: "corp",
                uid,
                column,
            };
            cipher.seal(v, binding).data
        };
        SealedTokens {
            key_id: Some(cipher.current_key_id().to_owned()),
            access_token: Some(seal("at", TokenColumn::AccessToken)),
            refresh_token: Some(seal("rt", TokenColumn::RefreshToken)),
            token_secret: secret.then(|| seal("ts", TokenColumn::TokenSecret)),
            expires_at: Some(7),
        }
    }

    #[test]
    fn a_page_is_sealed_again_with_the_current_key_for_the_same_columns() {
        let (k1, k2) = (generate_key(), generate_key());
        let old = TokenCipher::new("k1", [("k1", k1.as_str())]).expect("key");
        let new = TokenCipher::new("k2", [("k2", k2.as_str()), ("k1", k1.as_str())]).expect("keys");
        let rows = [
            link(1, "alice", sealed(&old, "alice", false)),
            link(2, "bob", sealed(&old, "bob", true)),
            // Bob's tokens copied onto carol's row: they do not open there.
            link(3, "carol", sealed(&old, "bob", false)),
        ];
        let (items, failed) = reseal_page(&new, &rows);
        assert_eq!(failed, 1);
        assert_eq!(items.len(), 2);
        for (item, row) in items.iter().zip(&rows) {
            assert_eq!(item.account_id, row.account.id);
            assert_eq!(item.old.access_token, row.tokens.access_token);
            assert_eq!(item.new.key_id.as_deref(), Some("k2"));
            assert_eq!(item.new.expires_at, Some(7));
            let open = |data: &Option<String>, column| {
                let sealed = Sealed {
                    key_id: "k2".into(),
                    data: data.clone().expect("sealed"),
                };
                let binding = Binding::Account {
                    provider: "corp",
                    uid: &row.account.uid,
                    column,
                };
                new.open(&sealed, binding).expect("open")
            };
            assert_eq!(open(&item.new.access_token, TokenColumn::AccessToken), "at");
            assert_eq!(
                open(&item.new.refresh_token, TokenColumn::RefreshToken),
                "rt"
            );
            assert!(new.is_current("k2", item.new.access_token.as_deref().unwrap_or_default()));
        }
        assert_eq!(items[0].new.token_secret, None);
        assert!(items[1].new.token_secret.is_some());
    }

    #[test]
    fn due_links_are_those_under_another_key_or_format() {
        let count = |key_id: &str, format: &str, links| SealedCount {
            key_id: key_id.into(),
            format: format.into(),
            links,
        };
        let counts = [
            count("k1", "v1", 5),
            count("k1", "v2", 7),
            count("k2", "v1", 11),
            count("k2", "v2", 13),
        ];
        assert_eq!(due(&counts, "k2"), 23);
        assert_eq!(due(&counts, "k1"), 29);
        assert_eq!(due(&[], "k2"), 0);
    }
}
