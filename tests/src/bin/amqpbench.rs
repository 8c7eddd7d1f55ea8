//! `amqpbench`: what RabbitMQ on this machine does with socialauth-shaped
//! messages — persistent messages on a durable queue, published with
//! publisher confirms and consumed with manual acknowledgement, both at the
//! same time — independent of socialauth's own code.
//!
//! ```text
//! amqpbench [--url URL] [--messages N] [--confirm-window W] [--publishers P]
//!           [--consumers C] [--prefetch Q] [--size BYTES] [--queue NAME]
//!           [--json FILE]
//! ```
//!
//! Each publisher has its own channel in confirm mode and at most `W`
//! unconfirmed messages (`W = 1`: every publish waits for its confirm, as one
//! request of the api does). Each consumer has its own channel with
//! `basic.qos(Q)` and acknowledges every message singly, as the worker does.
//! The queue (`amqpbench.<uuid>` unless `--queue`) is classic and durable and
//! is deleted at the end. One JSON object goes to stdout (and `--json FILE`);
//! a readable line goes to stderr.

use anyhow::{Context, bail};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const PERSISTENT: u8 = 2;
/// Bytes at the start of each body: nanoseconds since the run's start, for
/// the end-to-end latency.
const STAMP: usize = 8;

struct Args {
    url: String,
    messages: u64,
    confirm_window: usize,
    publishers: usize,
    consumers: usize,
    prefetch: u16,
    size: usize,
    queue: String,
    json: Option<String>,
}

const USAGE: &str = "usage: amqpbench [--url URL] [--messages N] [--confirm-window W] \
[--publishers P] [--consumers C] [--prefetch Q] [--size BYTES] [--queue NAME] [--json FILE]";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        url: std::env::var("SOCIALAUTH_TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        messages: 100_000,
        confirm_window: 256,
        publishers: 1,
        consumers: 1,
        prefetch: 64,
        size: 600,
        queue: format!("amqpbench.{}", uuid::Uuid::new_v4().simple()),
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{flag} {value}: {e}");
        match flag.as_str() {
            "--url" => args.url = value,
            "--messages" => args.messages = value.parse().map_err(|e| bad(&e))?,
            "--confirm-window" => args.confirm_window = value.parse().map_err(|e| bad(&e))?,
            "--publishers" => args.publishers = value.parse().map_err(|e| bad(&e))?,
            "--consumers" => args.consumers = value.parse().map_err(|e| bad(&e))?,
            "--prefetch" => args.prefetch = value.parse().map_err(|e| bad(&e))?,
            "--size" => args.size = value.parse().map_err(|e| bad(&e))?,
            "--queue" => args.queue = value,
            "--json" => args.json = Some(value),
            _ => bail!("unknown argument {flag}\n{USAGE}"),
        }
    }
    if args.messages == 0 || args.confirm_window == 0 || args.publishers == 0 {
        bail!("--messages, --confirm-window and --publishers must be at least 1");
    }
    if args.consumers == 0 || args.prefetch == 0 {
        bail!("--consumers and --prefetch must be at least 1");
    }
    args.size = args.size.max(STAMP);
    Ok(args)
}

/// The `q`-quantile of sorted microseconds, in milliseconds.
fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

async fn connect(url: &str, name: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, properties)
        .await
        .with_context(|| format!("connect to RabbitMQ ({name})"))
}

/// Publishes `count` messages with at most `window` unconfirmed; returns
/// the time from each publish to the moment its confirm was taken, in µs.
async fn publish(
    connection: Arc<Connection>,
    queue: String,
    count: u64,
    window: usize,
    size: usize,
    start: Instant,
) -> anyhow::Result<Vec<u32>> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut body = vec![b'x'; size];
    let mut pending = VecDeque::with_capacity(window);
    let mut waits = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into());
    for _ in 0..count {
        if pending.len() >= window
            && let Some((sent, confirm)) = pending.pop_front()
        {
            take_confirm(confirm, sent, &mut waits).await?;
        }
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        body[..STAMP].copy_from_slice(&nanos.to_le_bytes());
        let sent = Instant::now();
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties.clone(),
            )
            .await?;
        pending.push_back((sent, confirm));
    }
    while let Some((sent, confirm)) = pending.pop_front() {
        take_confirm(confirm, sent, &mut waits).await?;
    }
    let _ = channel.close(200, "done".into()).await;
    Ok(waits)
}

async fn take_confirm(
    confirm: lapin::PublisherConfirm,
    sent: Instant,
    waits: &mut Vec<u32>,
) -> anyhow::Result<()> {
    match confirm.await? {
        Confirmation::Ack(None) => {
            waits.push(micros(sent.elapsed()));
            Ok(())
        }
        other => bail!("the broker did not confirm a message: {other:?}"),
    }
}

/// Consumes and acknowledges until `consumed` reaches `total`; returns the
/// end-to-end latencies (publish to delivery) in µs.
#[allow(clippy::too_many_arguments)]
async fn consume(
    connection: Arc<Connection>,
    queue: String,
    prefetch: u16,
    total: u64,
    consumed: Arc<AtomicU64>,
    done: watch::Sender<bool>,
    start: Instant,
    index: usize,
) -> anyhow::Result<Vec<u32>> {
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("amqpbench-{index}").as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut latencies = Vec::new();
    let mut stop = done.subscribe();
    loop {
        let delivery = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            next = consumer.next() => match next {
                Some(delivery) => delivery?,
                None => break,
            },
        };
        let mut stamp = [0_u8; STAMP];
        if delivery.data.len() >= STAMP {
            stamp.copy_from_slice(&delivery.data[..STAMP]);
            let sent = Duration::from_nanos(u64::from_le_bytes(stamp));
            latencies.push(micros(start.elapsed().saturating_sub(sent)));
        }
        delivery.acker.ack(BasicAckOptions::default()).await?;
        if consumed.fetch_add(1, Ordering::SeqCst) + 1 >= total {
            done.send_replace(true);
            break;
        }
    }
    Ok(latencies)
}

async fn delete_queue(connection: &Connection, queue: &str) {
    match connection.create_channel().await {
        Ok(channel) => {
            if let Err(error) = channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await
            {
                eprintln!("amqpbench: could not delete queue {queue}: {error}");
            }
        }
        Err(error) => eprintln!("amqpbench: could not delete queue {queue}: {error}"),
    }
}

async fn run(args: &Args) -> anyhow::Result<serde_json::Value> {
    let publishing = Arc::new(connect(&args.url, "amqpbench-publish").await?);
    let consuming = Arc::new(connect(&args.url, "amqpbench-consume").await?);

    let start = Instant::now();
    let consumed = Arc::new(AtomicU64::new(0));
    let (done, _) = watch::channel(false);
    let mut consumers = Vec::new();
    for index in 0..args.consumers {
        consumers.push(tokio::spawn(consume(
            Arc::clone(&consuming),
            args.queue.clone(),
            args.prefetch,
            args.messages,
            Arc::clone(&consumed),
            done.clone(),
            start,
            index,
        )));
    }
    let per = args.messages / args.publishers as u64;
    let extra = args.messages % args.publishers as u64;
    let mut publishers = Vec::new();
    for index in 0..args.publishers {
        let count = per + u64::from((index as u64) < extra);
        publishers.push(tokio::spawn(publish(
            Arc::clone(&publishing),
            args.queue.clone(),
            count,
            args.confirm_window,
            args.size,
            start,
        )));
    }
    let mut confirm_waits = Vec::new();
    for task in publishers {
        confirm_waits.extend(task.await??);
    }
    let published = start.elapsed();
    let mut latencies = Vec::new();
    for task in consumers {
        latencies.extend(task.await??);
    }
    let finished = start.elapsed();
    let _ = publishing.close(200, "done".into()).await;
    let _ = consuming.close(200, "done".into()).await;

    confirm_waits.sort_unstable();
    latencies.sort_unstable();
    let seconds = finished.as_secs_f64();
    Ok(json!({
        "queue": args.queue,
        "messages": args.messages,
        "size": args.size,
        "confirm_window": args.confirm_window,
        "publishers": args.publishers,
        "consumers": args.consumers,
        "prefetch": args.prefetch,
        "elapsed_s": seconds,
        "publish_elapsed_s": published.as_secs_f64(),
        "msgs_per_sec": args.messages as f64 / seconds,
        "publish_msgs_per_sec": args.messages as f64 / published.as_secs_f64(),
        "consumed": consumed.load(Ordering::SeqCst),
        "confirm_wait_ms": {
            "p50": quantile_ms(&confirm_waits, 0.50),
            "p99": quantile_ms(&confirm_waits, 0.99),
            "max": quantile_ms(&confirm_waits, 1.0),
        },
        "end_to_end_ms": {
            "p50": quantile_ms(&latencies, 0.50),
            "p99": quantile_ms(&latencies, 0.99),
            "max": quantile_ms(&latencies, 1.0),
        },
    }))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let control = connect(&args.url, "amqpbench-control").await?;
    {
        let channel = control.create_channel().await?;
        channel
            .queue_declare(
                args.queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("declare the bench queue")?;
    }
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    delete_queue(&control, &args.queue).await;
    let _ = control.close(200, "done".into()).await;
    let report = outcome?;
    let line = report.to_string();
    if let Some(path) = &args.json {
        std::fs::write(path, format!("{line}\n")).with_context(|| format!("write {path}"))?;
    }
    eprintln!(
        "amqpbench: {} msgs of {} B, window {}, {} publisher(s), {} consumer(s), prefetch {}: \
         {:.0} msgs/s end to end (publish {:.0}/s), confirm wait p50 {:.2} ms, \
         end-to-end p50 {:.2} ms p99 {:.2} ms",
        args.messages,
        args.size,
        args.confirm_window,
        args.publishers,
        args.consumers,
        args.prefetch,
        report["msgs_per_sec"].as_f64().unwrap_or(0.0),
        report["publish_msgs_per_sec"].as_f64().unwrap_or(0.0),
        report["confirm_wait_ms"]["p50"].as_f64().unwrap_or(0.0),
        report["end_to_end_ms"]["p50"].as_f64().unwrap_or(0.0),
        report["end_to_end_ms"]["p99"].as_f64().unwrap_or(0.0),
    );
    println!("{line}");
    Ok(())
}
