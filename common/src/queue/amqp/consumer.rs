//! The worker's side: consumers with manual acknowledgement, replies to
//! the api, reconnection inside [`JobSource::next`].

use super::topology::{self, Names, Target};
use crate::config::QueueSettings;
use crate::jobs::{JobEnvelope, JobKind, JobResult};
use crate::queue::{Delivery, DeliveryHandle, JobSource, QueueError};
use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream, SelectAll};
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Acker, BasicProperties, Channel, Connection};
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use uuid::Uuid;

/// AMQP delivery mode of a message kept in memory only.
const TRANSIENT: u8 = 1;
/// AMQP delivery mode of a message written to disk.
const PERSISTENT: u8 = 2;

/// The worker's RabbitMQ source: consumes the queues of its job kinds.
///
/// [`JobSource::next`] reconnects by itself when the broker goes away and
/// returns `None` only after [`SourceCloser::close`].
pub struct AmqpSource {
    connector: Connector,
    /// `None` while disconnected.
    session: Option<Session>,
    closer: SourceCloser,
    closed: watch::Receiver<bool>,
    /// Consumers were cancelled after a close.
    stopped: bool,
}

/// Closes an [`AmqpSource`] from another task: the pending and every later
/// `next()` return `None`, the broker stops sending, and deliveries already
/// handed out can still be completed.
#[derive(Clone)]
pub struct SourceCloser(Arc<watch::Sender<bool>>);

impl SourceCloser {
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

/// One connection with a consuming channel per job kind.
struct Session {
    connection: Connection,
    /// (channel, consumer tag) of each consumer.
    consumers: Vec<(Channel, ShortString)>,
    events: SelectAll<BoxStream<'static, Event>>,
}

enum Event {
    Delivery(JobKind, Channel, Box<AmqpDelivery>),
    Failed(JobKind, lapin::Error),
    /// The broker cancelled the consumer or its channel closed.
    Ended(JobKind),
}

impl AmqpSource {
    /// Connects, declares the topology and starts consuming the queues of
    /// `kinds` with `prefetch` unacknowledged deliveries per queue. A broker
    /// that cannot be reached now is an error; later losses are repaired by
    /// `next()`.
    pub async fn connect(settings: &QueueSettings, kinds: &[JobKind]) -> Result<Self, QueueError> {
        let mut unique: Vec<JobKind> = Vec::with_capacity(kinds.len());
        for kind in kinds {
            if !unique.contains(kind) {
                unique.push(*kind);
            }
        }
        if unique.is_empty() {
            return Err(QueueError::Unavailable("no job kinds to consume".into()));
        }
        let (closed_tx, closed) = watch::channel(false);
        let connector = Connector {
            target: Target::new(settings, "worker")?,
            names: Names::new(&settings.name_prefix)?,
            kinds: unique,
            prefetch: settings.prefetch,
            dead_letter_ttl_ms: settings.dead_letter_ttl_secs.saturating_mul(1000),
        };
        let session = connector
            .open()
            .await
            .map_err(|e| topology::unavailable(&e))?;
        Ok(Self {
            connector,
            session: Some(session),
            closer: SourceCloser(Arc::new(closed_tx)),
            closed,
            stopped: false,
        })
    }

    /// A handle that closes this source from another task.
    pub fn closer(&self) -> SourceCloser {
        self.closer.clone()
    }

    /// Closes the current connection as a broker restart would; the next
    /// `next()` reconnects. For tests of the reconnect path.
    #[doc(hidden)]
    pub async fn sever_connection(&self) {
        if let Some(session) = &self.session {
            topology::close_connection(&session.connection, "connection severed").await;
        }
    }

    /// After a close: the broker stops sending; the connection stays open
    /// so that deliveries handed out can still be settled.
    async fn stop_consuming(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(session) = &self.session {
            for (channel, tag) in &session.consumers {
                let cancel = channel.basic_cancel(tag.clone(), BasicCancelOptions::default());
                if let Ok(Err(error)) = tokio::time::timeout(topology::CLOSE_TIMEOUT, cancel).await
                {
                    debug!(%error, "cancelling a consumer failed");
                }
            }
        }
    }
}

/// What a (re)connection needs.
struct Connector {
    target: Target,
    names: Names,
    kinds: Vec<JobKind>,
    prefetch: u16,
    dead_letter_ttl_ms: u64,
}

impl Connector {
    async fn open(&self) -> Result<Session, lapin::Error> {
        let connection = self.target.connect().await?;
        let mut consumers = Vec::with_capacity(self.kinds.len());
        let mut events = SelectAll::new();
        for (index, &kind) in self.kinds.iter().enumerate() {
            let channel = connection.create_channel().await?;
            if index == 0 {
                topology::declare(&channel, &self.names).await?;
            }
            // Per consumer: each kind has its own budget, so a refresh
            // campaign cannot take every slot from logins.
            channel
                .basic_qos(self.prefetch, BasicQosOptions::default())
                .await?;
            let consumer = channel
                .basic_consume(
                    self.names.queue(kind).clone(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            consumers.push((channel.clone(), consumer.tag()));
            let deliveries = consumer
                .map(move |delivery| match delivery {
                    Ok(delivery) => Event::Delivery(kind, channel.clone(), Box::new(delivery)),
                    Err(error) => Event::Failed(kind, error),
                })
                .chain(stream::once(async move { Event::Ended(kind) }));
            events.push(deliveries.boxed());
        }
        Ok(Session {
            connection,
            consumers,
            events,
        })
    }

    /// Connects again, pausing with backoff and jitter between attempts.
    /// `None` when the source is closed meanwhile.
    async fn reconnect(&self, closed: &watch::Receiver<bool>) -> Option<Session> {
        let mut delays = topology::reconnect_delays();
        loop {
            let mut closed = closed.clone();
            tokio::select! {
                () = wait_closed(&mut closed) => return None,
                opened = self.open() => match opened {
                    Ok(session) => {
                        metrics::counter!("socialauth_queue_reconnects_total", "side" => "worker")
                            .increment(1);
                        info!("reconnected to the broker");
                        return Some(session);
                    }
                    Err(error) => {
                        let delay = topology::next_delay(&mut delays);
                        warn!(%error, delay_ms = delay.as_millis() as u64, "reconnecting to the broker failed");
                        tokio::select! {
                            () = wait_closed(&mut closed) => return None,
                            () = tokio::time::sleep(delay) => {}
                        }
                    }
                },
            }
        }
    }
}

#[async_trait]
impl JobSource for AmqpSource {
    async fn close(&mut self) {
        self.closer.close();
        self.stop_consuming().await;
    }

    async fn next(&mut self) -> Option<Delivery> {
        loop {
            if *self.closed.borrow() {
                self.stop_consuming().await;
                return None;
            }
            if self.session.is_none() {
                let session = self.connector.reconnect(&self.closed).await;
                self.session = session;
                continue;
            }
            let mut closed = self.closed.clone();
            let event = match self.session.as_mut() {
                Some(session) => tokio::select! {
                    biased;
                    () = wait_closed(&mut closed) => continue,
                    event = session.events.next() => event,
                },
                None => continue,
            };
            match event {
                Some(Event::Delivery(kind, channel, delivery)) => {
                    let dead = DeadLetters {
                        exchange: self.connector.names.exchange.clone(),
                        routing_key: self.connector.names.dead.clone(),
                        ttl_ms: self.connector.dead_letter_ttl_ms,
                    };
                    return Some(into_delivery(kind, channel, *delivery, dead));
                }
                Some(Event::Failed(kind, error)) => {
                    warn!(queue = kind.as_str(), %error, "consuming failed; reconnecting");
                }
                Some(Event::Ended(kind)) => {
                    warn!(
                        queue = kind.as_str(),
                        "the consumer was cancelled; reconnecting"
                    );
                }
                None => warn!("every consumer stopped; reconnecting"),
            }
            // Deliveries of the old connection can no longer be settled:
            // the broker delivers them again.
            if let Some(old) = self.session.take() {
                topology::close_connection(&old.connection, "reconnecting").await;
            }
        }
    }
}

async fn wait_closed(closed: &mut watch::Receiver<bool>) {
    if closed.wait_for(|closed| *closed).await.is_err() {
        // The sender lives in the source itself: never reached.
        std::future::pending::<()>().await;
    }
}

fn into_delivery(
    kind: JobKind,
    channel: Channel,
    delivery: AmqpDelivery,
    dead: DeadLetters,
) -> Delivery {
    let job = decode(&delivery.data);
    let properties = &delivery.properties;
    let reply = properties
        .reply_to()
        .clone()
        .zip(properties.correlation_id().clone());
    let summary = match &job {
        Ok(envelope) => envelope.dead_letter_summary(),
        Err(reason) => serde_json::json!({
            "undecodable": reason,
            "bytes": delivery.data.len(),
        }),
    };
    let handle = AmqpDeliveryHandle {
        channel,
        acker: delivery.acker,
        reply,
        job_id: job.as_ref().ok().map(|job| job.id),
        kind,
        summary,
        dead,
    };
    Delivery {
        job,
        redelivered: delivery.redelivered,
        kind,
        handle: Box::new(handle),
    }
}

/// The envelope, or why not. serde's messages may quote the body (which
/// carries codes), so only the error's category and position are kept.
fn decode(data: &[u8]) -> Result<JobEnvelope, String> {
    JobEnvelope::from_json(data).map_err(|reason| {
        match serde_json::from_slice::<JobEnvelope>(data) {
            Err(error) => format!(
                "undecodable job: {:?} error at line {}, column {}",
                error.classify(),
                error.line(),
                error.column()
            ),
            // Decodes, so the refusal is ours (the version), not serde's.
            Ok(_) => reason,
        }
    })
}

struct AmqpDeliveryHandle {
    /// The channel it came on: its acknowledgement must go there, and it
    /// stays open while this handle lives.
    channel: Channel,
    acker: Acker,
    /// (reply_to, correlation_id) when the api waits for a reply.
    reply: Option<(ShortString, ShortString)>,
    job_id: Option<Uuid>,
    kind: JobKind,
    /// What a dead letter of it says ([`JobEnvelope::dead_letter_summary`]).
    summary: serde_json::Value,
    dead: DeadLetters,
}

/// Where dead letters go and how long they stay.
struct DeadLetters {
    exchange: ShortString,
    routing_key: ShortString,
    ttl_ms: u64,
}

impl AmqpDeliveryHandle {
    /// Best effort: the result is also in the database.
    async fn send_reply(&self, reply: &JobResult) {
        let Some((reply_to, correlation_id)) = &self.reply else {
            return;
        };
        let body = match serde_json::to_vec(reply) {
            Ok(body) => body,
            Err(error) => {
                warn!(job_id = ?self.job_id, %error, "the reply could not be encoded");
                return;
            }
        };
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_correlation_id(correlation_id.clone())
            .with_delivery_mode(TRANSIENT);
        // Not mandatory either: a returned message would be logged with its
        // body (the app token) by lapin.
        let published = self
            .channel
            .basic_publish(
                "".into(),
                reply_to.clone(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await;
        if let Err(error) = published {
            warn!(job_id = ?self.job_id, %error, "the reply was not sent");
        }
    }

    fn settled(&self, done: Result<bool, lapin::Error>, what: &str) -> Result<(), QueueError> {
        match done {
            Ok(true) => Ok(()),
            Ok(false) => {
                warn!(job_id = ?self.job_id, "the delivery could not be {what}: its connection is gone; the broker delivers it again");
                Err(QueueError::Unavailable(format!(
                    "the delivery could not be {what}: its connection is gone"
                )))
            }
            Err(error) => {
                warn!(job_id = ?self.job_id, %error, "the delivery could not be {what}");
                Err(topology::unavailable(&error))
            }
        }
    }
}

#[async_trait]
impl DeliveryHandle for AmqpDeliveryHandle {
    async fn complete(self: Box<Self>, reply: &JobResult) -> Result<(), QueueError> {
        self.send_reply(reply).await;
        let acked = self.acker.ack(BasicAckOptions::default()).await;
        self.settled(acked, "acknowledged")
    }

    /// The dead letter is a summary of the job (what it was, for whom, why
    /// it ended here: [`JobEnvelope::dead_letter_summary`]), published to
    /// the `dead` queue with an expiry, and the job acknowledged: the
    /// original body, with its codes or tokens, never reaches `dead`.
    async fn dead_letter(
        self: Box<Self>,
        reply: Option<&JobResult>,
        reason: Option<&'static str>,
    ) -> Result<(), QueueError> {
        if let Some(reply) = reply {
            self.send_reply(reply).await;
        }
        let reason = match reply {
            _ if reason.is_some() => reason.unwrap_or_default().into(),
            Some(JobResult::Failed(e)) => serde_json::to_value(e.without_secrets())
                .ok()
                .and_then(|v| v.get("error").cloned())
                .unwrap_or(serde_json::Value::Null),
            Some(_) => "unsettled".into(),
            None => "undecodable".into(),
        };
        let mut letter = self.summary.clone();
        if let Some(fields) = letter.as_object_mut() {
            fields.insert("reason".into(), reason);
            fields.insert("queue".into(), self.kind.as_str().into());
            fields.insert("dead_at".into(), crate::now_ms().into());
        }
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_expiration(self.dead.ttl_ms.to_string().into());
        if let Some(id) = self.job_id {
            properties = properties.with_message_id(id.to_string().into());
        }
        let body = serde_json::to_vec(&letter).unwrap_or_default();
        let published = self
            .channel
            .basic_publish(
                self.dead.exchange.clone(),
                self.dead.routing_key.clone(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await;
        if let Err(error) = published {
            // The job's outcome is in the database and in the logs.
            warn!(job_id = ?self.job_id, %error, "the dead letter was not published");
        }
        let acked = self.acker.ack(BasicAckOptions::default()).await;
        let result = self.settled(acked, "dead-lettered");
        if result.is_ok() {
            warn!(job_id = ?self.job_id, "job dead-lettered");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_bodies_are_not_quoted_in_the_reason() {
        let body = br#"{"v":1,"id":"not-a-uuid-but-a-secret-code"}"#;
        let reason = decode(body).expect_err("must fail");
        assert!(!reason.contains("secret-code"), "{reason}");
        assert!(reason.contains("line 1"), "{reason}");
    }

    #[test]
    fn future_versions_keep_their_reason() {
        let body = br#"{"v":9,"id":"0b9a5c1e-2a49-4b3c-8f0e-0c7b8a0d7e11","created_at":0,"job":{"type":"discover","provider":"corp"}}"#;
        let reason = decode(body).expect_err("must fail");
        assert!(reason.contains("version 9"), "{reason}");
    }
}
