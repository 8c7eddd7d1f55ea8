//! The worker's Prometheus listener: `[worker] metrics_bind` names an
//! address or a range of ports (`127.0.0.1:9100-9119`, the default), so
//! that several workers on one host each find a port of their own.

use anyhow::{Context, bail};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder};
use std::net::SocketAddr;
use std::ops::RangeInclusive;

/// Installs the Prometheus recorder and its listener on the first free
/// port `bind` allows; the address taken.
pub fn install(bind: &str) -> anyhow::Result<SocketAddr> {
    let (host, ports) = parse(bind)?;
    for port in ports.clone() {
        let addr: SocketAddr = format!("{host}:{port}")
            .parse()
            .with_context(|| format!("worker.metrics_bind {bind:?}: not an address"))?;
        let builder = PrometheusBuilder::new()
            .set_buckets(&socialauth_common::HISTOGRAM_BUCKETS)
            .context("metrics buckets")?;
        match builder.with_http_listener(addr).install() {
            Ok(()) => return Ok(addr),
            // Taken (another worker on this host): the next port, if the
            // range has one.
            Err(BuildError::FailedToCreateHTTPListener(_)) if ports.end() > &port => {}
            Err(BuildError::FailedToCreateHTTPListener(why)) => bail!(
                "worker.metrics_bind {bind:?}: cannot listen ({why}); another worker on this \
                 host? Give each its own port, or a range such as \"127.0.0.1:9100-9119\" \
                 (SOCIALAUTH__WORKER__METRICS_BIND)"
            ),
            Err(e) => return Err(e).context("metrics recorder"),
        }
    }
    bail!("worker.metrics_bind {bind:?}: no port to try")
}

/// `HOST:PORT` or `HOST:FIRST-LAST` → the host and its ports.
fn parse(bind: &str) -> anyhow::Result<(&str, RangeInclusive<u16>)> {
    let bad = || {
        format!("worker.metrics_bind {bind:?}: HOST:PORT or HOST:FIRST-LAST (127.0.0.1:9100-9119)")
    };
    let (host, ports) = bind.rsplit_once(':').with_context(bad)?;
    let port = |p: &str| p.trim().parse::<u16>().with_context(bad);
    let range = match ports.split_once('-') {
        Some((first, last)) => port(first)?..=port(last)?,
        None => port(ports)?..=port(ports)?,
    };
    if host.is_empty() || range.is_empty() || (range.start() == &0 && range.end() != &0) {
        bail!(bad());
    }
    Ok((host, range))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn addresses_and_ranges_are_read() {
        assert_eq!(
            parse("127.0.0.1:9100").expect("one port"),
            ("127.0.0.1", 9100..=9100)
        );
        assert_eq!(
            parse("127.0.0.1:9100-9119").expect("range"),
            ("127.0.0.1", 9100..=9119)
        );
        assert_eq!(parse("[::1]:0").expect("v6"), ("[::1]", 0..=0));
        for bad in [
            "9100",
            ":9100",
            "h:",
            "h:x",
            "h:9119-9100",
            "h:0-5",
            "h:1-70000",
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains("worker.metrics_bind"), "{e}");
        }
    }
}
