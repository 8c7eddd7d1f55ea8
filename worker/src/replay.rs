//! A code posted twice (double click, mobile retry): the second job waits
//! for the first one's outcome and answers with it — the same user and
//! `is_new`, with a token of its own — instead of the provider's
//! `invalid_grant`.

use crate::deps::Deps;
use crate::error::WorkerError;
use socialauth_common::crypto::new_app_token;
use socialauth_common::jobs::{JobError, JobKind, JobResult, LoginResult};
use socialauth_common::now_ms;
use socialauth_common::store::JobStatus;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long the second job waits for the first to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(15);

pub async fn outcome_of(
    deps: &Deps,
    job_id: Uuid,
    first: Uuid,
) -> Result<LoginResult, WorkerError> {
    let deadline = Instant::now() + WAIT_FOR_FIRST;
    let result = loop {
        if let Some(job) = deps.store.find_job(first).await?
            && job.status != JobStatus::Pending
            && let Some(result) = job.result
        {
            break result;
        }
        if Instant::now() > deadline {
            return Err(JobError::InvalidCredentials.into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first_login = match result {
        JobResult::Login(login) => login,
        JobResult::Failed(e) => return Err(e.into()),
        _ => return Err(JobError::Internal.into()),
    };
    let now = now_ms();
    let (token, hash) = new_app_token();
    let expires_at = deps.policy.token_ttl_ms.map(|ttl| now.saturating_add(ttl));
    let stored = LoginResult {
        token: None,
        ..first_login
    };
    let mut tx = deps.store.begin().await?;
    tx.insert_auth_token(&hash, stored.user.id, now, expires_at)
        .await?;
    tx.upsert_job_result(
        job_id,
        JobKind::Login,
        JobStatus::Succeeded,
        &JobResult::Login(stored.clone()),
        1,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(LoginResult {
        token: Some(token),
        ..stored
    })
}
