//! In-process queue for the embedded mode: a bounded channel from the api
//! to the worker running in the same process. Nothing survives a restart
//! (the job rows in the database do), nothing is redelivered.

use crate::jobs::{JobEnvelope, JobResult};
use crate::queue::{Delivery, DeliveryHandle, JobQueue, JobSource, QueueError, ReplyWaiter};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use uuid::Uuid;

struct Queued {
    job: JobEnvelope,
    reply: oneshot::Sender<JobResult>,
}

/// The api's side. Clones share one channel.
#[derive(Clone)]
pub struct InProcessQueue {
    tx: mpsc::Sender<Queued>,
}

/// The worker's side.
pub struct InProcessSource {
    rx: mpsc::Receiver<Queued>,
}

impl InProcessQueue {
    /// A queue holding at most `capacity` jobs not yet taken by the worker;
    /// beyond that `submit` waits (backpressure), it never drops a job.
    pub fn new(capacity: usize) -> (InProcessQueue, InProcessSource) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (InProcessQueue { tx }, InProcessSource { rx })
    }
}

impl InProcessSource {
    /// Refuses new jobs; `next()` still yields those already queued, then
    /// `None`.
    pub fn close(&mut self) {
        self.rx.close();
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn submit(&self, job: &JobEnvelope) -> Result<ReplyWaiter, QueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Queued {
                job: job.clone(),
                reply,
            })
            .await
            .map_err(|_| QueueError::Closed)?;
        Ok(ReplyWaiter::new(rx, None))
    }

    async fn check(&self) -> Result<(), QueueError> {
        if self.tx.is_closed() {
            Err(QueueError::Closed)
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl JobSource for InProcessSource {
    async fn next(&mut self) -> Option<Delivery> {
        let Queued { job, reply } = self.rx.recv().await?;
        let handle = InProcessHandle {
            job_id: job.id,
            reply,
        };
        Some(Delivery {
            kind: job.kind(),
            job: Ok(job),
            redelivered: false,
            handle: Box::new(handle),
        })
    }
}

struct InProcessHandle {
    job_id: Uuid,
    reply: oneshot::Sender<JobResult>,
}

#[async_trait]
impl DeliveryHandle for InProcessHandle {
    async fn complete(self: Box<Self>, reply: &JobResult) -> Result<(), QueueError> {
        // The api may have stopped waiting: the result is in the database.
        let _ = self.reply.send(reply.clone());
        Ok(())
    }

    async fn dead_letter(
        self: Box<Self>,
        reply: Option<&JobResult>,
        _reason: Option<&'static str>,
    ) -> Result<(), QueueError> {
        warn!(job_id = %self.job_id, "job dead-lettered (the in-process queue drops it)");
        if let Some(reply) = reply {
            let _ = self.reply.send(reply.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{DiscoverJob, DiscoveredEndpoints, Job, JobError};
    use std::collections::HashSet;
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(10);

    fn job() -> JobEnvelope {
        JobEnvelope::new(
            Job::Discover(DiscoverJob {
                provider: crate::types::ProviderName::parse("corp").expect("name"),
            }),
            Some("r-1".into()),
        )
    }

    fn endpoint(id: Uuid) -> JobResult {
        JobResult::Discovered(DiscoveredEndpoints {
            authorization_endpoint: format!("https://id.test/{id}"),
        })
    }

    async fn next(source: &mut InProcessSource) -> Delivery {
        tokio::time::timeout(DEADLINE, source.next())
            .await
            .expect("a delivery in time")
            .expect("the queue is open")
    }

    #[tokio::test]
    async fn a_completed_job_replies_to_its_waiter() {
        let (queue, mut source) = InProcessQueue::new(8);
        let sent = job();
        let waiter = queue.submit(&sent).await.expect("submit");

        let delivery = next(&mut source).await;
        assert!(!delivery.redelivered);
        assert_eq!(delivery.job_id(), Some(sent.id));
        assert_eq!(delivery.kind, sent.kind());
        let received = delivery.job.as_ref().expect("decoded");
        assert_eq!(received.request_id.as_deref(), Some("r-1"));
        delivery
            .handle
            .complete(&endpoint(sent.id))
            .await
            .expect("complete");

        let Some(JobResult::Discovered(found)) = waiter.wait(DEADLINE).await else {
            panic!("no reply")
        };
        assert_eq!(
            found.authorization_endpoint,
            format!("https://id.test/{}", sent.id)
        );
    }

    #[tokio::test]
    async fn a_dead_lettered_job_sends_the_reply_it_is_given() {
        let (queue, mut source) = InProcessQueue::new(8);
        let waiter = queue.submit(&job()).await.expect("submit");
        let delivery = next(&mut source).await;
        delivery
            .handle
            .dead_letter(Some(&JobResult::Failed(JobError::Internal)), None)
            .await
            .expect("dead-letter");
        assert!(matches!(
            waiter.wait(DEADLINE).await,
            Some(JobResult::Failed(JobError::Internal))
        ));
    }

    #[tokio::test]
    async fn a_dead_lettered_job_without_reply_releases_its_waiter_at_once() {
        let (queue, mut source) = InProcessQueue::new(8);
        let waiter = queue.submit(&job()).await.expect("submit");
        let delivery = next(&mut source).await;
        delivery
            .handle
            .dead_letter(None, None)
            .await
            .expect("dead-letter");
        // Well before the generous timeout: the reply sender is gone.
        let started = tokio::time::Instant::now();
        assert!(waiter.wait(DEADLINE).await.is_none());
        assert!(started.elapsed() < DEADLINE);
    }

    #[tokio::test]
    async fn completing_after_the_waiter_gave_up_is_not_an_error() {
        let (queue, mut source) = InProcessQueue::new(8);
        let sent = job();
        let waiter = queue.submit(&sent).await.expect("submit");
        assert!(waiter.wait(Duration::from_millis(1)).await.is_none());
        let delivery = next(&mut source).await;
        delivery
            .handle
            .complete(&endpoint(sent.id))
            .await
            .expect("a late completion is fine");
    }

    #[tokio::test]
    async fn a_full_queue_makes_submit_wait_and_loses_no_job() {
        const JOBS: usize = 50;
        let (queue, mut source) = InProcessQueue::new(2);
        let jobs: Vec<JobEnvelope> = (0..JOBS).map(|_| job()).collect();
        let expected: HashSet<Uuid> = jobs.iter().map(|j| j.id).collect();

        // Fill the queue; the next submit has to wait for the worker.
        for j in &jobs[..2] {
            queue.submit(j).await.expect("submit");
        }
        let mut blocked = Box::pin(queue.submit(&jobs[2]));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut blocked)
                .await
                .is_err(),
            "submit returned although the queue was full"
        );

        let producer = {
            let queue = queue.clone();
            let rest = jobs[3..].to_vec();
            tokio::spawn(async move {
                let mut waiters = Vec::new();
                for j in &rest {
                    waiters.push(queue.submit(j).await.expect("submit"));
                }
                waiters
            })
        };

        let mut seen = HashSet::new();
        let mut taken = Vec::new();
        // The first delivery frees a slot, which lets `blocked` finish.
        taken.push(next(&mut source).await);
        tokio::time::timeout(DEADLINE, blocked)
            .await
            .expect("submit resumes once there is room")
            .expect("submit");
        while taken.len() < JOBS {
            taken.push(next(&mut source).await);
        }
        for delivery in taken {
            let id = delivery.job_id().expect("decoded");
            assert!(seen.insert(id), "job {id} delivered twice");
            delivery
                .handle
                .complete(&endpoint(id))
                .await
                .expect("complete");
        }
        assert_eq!(seen, expected);
        let waiters = tokio::time::timeout(DEADLINE, producer)
            .await
            .expect("producer done")
            .expect("producer task");
        assert_eq!(waiters.len(), JOBS - 3);
    }

    #[tokio::test]
    async fn check_and_submit_fail_once_the_worker_side_is_gone() {
        let (queue, source) = InProcessQueue::new(8);
        queue.check().await.expect("open");
        drop(source);
        assert!(matches!(queue.check().await, Err(QueueError::Closed)));
        assert!(matches!(
            queue.submit(&job()).await,
            Err(QueueError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_closed_source_drains_what_was_queued_then_ends() {
        let (queue, mut source) = InProcessQueue::new(8);
        let sent = job();
        let _waiter = queue.submit(&sent).await.expect("submit");
        source.close();
        assert!(matches!(
            queue.submit(&job()).await,
            Err(QueueError::Closed)
        ));
        assert_eq!(next(&mut source).await.job_id(), Some(sent.id));
        let end = tokio::time::timeout(DEADLINE, source.next())
            .await
            .expect("in time");
        assert!(end.is_none());
    }
}
