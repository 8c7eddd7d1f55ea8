//! The api's side: confirmed publishing on a channel pool, replies by
//! direct reply-to on the same channels, reconnection in a background task.

use super::topology::{self, Names, Target};
use crate::config::QueueSettings;
use crate::jobs::{JobEnvelope, JobResult};
use crate::queue::{JobQueue, QueueError, ReplyWaiter};
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use uuid::Uuid;

/// How long `submit` waits for a connection while reconnecting before it
/// answers [`QueueError::Unavailable`].
const CONNECTION_WAIT: Duration = Duration::from_secs(1);
/// How long `submit` waits for the broker's confirm (it may block a
/// connection under a resource alarm).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// AMQP delivery mode of a message written to disk.
const PERSISTENT: u8 = 2;
const WAITER_SHARDS: usize = 16;

/// The api's RabbitMQ queue. Cheap to clone; the connection, its pool and
/// the reconnect task are shared and go away with the last clone.
#[derive(Clone)]
pub struct AmqpQueue {
    shared: Arc<Shared>,
    supervisor: Arc<Supervisor>,
}

struct Shared {
    names: Names,
    /// The live connection, `None` while reconnecting.
    link: watch::Receiver<Option<Arc<Link>>>,
    next_channel: AtomicUsize,
    waiters: Arc<Waiters>,
    /// A publisher saw a dead channel of the link with this generation.
    broken_generation: AtomicU64,
    broken: Notify,
    /// Set by [`AmqpQueue::close`].
    closed: AtomicBool,
}

/// One connection with everything built on it.
struct Link {
    generation: u64,
    connection: Connection,
    /// Confirm-mode channels, used round-robin.
    channels: Vec<Channel>,
    reply_queue: ShortString,
}

/// Aborts the reconnect task when the last queue handle goes away.
struct Supervisor(JoinHandle<()>);

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl AmqpQueue {
    /// Connects, declares the topology and the reply queue and opens the
    /// publishing pool. A broker that cannot be reached now is an error;
    /// later losses are repaired in the background.
    pub async fn connect(settings: &QueueSettings) -> Result<Self, QueueError> {
        let builder = LinkBuilder {
            target: Target::new(settings, "api")?,
            names: Names::new(&settings.name_prefix)?,
            channels: settings.publish_channels.max(1),
        };
        let (link, replies) = builder
            .build(1)
            .await
            .map_err(|e| topology::unavailable(&e))?;
        let (link_tx, link_rx) = watch::channel(Some(Arc::new(link)));
        let shared = Arc::new(Shared {
            names: builder.names.clone(),
            link: link_rx,
            next_channel: AtomicUsize::new(0),
            waiters: Arc::new(Waiters::default()),
            broken_generation: AtomicU64::new(0),
            broken: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let task = tokio::spawn(supervise(builder, Arc::clone(&shared), link_tx, replies));
        Ok(Self {
            shared,
            supervisor: Arc::new(Supervisor(task)),
        })
    }

    /// Jobs whose reply is awaited (for tests and a gauge).
    pub fn pending_replies(&self) -> usize {
        self.shared.waiters.len()
    }

    /// Messages waiting in each queue (`login`, `refresh`, `campaign`,
    /// `dead`), read by passive declares on a channel of their own (a
    /// failed one closes only that channel).
    pub async fn depths(&self) -> Result<Vec<(&'static str, u32)>, QueueError> {
        let link = self.link().await?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(|e| topology::unavailable(&e))?;
        let names = &self.shared.names;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let mut depths = Vec::with_capacity(4);
        for (label, name) in [
            ("login", &names.login),
            ("refresh", &names.refresh),
            ("campaign", &names.campaign),
            ("dead", &names.dead),
        ] {
            let queue = channel
                .queue_declare(name.clone(), passive, FieldTable::default())
                .await
                .map_err(|e| topology::unavailable(&e))?;
            depths.push((label, queue.message_count()));
        }
        let _ = channel.close(200, "depths read".into()).await;
        Ok(depths)
    }

    /// Stops reconnecting and closes the connection. Waiters get `None`.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.supervisor.0.abort();
        let link = self.shared.link.borrow().clone();
        if let Some(link) = link {
            topology::close_connection(&link.connection, "api closing").await;
        }
    }

    /// Closes the current connection as a broker restart would; the queue
    /// reconnects by itself. For tests of the reconnect path.
    #[doc(hidden)]
    pub async fn sever_connection(&self) {
        let link = self.shared.link.borrow().clone();
        if let Some(link) = link {
            topology::close_connection(&link.connection, "connection severed").await;
        }
    }

    /// The live connection, waiting a short while during a reconnect.
    async fn link(&self) -> Result<Arc<Link>, QueueError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(QueueError::Closed);
        }
        let mut link = self.shared.link.clone();
        match tokio::time::timeout(CONNECTION_WAIT, link.wait_for(Option::is_some)).await {
            Ok(Ok(current)) => current
                .clone()
                .ok_or_else(|| QueueError::Unavailable("reconnecting to the broker".into())),
            Ok(Err(_)) => Err(QueueError::Closed),
            Err(_) => Err(QueueError::Unavailable("reconnecting to the broker".into())),
        }
    }

    /// Tells the reconnect task that a channel of `link` is dead.
    fn report_broken(&self, link: &Link) {
        self.shared
            .broken_generation
            .store(link.generation, Ordering::SeqCst);
        self.shared.broken.notify_one();
    }

    fn properties(job: &JobEnvelope, reply_queue: &ShortString) -> BasicProperties {
        let id = ShortString::from(job.id.to_string());
        let mut properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type("application/json".into())
            .with_message_id(id.clone())
            .with_correlation_id(id)
            .with_reply_to(reply_queue.clone());
        if let Some(request_id) = &job.request_id {
            let mut headers = FieldTable::default();
            headers.insert(
                "request_id".into(),
                AMQPValue::LongString(LongString::from(request_id.as_str())),
            );
            properties = properties.with_headers(headers);
        }
        properties
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn submit(&self, job: &JobEnvelope) -> Result<ReplyWaiter, QueueError> {
        let link = self.link().await.map_err(|e| match e {
            QueueError::Unavailable(why) => QueueError::NotSent(why),
            other => other,
        })?;
        let index = self.shared.next_channel.fetch_add(1, Ordering::Relaxed) % link.channels.len();
        let channel = &link.channels[index];

        // Registered first: a fast worker may reply before the confirm.
        let (reply_tx, reply_rx) = oneshot::channel();
        let registration = self.shared.waiters.register(job.id, reply_tx);

        let published = channel
            .basic_publish(
                self.shared.names.exchange.clone(),
                self.shared.names.queue(job.kind()).clone(),
                // Not mandatory: lapin logs a returned message with its body,
                // which carries the authorization code. The topology is
                // declared on every (re)connect, so a route exists.
                BasicPublishOptions::default(),
                &job.to_json(),
                Self::properties(job, &link.reply_queue),
            )
            .await;
        let confirm = match published {
            Ok(confirm) => confirm,
            Err(error) => {
                warn!(job_id = %job.id, %error, "publishing failed");
                if !channel.status().connected() {
                    self.report_broken(&link);
                }
                return Err(QueueError::NotSent(error.to_string()));
            }
        };
        let confirmation = match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(error)) => {
                warn!(job_id = %job.id, %error, "no publisher confirm");
                if !channel.status().connected() {
                    self.report_broken(&link);
                }
                return Err(topology::unavailable(&error));
            }
            Err(_) => {
                warn!(job_id = %job.id, "publisher confirm timed out");
                return Err(QueueError::Unavailable(
                    "the broker did not confirm in time".into(),
                ));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(ReplyWaiter::new(reply_rx, Some(Box::new(registration)))),
            Confirmation::Ack(Some(_)) | Confirmation::Nack(_) | Confirmation::NotRequested => {
                warn!(job_id = %job.id, "the broker refused the job");
                Err(QueueError::NotConfirmed)
            }
        }
    }

    async fn check(&self) -> Result<(), QueueError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(QueueError::Closed);
        }
        let link = self.shared.link.borrow().clone();
        match link {
            Some(link)
                if link.connection.status().connected()
                    && link.channels.iter().all(|c| c.status().connected()) =>
            {
                Ok(())
            }
            _ => Err(QueueError::Unavailable(
                "not connected to the broker".into(),
            )),
        }
    }
}

/// Builds a [`Link`]: connection, topology, reply queue and its consumer,
/// the publishing pool.
struct LinkBuilder {
    target: Target,
    names: Names,
    channels: usize,
}

impl LinkBuilder {
    async fn build(&self, generation: u64) -> Result<(Link, Replies), lapin::Error> {
        let connection = self.target.connect().await?;
        let control = connection.create_channel().await?;
        topology::declare(&control, &self.names).await?;
        // Replies come by RabbitMQ's direct reply-to: each publishing channel
        // consumes its own, no reply queue is involved. The consumer must
        // exist before the channel publishes a job that asks for a reply.
        let mut channels = Vec::with_capacity(self.channels);
        let mut replies = Vec::with_capacity(self.channels);
        for _ in 0..self.channels {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            replies.push(
                channel
                    .basic_consume(
                        DIRECT_REPLY_TO.into(),
                        "".into(),
                        BasicConsumeOptions {
                            no_ack: true,
                            ..BasicConsumeOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await?,
            );
            channels.push(channel);
        }
        let link = Link {
            generation,
            connection,
            channels,
            reply_queue: DIRECT_REPLY_TO.into(),
        };
        Ok((link, futures_util::stream::select_all(replies)))
    }
}

/// The replies of every publishing channel, as one stream.
type Replies = futures_util::stream::SelectAll<Consumer>;

/// RabbitMQ's pseudo-queue for replies straight to the publishing channel.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Dispatches replies; when the link dies, replaces it.
async fn supervise(
    builder: LinkBuilder,
    shared: Arc<Shared>,
    link_tx: watch::Sender<Option<Arc<Link>>>,
    mut replies: Replies,
) {
    let mut generation = 1;
    loop {
        tokio::select! {
            () = dispatch_replies(&mut replies, &shared.waiters) => {
                warn!("the reply consumer stopped; reconnecting to the broker");
            }
            () = wait_broken(&shared, generation) => {
                warn!("a publishing channel failed; reconnecting to the broker");
            }
        }
        if let Some(old) = link_tx.send_replace(None) {
            topology::close_connection(&old.connection, "reconnecting").await;
        }
        // Jobs waiting on the old reply queue get their result by polling.
        let mut delays = topology::reconnect_delays();
        generation += 1;
        loop {
            match builder.build(generation).await {
                Ok((link, consumer)) => {
                    replies = consumer;
                    link_tx.send_replace(Some(Arc::new(link)));
                    metrics::counter!("socialauth_queue_reconnects_total", "side" => "api")
                        .increment(1);
                    info!(generation, "reconnected to the broker");
                    break;
                }
                Err(error) => {
                    let delay = topology::next_delay(&mut delays);
                    warn!(%error, delay_ms = delay.as_millis() as u64, "reconnecting to the broker failed");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

async fn wait_broken(shared: &Shared, generation: u64) {
    loop {
        let notified = shared.broken.notified();
        if shared.broken_generation.load(Ordering::SeqCst) == generation {
            return;
        }
        notified.await;
    }
}

async fn dispatch_replies(replies: &mut Replies, waiters: &Waiters) {
    while let Some(delivery) = replies.next().await {
        match delivery {
            Ok(delivery) => deliver_reply(waiters, &delivery),
            Err(error) => {
                warn!(%error, "the reply consumer failed");
                return;
            }
        }
    }
}

fn deliver_reply(waiters: &Waiters, delivery: &AmqpDelivery) {
    let Some(job_id) = delivery
        .properties
        .correlation_id()
        .as_ref()
        .and_then(|id| Uuid::parse_str(id.as_str()).ok())
    else {
        debug!("a reply without a usable correlation id was ignored");
        return;
    };
    let Some(waiter) = waiters.take(job_id) else {
        debug!(%job_id, "a late or unknown reply was ignored");
        return;
    };
    // The body carries the app token: neither it nor the parser's message
    // (which may quote it) is logged.
    match serde_json::from_slice::<JobResult>(&delivery.data) {
        Ok(result) => {
            // The waiter may have given up in the meantime.
            let _ = waiter.send(result);
        }
        Err(_) => warn!(%job_id, "an undecodable reply was ignored"),
    }
}

/// Job id → the waiting api request, sharded so that concurrent submits
/// and replies rarely meet on one lock. No lock is held across an await.
#[derive(Default)]
struct Waiters {
    shards: [Mutex<HashMap<Uuid, Waiter>>; WAITER_SHARDS],
    next_token: AtomicU64,
}

struct Waiter {
    token: u64,
    reply: oneshot::Sender<JobResult>,
}

impl Waiters {
    fn shard(&self, job_id: Uuid) -> MutexGuard<'_, HashMap<Uuid, Waiter>> {
        let index = (job_id.as_u128() % WAITER_SHARDS as u128) as usize;
        // A panic while holding the lock cannot leave a map half-updated.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(self: &Arc<Self>, job_id: Uuid, reply: oneshot::Sender<JobResult>) -> Registration {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.shard(job_id).insert(job_id, Waiter { token, reply });
        Registration {
            waiters: Arc::clone(self),
            job_id,
            token,
        }
    }

    fn take(&self, job_id: Uuid) -> Option<oneshot::Sender<JobResult>> {
        self.shard(job_id).remove(&job_id).map(|w| w.reply)
    }

    fn len(&self) -> usize {
        (0..WAITER_SHARDS)
            .map(|i| {
                self.shards[i]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .len()
            })
            .sum()
    }
}

/// Unregisters its waiter when dropped (with the [`ReplyWaiter`] or on a
/// failed publish), so timed-out jobs leave nothing behind.
struct Registration {
    waiters: Arc<Waiters>,
    job_id: Uuid,
    token: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut shard = self.waiters.shard(self.job_id);
        // The same job submitted again has its own registration.
        if shard
            .get(&self.job_id)
            .is_some_and(|w| w.token == self.token)
        {
            shard.remove(&self.job_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobError;

    #[tokio::test]
    async fn dropping_a_registration_removes_its_waiter() {
        let waiters = Arc::new(Waiters::default());
        let (tx, _rx) = oneshot::channel();
        let registration = waiters.register(Uuid::new_v4(), tx);
        assert_eq!(waiters.len(), 1);
        drop(registration);
        assert_eq!(waiters.len(), 0);
    }

    #[tokio::test]
    async fn a_replaced_registration_does_not_remove_the_new_waiter() {
        let waiters = Arc::new(Waiters::default());
        let id = Uuid::new_v4();
        let (tx1, _rx1) = oneshot::channel();
        let first = waiters.register(id, tx1);
        let (tx2, rx2) = oneshot::channel();
        let _second = waiters.register(id, tx2);
        drop(first);
        let reply = waiters.take(id).expect("second waiter still registered");
        reply
            .send(JobResult::Failed(JobError::Internal))
            .expect("send");
        assert!(rx2.await.is_ok());
    }

    #[tokio::test]
    async fn a_taken_waiter_is_gone() {
        let waiters = Arc::new(Waiters::default());
        let id = Uuid::new_v4();
        let (tx, _rx) = oneshot::channel();
        let _registration = waiters.register(id, tx);
        assert!(waiters.take(id).is_some());
        assert!(waiters.take(id).is_none());
        assert_eq!(waiters.len(), 0);
    }
}
