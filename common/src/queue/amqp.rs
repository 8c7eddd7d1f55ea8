//! RabbitMQ queue (lapin).
//!
//! Topology, declared idempotently by both sides (every name carries the
//! configured `name_prefix`): a durable direct exchange `socialauth`; durable
//! queues `login` and `refresh`, bound with their own names as routing keys
//! and dead-lettering to the exchange with routing key `dead`; a durable
//! queue `dead` bound with routing key `dead`.
//!
//! - [`AmqpQueue`] (api side) publishes persistent messages on a pool of
//!   channels in confirm mode and matches replies arriving on its own
//!   exclusive reply queue by correlation id.
//! - [`AmqpSource`] (worker side) consumes the queues of the given kinds with
//!   manual acknowledgement; each delivery replies to `reply_to` and then
//!   acks, or rejects without requeue to dead-letter.
//!
//! Both reconnect by themselves (exponential backoff with jitter) after the
//! broker goes away, and count reconnects in
//! `socialauth_queue_reconnects_total{side}`.

mod consumer;
mod publisher;
mod topology;

pub use consumer::{AmqpSource, SourceCloser};
pub use publisher::AmqpQueue;
