//! What a phase measured: per-virtual-user tallies merged into a report.

use super::parse::percentile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One virtual user's counts; merged after the phase, never shared.
#[derive(Default)]
pub struct Tally {
    /// Latency of each completed login, microseconds.
    pub latencies_us: Vec<u32>,
    pub is_new_true: u64,
    pub is_new_false: u64,
    pub is_new_missing: u64,
    /// `is_new` other than the mode implies (signup: true; pool: false).
    pub is_new_unexpected: u64,
    pub polled: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Open loop: the most a login started after its scheduled time.
    pub max_lag_us: u64,
    pub requests: u64,
    pub connects: u64,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.is_new_true += other.is_new_true;
        self.is_new_false += other.is_new_false;
        self.is_new_missing += other.is_new_missing;
        self.is_new_unexpected += other.is_new_unexpected;
        self.polled += other.polled;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.max_lag_us = self.max_lag_us.max(other.max_lag_us);
        self.requests += other.requests;
        self.connects += other.connects;
    }

    pub fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// Sorts `us` (microseconds) and reads it in milliseconds.
    pub fn of(us: &mut [u32]) -> Option<Self> {
        us.sort_unstable();
        let ms = |p: f64| percentile(us, p).map(|v| f64::from(v) / 1000.0);
        let sum: u64 = us.iter().map(|&v| u64::from(v)).sum();
        Some(Self {
            min: f64::from(*us.first()?) / 1000.0,
            mean: sum as f64 / us.len() as f64 / 1000.0,
            p50: ms(50.0)?,
            p90: ms(90.0)?,
            p99: ms(99.0)?,
            p999: ms(99.9)?,
            max: f64::from(*us.last()?) / 1000.0,
        })
    }
}

#[derive(Serialize, Debug, Clone)]
pub struct IsNew {
    #[serde(rename = "true")]
    pub yes: u64,
    #[serde(rename = "false")]
    pub no: u64,
    pub missing: u64,
    pub unexpected: u64,
}

#[derive(Serialize, Debug, Clone)]
pub struct PhaseReport {
    pub phase: String,
    pub completed: u64,
    pub errors_total: u64,
    pub duration_s: f64,
    pub logins_per_s: f64,
    /// Milliseconds, completed logins only (open loop: from the scheduled start).
    pub latency_ms: Option<Latency>,
    pub accepted_then_polled: u64,
    pub is_new: IsNew,
    /// Final HTTP status of completed logins (202 when polled).
    pub statuses: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub http_requests: u64,
    pub connections_opened: u64,
    pub loadgen_cpu_ms: Option<f64>,
    pub loadgen_cpu_ms_per_login: Option<f64>,
    pub loadgen_cpu_us_per_request: Option<f64>,
    /// Open loop only.
    pub target_rate: Option<f64>,
    pub max_start_lag_ms: Option<f64>,
}

impl PhaseReport {
    pub fn build(
        phase: &str,
        mut tally: Tally,
        elapsed: Duration,
        cpu: Option<Duration>,
        rate: Option<f64>,
    ) -> Self {
        let completed = tally.latencies_us.len() as u64;
        let errors_total = tally.errors.values().sum();
        let secs = elapsed.as_secs_f64();
        let cpu_ms = cpu.map(|c| c.as_secs_f64() * 1000.0);
        Self {
            phase: phase.to_owned(),
            completed,
            errors_total,
            duration_s: secs,
            logins_per_s: if secs > 0.0 {
                completed as f64 / secs
            } else {
                0.0
            },
            latency_ms: Latency::of(&mut tally.latencies_us),
            accepted_then_polled: tally.polled,
            is_new: IsNew {
                yes: tally.is_new_true,
                no: tally.is_new_false,
                missing: tally.is_new_missing,
                unexpected: tally.is_new_unexpected,
            },
            statuses: tally
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors: tally.errors,
            http_requests: tally.requests,
            connections_opened: tally.connects,
            loadgen_cpu_ms: cpu_ms,
            loadgen_cpu_ms_per_login: cpu_ms
                .filter(|_| completed > 0)
                .map(|c| c / completed as f64),
            loadgen_cpu_us_per_request: cpu_ms
                .filter(|_| tally.requests > 0)
                .map(|c| c * 1000.0 / tally.requests as f64),
            target_rate: rate,
            max_start_lag_ms: rate.map(|_| tally.max_lag_us as f64 / 1000.0),
        }
    }

    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "[{}] {} logins in {:.2}s = {:.1} logins/s; {} errors; {} accepted_then_polled",
            self.phase,
            self.completed,
            self.duration_s,
            self.logins_per_s,
            self.errors_total,
            self.accepted_then_polled
        );
        if let Some(l) = &self.latency_ms {
            let _ = writeln!(
                s,
                "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean
            );
        }
        let _ = writeln!(
            s,
            "  is_new: true {}  false {}  missing {}  unexpected {};  statuses {:?}",
            self.is_new.yes,
            self.is_new.no,
            self.is_new.missing,
            self.is_new.unexpected,
            self.statuses
        );
        let _ = writeln!(
            s,
            "  loadgen: {} requests, {} connections, cpu {} ms = {} ms/login, {} us/request",
            self.http_requests,
            self.connections_opened,
            fmt_opt(self.loadgen_cpu_ms, 0),
            fmt_opt(self.loadgen_cpu_ms_per_login, 4),
            fmt_opt(self.loadgen_cpu_us_per_request, 1),
        );
        if let (Some(rate), Some(lag)) = (self.target_rate, self.max_start_lag_ms) {
            let _ = writeln!(
                s,
                "  open loop: target {rate} logins/s, max start lag {lag:.1} ms"
            );
        }
        for (kind, n) in &self.errors {
            let _ = writeln!(s, "  error {n:>8}  {kind}");
        }
        s
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{v:.decimals$}"))
}

#[derive(Serialize, Debug, Clone)]
pub struct Report {
    pub tool: &'static str,
    pub base_url: String,
    pub flow: String,
    pub mode: String,
    pub provider: String,
    pub redirect_uri: String,
    pub concurrency: usize,
    pub threads: usize,
    pub rate: Option<f64>,
    pub users: Option<u64>,
    pub mixed_new_ratio: Option<f64>,
    /// The run's 48-bit uid prefix (uids are `<prefix:15 digits><n:9 digits>`).
    pub uid_prefix: u64,
    pub started_unix_s: u64,
    /// Returning/mixed: the pool of `users` signed up before the load.
    pub pool_signup: Option<PhaseReport>,
    pub warmup: Option<PhaseReport>,
    pub measured: PhaseReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_the_merged_tallies() {
        let mut a = Tally {
            latencies_us: vec![3000, 1000],
            is_new_true: 2,
            requests: 4,
            ..Tally::default()
        };
        *a.statuses.entry(201).or_default() += 2;
        a.error("complete http 400 non_field_errors=invalid_state".into());
        let mut b = Tally {
            latencies_us: vec![2000],
            is_new_false: 1,
            is_new_unexpected: 1,
            requests: 2,
            ..Tally::default()
        };
        *b.statuses.entry(201).or_default() += 1;
        b.error("complete http 400 non_field_errors=invalid_state".into());
        a.merge(b);
        let r = PhaseReport::build(
            "measured",
            a,
            Duration::from_secs(2),
            Some(Duration::from_millis(30)),
            None,
        );
        assert_eq!(r.completed, 3);
        assert_eq!(r.errors_total, 2);
        assert_eq!(r.logins_per_s, 1.5);
        assert_eq!(r.statuses.get("201"), Some(&3));
        assert_eq!(r.loadgen_cpu_ms_per_login, Some(10.0));
        assert_eq!(r.loadgen_cpu_us_per_request, Some(5000.0));
        assert!(r.summary().contains("1.5 logins/s"));
        let l = r.latency_ms.expect("latency");
        assert_eq!((l.min, l.p50, l.max, l.mean), (1.0, 2.0, 3.0, 2.0));
    }
}
