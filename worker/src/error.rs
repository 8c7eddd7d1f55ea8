//! The worker's error boundary.

use crate::providers::{NonceProblem, ProviderError};
use socialauth_common::jobs::JobError;
use socialauth_common::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A final outcome the client is told about (stored with the job).
    #[error("{0}")]
    Job(#[from] JobError),
    /// The store failed; the job may be retried.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Something of this process failed (a queue, a task).
    #[error("{0}")]
    Internal(String),
}

impl WorkerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_transient())
    }

    /// What the client is told when the job ends with this error.
    pub fn to_job_error(&self) -> JobError {
        match self {
            Self::Job(e) => e.clone(),
            Self::Store(_) | Self::Internal(_) => JobError::Internal,
        }
    }
}

impl From<ProviderError> for WorkerError {
    fn from(e: ProviderError) -> Self {
        Self::Job(match e {
            ProviderError::Refused(_) => JobError::InvalidCredentials,
            ProviderError::Nonce(NonceProblem::Missing) => JobError::NonceRequired,
            ProviderError::Nonce(NonceProblem::Mismatch(expected)) => {
                JobError::NonceMismatch { expected }
            }
            ProviderError::Unavailable(_) | ProviderError::Misconfigured(_) => {
                JobError::ProviderUnavailable
            }
        })
    }
}
