//! A retry of a used credential (a code posted twice, a djoser callback
//! submitted twice) within its window (`redemption::retry_of`): the second
//! job waits for the first one's outcome and answers with it — the same
//! user, `is_new` and the very same app token, never a second one — instead
//! of the provider's `invalid_grant`.

use crate::deps::Deps;
use crate::error::WorkerError;
use socialauth_common::jobs::{JobError, JobKind, JobResult, LoginResult};
use socialauth_common::store::JobStatus;
use socialauth_common::{now_ms, reissue};
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
        JobResult::Failed(e) => {
            // The same resumable stop, with the same partial token.
            return Err(match e.missing_partial_token() {
                Some(job) => {
                    let now = now_ms();
                    let issued =
                        reissue::partial_token(&deps.secrets, deps.store.as_ref(), job, now)
                            .await?
                            .unwrap_or_else(|| deps.secrets.partial_token(job));
                    e.with_partial_token(issued.token)
                }
                None => e,
            }
            .into());
        }
        // Not a login's (an association's job): nothing to answer a login
        // with.
        _ => return Err(JobError::InvalidCredentials.into()),
    };
    let token_job = first_login.token_job.unwrap_or(first);
    // The first job's token, if it still works (not logged out), made with
    // the key that made it.
    let now = now_ms();
    let issued =
        match reissue::app_token(&deps.secrets, deps.store.as_ref(), token_job, now).await? {
            Some((issued, holder)) if holder.id == first_login.user.id => issued,
            _ => return Err(JobError::InvalidCredentials.into()),
        };
    let stored = LoginResult {
        token: None,
        token_job: Some(token_job),
        ..first_login
    };
    let mut tx = deps.store.begin().await?;
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
        token: Some(issued.token),
        ..stored
    })
}
