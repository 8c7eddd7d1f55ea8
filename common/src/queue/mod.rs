//! The job queue. The api side ([`JobQueue`]) publishes a job (with a
//! publisher confirm on RabbitMQ) and gets a [`ReplyWaiter`] for the fast
//! reply, matched by correlation id. The worker side ([`JobSource`]) yields
//! [`Delivery`]s; the worker acknowledges one only after its database commit.
//!
//! Two implementations: RabbitMQ ([`amqp`]) and in-process ([`inproc`]).

pub mod amqp;
pub mod inproc;

use crate::jobs::{JobEnvelope, JobKind, JobResult};
use async_trait::async_trait;
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The job certainly did not reach the queue (no connection, or the
    /// broker refused it): what was set aside for it may be given back.
    #[error("queue unavailable: {0}")]
    NotSent(String),
    #[error("the broker did not confirm the message")]
    NotConfirmed,
    #[error("queue closed")]
    Closed,
}

impl QueueError {
    /// The job certainly did not reach the queue: never handed to the
    /// broker, refused by it, or the queue is closed. (A lost or late
    /// confirmation leaves it unknown.)
    pub fn certainly_not_sent(&self) -> bool {
        matches!(self, Self::NotSent(_) | Self::NotConfirmed | Self::Closed)
    }
}

/// Waits for the reply to one submitted job. Dropping it unregisters the
/// job, so a late reply is discarded (the result is in the database).
pub struct ReplyWaiter {
    rx: oneshot::Receiver<JobResult>,
    _guard: Option<Box<dyn Send + Sync>>,
}

impl ReplyWaiter {
    /// `guard` is dropped with the waiter (used to unregister the job).
    pub fn new(rx: oneshot::Receiver<JobResult>, guard: Option<Box<dyn Send + Sync>>) -> Self {
        Self { rx, _guard: guard }
    }

    /// The reply, or `None` after `timeout` or when the queue went away.
    pub async fn wait(self, timeout: Duration) -> Option<JobResult> {
        let Self { rx, _guard } = self;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => Some(result),
            _ => None,
        }
    }
}

/// The api's side of the queue.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Publishes `job` durably (confirmed by the broker before returning)
    /// and registers a waiter for its reply.
    async fn submit(&self, job: &JobEnvelope) -> Result<ReplyWaiter, QueueError>;
    /// Whether the queue can take jobs now (readiness).
    async fn check(&self) -> Result<(), QueueError>;
}

/// One job handed to a worker.
pub struct Delivery {
    /// The decoded envelope, or why it could not be decoded.
    pub job: Result<JobEnvelope, String>,
    /// The broker delivered it before (a worker died or lost its connection
    /// before acknowledging): look for a stored result first.
    pub redelivered: bool,
    pub kind: JobKind,
    pub handle: Box<dyn DeliveryHandle>,
}

impl Delivery {
    pub fn job_id(&self) -> Option<Uuid> {
        self.job.as_ref().ok().map(|j| j.id)
    }
}

/// Settles one delivery. Call exactly one of the two.
#[async_trait]
pub trait DeliveryHandle: Send {
    /// Sends `reply` to the waiting api (if any), then acknowledges.
    async fn complete(self: Box<Self>, reply: &JobResult) -> Result<(), QueueError>;
    /// Sends `reply` (if any), then moves the job to the `dead` queue, as
    /// a summary saying why: `reason`, or else the reply's error.
    async fn dead_letter(
        self: Box<Self>,
        reply: Option<&JobResult>,
        reason: Option<&'static str>,
    ) -> Result<(), QueueError>;
}

/// The worker's side of the queue.
#[async_trait]
pub trait JobSource: Send {
    /// The next delivery; `None` once the source is closed for good.
    /// Reconnects by itself after a broker restart.
    async fn next(&mut self) -> Option<Delivery>;
    /// Stops taking deliveries (the broker stops sending); those handed
    /// out can still be settled.
    async fn close(&mut self) {}
}

/// Runs `connect` until it succeeds, backing off (with jitter) for about a
/// minute: at start-up the broker may still be booting (compose, restarts).
pub async fn connect_with_retry<T, F, Fut>(what: &str, connect: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, QueueError>>,
{
    use backon::{ExponentialBuilder, Retryable};
    connect
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(15)
                .with_jitter(),
        )
        .notify(|e, after| {
            tracing::warn!(what, error = %e, retry_in = ?after, "queue not reachable yet");
        })
        .await
}

/// Jobs of one kind to one queue, every other job to another: the embedded
/// mode's campaign jobs get their own in-process queue (and slots).
pub struct ByKind {
    pub kind: crate::jobs::JobKind,
    pub to: std::sync::Arc<dyn JobQueue>,
    pub rest: std::sync::Arc<dyn JobQueue>,
}

#[async_trait]
impl JobQueue for ByKind {
    async fn submit(&self, job: &JobEnvelope) -> Result<ReplyWaiter, QueueError> {
        if job.kind() == self.kind {
            self.to.submit(job).await
        } else {
            self.rest.submit(job).await
        }
    }

    async fn check(&self) -> Result<(), QueueError> {
        self.to.check().await?;
        self.rest.check().await
    }
}
