//! A secret a job handed out, shown again — the app token of a login, the
//! partial token of a stopped one — to the one poll of a job answered with
//! 202, to a retry of the same code, to a write retried after its commit.
//! The rule every such place calls: derive it with each key it may have
//! been made with (the current key first; an older one after a rotation or
//! during a rolling deploy), and take the one whose hash the store holds.

use crate::crypto::{Issued, JobSecrets};
use crate::store::{Store, StoreError};
use crate::types::User;
use uuid::Uuid;

/// The app token job `job` issued and the user it still logs in; `None`
/// when no key makes a token the store knows (logged out, expired, or
/// made with a key no longer configured).
pub async fn app_token(
    secrets: &JobSecrets,
    store: &dyn Store,
    job: Uuid,
    now: i64,
) -> Result<Option<(Issued, User)>, StoreError> {
    for issued in secrets.app_tokens(job) {
        if let Some(user) = store.find_user_by_token(&issued.hash, now).await? {
            return Ok(Some((issued, user)));
        }
    }
    Ok(None)
}

/// The partial token job `job` made, while its partial login can still
/// be resumed; `None` once it cannot (resumed, expired, or made with a key
/// no longer configured).
pub async fn partial_token(
    secrets: &JobSecrets,
    store: &dyn Store,
    job: Uuid,
    now: i64,
) -> Result<Option<Issued>, StoreError> {
    for issued in secrets.partial_tokens(job) {
        if store.find_partial_login(&issued.hash, now).await?.is_some() {
            return Ok(Some(issued));
        }
    }
    Ok(None)
}
