//! The RabbitMQ queue against a real broker (`SOCIALAUTH_TEST_AMQP_URL`,
//! default the local guest account). Every test uses its own name prefix
//! and deletes its exchange and queues at the end.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueDeleteOptions,
};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use socialauth_common::config::QueueSettings;
use socialauth_common::jobs::{
    DiscoverJob, DiscoveredEndpoints, Job, JobEnvelope, JobError, JobKind, JobResult,
};
use socialauth_common::queue::amqp::{AmqpQueue, AmqpSource};
use socialauth_common::queue::{Delivery, JobQueue, JobSource, QueueError};
use socialauth_common::secret::Secret;
use std::collections::HashSet;
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

fn amqp_url() -> String {
    std::env::var("SOCIALAUTH_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Settings with a fresh prefix; the guard deletes the topology when the
/// test ends, passed or failed.
fn isolated() -> (QueueSettings, Cleanup) {
    let prefix = format!("t_{}.", Uuid::new_v4().simple());
    let settings = QueueSettings {
        amqp_url: Secret::new(amqp_url()),
        name_prefix: prefix.clone(),
        publish_channels: 4,
        prefetch: 64,
        dead_letter_ttl_secs: 3600,
        delivery_limit: 5,
    };
    (settings, Cleanup { prefix })
}

struct Cleanup {
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        // Drop cannot await: a short-lived runtime on its own thread.
        let done = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok((connection, channel)) = raw_channel().await else {
                    return;
                };
                for queue in ["login", "refresh", "dead"] {
                    let _ = channel
                        .queue_delete(
                            format!("{prefix}{queue}").into(),
                            QueueDeleteOptions::default(),
                        )
                        .await;
                }
                let _ = channel
                    .exchange_delete(
                        format!("{prefix}socialauth").into(),
                        ExchangeDeleteOptions::default(),
                    )
                    .await;
                let _ = connection.close(200, "test done".into()).await;
            });
        });
        let _ = done.join();
    }
}

async fn raw_channel() -> Result<(Connection, Channel), lapin::Error> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    Ok((connection, channel))
}

fn discover_job() -> JobEnvelope {
    JobEnvelope::new(
        Job::Discover(DiscoverJob {
            provider: socialauth_common::types::ProviderName::parse("corp").expect("name"),
        }),
        Some(format!("req-{}", Uuid::new_v4())),
    )
}

/// A reply that names the job it answers.
fn reply_for(id: Uuid) -> JobResult {
    JobResult::Discovered(DiscoveredEndpoints {
        authorization_endpoint: format!("https://id.test/{id}"),
    })
}

fn answered_job(reply: Option<JobResult>) -> Option<String> {
    match reply {
        Some(JobResult::Discovered(found)) => Some(found.authorization_endpoint),
        _ => None,
    }
}

async fn next_delivery(source: &mut AmqpSource) -> Delivery {
    tokio::time::timeout(DEADLINE, source.next())
        .await
        .expect("a delivery before the deadline")
        .expect("the source is open")
}

/// Polls `queue` with basic.get until a message arrives.
async fn get_one(channel: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let got = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic.get");
        if let Some(message) = got {
            return message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message in {queue} before the deadline"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn poll_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn kinds() -> [JobKind; 2] {
    [JobKind::Login, JobKind::Refresh]
}

#[tokio::test]
async fn a_submitted_job_reaches_the_worker_and_its_reply_reaches_the_waiter() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");
    queue.check().await.expect("api ready");

    let sent = discover_job();
    let waiter = queue.submit(&sent).await.expect("submit confirmed");
    assert_eq!(queue.pending_replies(), 1);

    let delivery = next_delivery(&mut source).await;
    assert!(!delivery.redelivered);
    assert_eq!(delivery.kind, JobKind::Login);
    let received = delivery.job.as_ref().expect("decodes");
    assert_eq!(received.id, sent.id);
    assert_eq!(received.request_id, sent.request_id);
    assert_eq!(received.created_at, sent.created_at);
    assert!(matches!(&received.job, Job::Discover(d) if d.provider.as_str() == "corp"));
    delivery
        .handle
        .complete(&reply_for(sent.id))
        .await
        .expect("complete");

    assert_eq!(
        answered_job(waiter.wait(DEADLINE).await),
        Some(format!("https://id.test/{}", sent.id))
    );
    assert_eq!(queue.pending_replies(), 0);
    queue.close().await;
}

#[tokio::test]
async fn published_jobs_are_persistent_json_carrying_the_job_and_request_ids() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let sent = discover_job();
    let _waiter = queue.submit(&sent).await.expect("submit confirmed");

    let (connection, channel) = raw_channel().await.expect("raw connection");
    let message = get_one(&channel, &format!("{}login", settings.name_prefix)).await;
    let properties = &message.delivery.properties;
    let id = sent.id.to_string();
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        properties.message_id().as_ref().map(|s| s.as_str()),
        Some(id.as_str())
    );
    assert_eq!(
        properties.correlation_id().as_ref().map(|s| s.as_str()),
        Some(id.as_str())
    );
    assert_eq!(
        properties.content_type().as_ref().map(|s| s.as_str()),
        Some("application/json")
    );
    let reply_to = properties.reply_to().as_ref().expect("reply_to");
    assert!(!reply_to.as_str().is_empty());
    let headers = properties.headers().as_ref().expect("headers");
    let request_id = headers
        .inner()
        .get("request_id")
        .expect("request_id header");
    let expected = sent.request_id.clone().expect("request id");
    assert!(
        matches!(request_id, lapin::types::AMQPValue::LongString(s) if s.as_bytes() == expected.as_bytes()),
        "{request_id:?}"
    );
    assert_eq!(
        message.delivery.routing_key.as_str(),
        format!("{}login", settings.name_prefix)
    );
    let decoded = JobEnvelope::from_json(&message.delivery.data).expect("json envelope");
    assert_eq!(decoded.id, sent.id);

    message
        .delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .expect("ack");
    let _ = connection.close(200, "done".into()).await;
    queue.close().await;
}

#[tokio::test]
async fn a_waiter_that_timed_out_is_unregistered_and_its_late_reply_is_ignored() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");

    let late = discover_job();
    let waiter = queue.submit(&late).await.expect("submit confirmed");
    assert_eq!(queue.pending_replies(), 1);
    assert!(waiter.wait(Duration::from_millis(10)).await.is_none());
    assert_eq!(queue.pending_replies(), 0, "the timed-out waiter leaked");

    let delivery = next_delivery(&mut source).await;
    assert_eq!(delivery.job_id(), Some(late.id));
    delivery
        .handle
        .complete(&reply_for(late.id))
        .await
        .expect("a late reply is not an error");

    // The api goes on answering the right waiters.
    let sent = discover_job();
    let waiter = queue.submit(&sent).await.expect("submit confirmed");
    let delivery = next_delivery(&mut source).await;
    assert_eq!(delivery.job_id(), Some(sent.id));
    delivery
        .handle
        .complete(&reply_for(sent.id))
        .await
        .expect("complete");
    assert_eq!(
        answered_job(waiter.wait(DEADLINE).await),
        Some(format!("https://id.test/{}", sent.id))
    );
    assert_eq!(queue.pending_replies(), 0);
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_submits_are_confirmed_and_each_reply_reaches_its_waiter() {
    const JOBS: usize = 500;
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");

    // The worker settles each delivery in its own task, as the real one does.
    let worker = tokio::spawn(async move {
        let mut settling = JoinSet::new();
        let mut seen = HashSet::new();
        while seen.len() < JOBS {
            let delivery = next_delivery(&mut source).await;
            let id = delivery.job_id().expect("decodes");
            seen.insert(id);
            settling.spawn(async move { delivery.handle.complete(&reply_for(id)).await });
        }
        while let Some(settled) = settling.join_next().await {
            settled.expect("task").expect("complete");
        }
        seen.len()
    });

    let mut submits = JoinSet::new();
    for _ in 0..JOBS {
        let queue = queue.clone();
        submits.spawn(async move {
            let job = discover_job();
            let waiter = queue.submit(&job).await?;
            let answer = answered_job(waiter.wait(DEADLINE).await);
            Ok::<_, QueueError>((job.id, answer))
        });
    }
    let mut answered = 0;
    while let Some(done) = submits.join_next().await {
        let (id, answer) = done.expect("task").expect("submit confirmed");
        assert_eq!(
            answer,
            Some(format!("https://id.test/{id}")),
            "wrong or no reply"
        );
        answered += 1;
    }
    assert_eq!(answered, JOBS);
    let distinct = tokio::time::timeout(DEADLINE, worker)
        .await
        .expect("worker done")
        .expect("worker task");
    assert_eq!(distinct, JOBS);
    assert_eq!(queue.pending_replies(), 0);
    queue.close().await;
}

#[tokio::test]
async fn an_undecodable_message_is_delivered_as_an_error_and_dead_letters_into_the_dead_queue() {
    let (settings, _cleanup) = isolated();
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");
    let (connection, channel) = raw_channel().await.expect("raw connection");
    let body = b"\xffthis is not json".to_vec();
    channel
        .basic_publish(
            format!("{}socialauth", settings.name_prefix).into(),
            format!("{}login", settings.name_prefix).into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish raw");

    let delivery = next_delivery(&mut source).await;
    assert_eq!(delivery.kind, JobKind::Login);
    assert!(delivery.job.is_err(), "garbage decoded");
    assert_eq!(delivery.job_id(), None);
    delivery
        .handle
        .dead_letter(None, None)
        .await
        .expect("dead-letter");

    // A summary, never the body; it expires.
    let dead = get_one(&channel, &format!("{}dead", settings.name_prefix)).await;
    let letter: serde_json::Value =
        serde_json::from_slice(&dead.delivery.data).expect("a JSON dead letter");
    assert_eq!(letter["reason"], "undecodable");
    assert_eq!(letter["queue"], "login");
    assert_eq!(letter["bytes"], body.len());
    assert!(!String::from_utf8_lossy(&dead.delivery.data).contains("this is not json"));
    assert_eq!(
        dead.delivery
            .properties
            .expiration()
            .as_ref()
            .map(|e| e.as_str()),
        Some("3600000")
    );
    dead.delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .expect("ack");
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn a_dead_lettered_job_reaches_the_dead_queue_and_its_reply_the_waiter() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");

    let sent = discover_job();
    let waiter = queue.submit(&sent).await.expect("submit confirmed");
    let delivery = next_delivery(&mut source).await;
    assert_eq!(delivery.job_id(), Some(sent.id));
    delivery
        .handle
        .dead_letter(
            Some(&JobResult::Failed(JobError::ProviderUnavailable)),
            None,
        )
        .await
        .expect("dead-letter");
    assert!(matches!(
        waiter.wait(DEADLINE).await,
        Some(JobResult::Failed(JobError::ProviderUnavailable))
    ));

    let (connection, channel) = raw_channel().await.expect("raw connection");
    let dead = get_one(&channel, &format!("{}dead", settings.name_prefix)).await;
    let id = sent.id.to_string();
    assert_eq!(
        dead.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some(id.as_str())
    );
    let letter: serde_json::Value =
        serde_json::from_slice(&dead.delivery.data).expect("a JSON dead letter");
    assert_eq!(letter["id"], id.as_str());
    assert_eq!(
        (&letter["type"], &letter["provider"], &letter["reason"]),
        (
            &serde_json::json!("discover"),
            &serde_json::json!("corp"),
            &serde_json::json!("provider_unavailable")
        ),
        "{letter}"
    );
    dead.delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .expect("ack");
    let _ = connection.close(200, "done".into()).await;
    queue.close().await;
}

#[tokio::test]
async fn a_job_not_acked_before_its_connection_closes_is_redelivered_to_a_new_source() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut first = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");

    let sent = discover_job();
    let waiter = queue.submit(&sent).await.expect("submit confirmed");
    let unsettled = next_delivery(&mut first).await;
    assert_eq!(unsettled.job_id(), Some(sent.id));
    assert!(!unsettled.redelivered);
    // The worker dies before acknowledging: its connection goes away.
    drop(unsettled);
    drop(first);

    let mut second = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");
    let again = next_delivery(&mut second).await;
    assert_eq!(again.job_id(), Some(sent.id));
    assert!(again.redelivered, "the redelivery is flagged");
    again
        .handle
        .complete(&reply_for(sent.id))
        .await
        .expect("complete");
    assert!(answered_job(waiter.wait(DEADLINE).await).is_some());
    queue.close().await;
}

#[tokio::test]
async fn the_worker_reconnects_after_losing_its_connection_and_gets_unacked_jobs_again() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");

    let sent = discover_job();
    let waiter = queue.submit(&sent).await.expect("submit confirmed");
    let stale = next_delivery(&mut source).await;
    assert_eq!(stale.job_id(), Some(sent.id));

    source.sever_connection().await;
    let again = next_delivery(&mut source).await;
    assert_eq!(again.job_id(), Some(sent.id));
    assert!(again.redelivered);
    // The first copy can no longer be acknowledged; the broker already
    // delivered it again.
    assert!(stale.handle.complete(&reply_for(sent.id)).await.is_err());
    again
        .handle
        .complete(&reply_for(sent.id))
        .await
        .expect("complete");
    assert!(answered_job(waiter.wait(DEADLINE).await).is_some());

    // New jobs flow on the new connection.
    let next = discover_job();
    let waiter = queue.submit(&next).await.expect("submit confirmed");
    let delivery = next_delivery(&mut source).await;
    assert_eq!(delivery.job_id(), Some(next.id));
    assert!(!delivery.redelivered);
    delivery
        .handle
        .complete(&reply_for(next.id))
        .await
        .expect("complete");
    assert!(answered_job(waiter.wait(DEADLINE).await).is_some());
    queue.close().await;
}

#[tokio::test]
async fn the_api_reconnects_after_losing_its_connection() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");

    queue.sever_connection().await;
    // Until it is back, submit fails fast instead of hanging.
    let sent = discover_job();
    let mut waiter = None;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while waiter.is_none() {
        let started = tokio::time::Instant::now();
        match queue.submit(&sent).await {
            Ok(w) => waiter = Some(w),
            Err(QueueError::Unavailable(_)) => {
                assert!(started.elapsed() < Duration::from_secs(5), "submit hung");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the api did not reconnect"
                );
                tokio::time::sleep(POLL).await;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    let waiter = waiter.expect("submitted");
    poll_until("the api is ready again", || async {
        queue.check().await.is_ok()
    })
    .await;

    let delivery = next_delivery(&mut source).await;
    assert_eq!(delivery.job_id(), Some(sent.id));
    delivery
        .handle
        .complete(&reply_for(sent.id))
        .await
        .expect("complete");
    assert_eq!(
        answered_job(waiter.wait(DEADLINE).await),
        Some(format!("https://id.test/{}", sent.id)),
        "the reply reaches the new reply queue"
    );
    queue.close().await;
    assert!(matches!(
        queue.submit(&discover_job()).await,
        Err(QueueError::Closed)
    ));
}

#[tokio::test]
async fn a_closed_source_ends_and_still_settles_what_it_handed_out() {
    let (settings, _cleanup) = isolated();
    let queue = AmqpQueue::connect(&settings).await.expect("api connects");
    let mut source = AmqpSource::connect(&settings, &kinds())
        .await
        .expect("worker connects");
    let closer = source.closer();

    let sent = discover_job();
    let waiter = queue.submit(&sent).await.expect("submit confirmed");
    let in_flight = next_delivery(&mut source).await;

    // A pending next() is woken by the close.
    let pending = tokio::spawn(async move {
        let end = source.next().await;
        (end.is_none(), source)
    });
    closer.close();
    let (ended, mut source) = tokio::time::timeout(DEADLINE, pending)
        .await
        .expect("next() returns after close")
        .expect("task");
    assert!(ended);
    assert!(source.next().await.is_none(), "stays closed");

    in_flight
        .handle
        .complete(&reply_for(sent.id))
        .await
        .expect("settles after close");
    assert!(answered_job(waiter.wait(DEADLINE).await).is_some());
    queue.close().await;
}
