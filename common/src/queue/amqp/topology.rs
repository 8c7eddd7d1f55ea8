//! Names, connection and topology shared by both sides.

use crate::config::QueueSettings;
use crate::jobs::{JobKind, names};
use crate::queue::QueueError;
use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

/// First and largest pause between two reconnect attempts.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);

/// How long closing a connection or cancelling a consumer may take.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The prefixed exchange and queue names.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) exchange: ShortString,
    pub(super) login: ShortString,
    pub(super) refresh: ShortString,
    pub(super) campaign: ShortString,
    pub(super) dead: ShortString,
}

impl Names {
    pub(super) fn new(prefix: &str) -> Result<Self, QueueError> {
        let name = |base: &str| {
            ShortString::try_new(format!("{prefix}{base}")).map_err(|_| {
                QueueError::Unavailable("queue.name_prefix is too long for an AMQP name".into())
            })
        };
        Ok(Self {
            exchange: name(names::EXCHANGE)?,
            login: name(names::LOGIN_QUEUE)?,
            refresh: name(names::REFRESH_QUEUE)?,
            campaign: name(names::CAMPAIGN_QUEUE)?,
            dead: name(names::DEAD_QUEUE)?,
        })
    }

    /// The queue of `kind`, which is also its routing key.
    pub(super) fn queue(&self, kind: JobKind) -> &ShortString {
        match kind {
            JobKind::Login => &self.login,
            JobKind::Refresh => &self.refresh,
            JobKind::Campaign => &self.campaign,
        }
    }
}

/// Where to connect; keeps the URL (it carries the password) out of logs.
#[derive(Clone)]
pub(super) struct Target {
    uri: AMQPUri,
    connection_name: String,
}

impl Target {
    pub(super) fn new(settings: &QueueSettings, side: &str) -> Result<Self, QueueError> {
        // The parser's message may echo the URL: leave it out.
        let uri = settings.amqp_url.expose().parse::<AMQPUri>().map_err(|_| {
            QueueError::Unavailable("queue.amqp_url is not a valid AMQP URL".into())
        })?;
        Ok(Self {
            uri,
            connection_name: format!("socialauth-{side}"),
        })
    }

    pub(super) async fn connect(&self) -> Result<Connection, lapin::Error> {
        let properties = ConnectionProperties::default()
            .with_connection_name(self.connection_name.clone().into());
        Connection::connect_uri(self.uri.clone(), properties).await
    }
}

/// Declares the exchange, the queues and their bindings. Idempotent; the
/// arguments must stay identical on every side or the broker refuses the
/// declaration.
pub(super) async fn declare(channel: &Channel, names: &Names) -> Result<(), lapin::Error> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .exchange_declare(
            names.exchange.clone(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;

    channel
        .queue_declare(names.dead.clone(), durable, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            names.dead.clone(),
            names.exchange.clone(),
            names.dead.clone(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from(names.exchange.as_str())),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(LongString::from(names.dead.as_str())),
    );
    for queue in [&names.login, &names.refresh, &names.campaign] {
        channel
            .queue_declare(queue.clone(), durable, arguments.clone())
            .await?;
        channel
            .queue_bind(
                queue.clone(),
                names.exchange.clone(),
                queue.clone(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Pauses between reconnect attempts: exponential, with jitter, unbounded
/// in count.
pub(super) fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(RECONNECT_MIN_DELAY)
        .with_max_delay(RECONNECT_MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The pause before the next attempt.
pub(super) fn next_delay(delays: &mut impl Iterator<Item = Duration>) -> Duration {
    delays.next().unwrap_or(RECONNECT_MAX_DELAY)
}

/// Closes `connection` gracefully if it is still open (best effort).
pub(super) async fn close_connection(connection: &Connection, reason: &str) {
    if connection.status().connected() {
        let closing = connection.close(200, reason.into());
        if let Ok(Err(error)) = tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
            tracing::debug!(%error, "closing the broker connection failed");
        }
    }
}

pub(super) fn unavailable(error: &lapin::Error) -> QueueError {
    QueueError::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let names = Names::new("t_1.").expect("names");
        assert_eq!(names.exchange.as_str(), "t_1.socialauth");
        assert_eq!(names.queue(JobKind::Login).as_str(), "t_1.login");
        assert_eq!(names.queue(JobKind::Refresh).as_str(), "t_1.refresh");
        assert_eq!(names.queue(JobKind::Campaign).as_str(), "t_1.campaign");
        assert_eq!(names.dead.as_str(), "t_1.dead");
    }

    #[test]
    fn an_overlong_prefix_is_refused() {
        assert!(Names::new(&"x".repeat(300)).is_err());
    }

    #[test]
    fn an_invalid_url_is_refused_without_echoing_it() {
        let settings = QueueSettings {
            amqp_url: crate::secret::Secret::new("nope://user:hunter2@host".into()),
            name_prefix: String::new(),
            publish_channels: 1,
            prefetch: 1,
            dead_letter_ttl_secs: 60,
            delivery_limit: 5,
        };
        let Err(err) = Target::new(&settings, "api") else {
            panic!("an invalid URL was accepted");
        };
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn reconnect_delays_grow_and_stay_bounded() {
        let delays: Vec<Duration> = reconnect_delays().take(20).collect();
        assert_eq!(delays.len(), 20);
        assert!(delays.iter().all(|d| *d <= RECONNECT_MAX_DELAY * 2));
        assert!(delays[10] >= RECONNECT_MIN_DELAY);
    }
}
