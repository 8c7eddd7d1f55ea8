//! CPU time of a process from `/proc/<pid>/stat`, so a benchmark tool can
//! report (and a reader subtract) what it cost on a shared machine.

use std::time::Duration;

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/<pid>/stat`. It is 100
/// on every Linux architecture that matters (the kernel fixes it for
/// userspace, whatever `CONFIG_HZ` is); reading `sysconf` would need `unsafe`.
const USER_HZ: u64 = 100;

/// User + system CPU time of this process (all its threads, live and
/// exited), at 10 ms resolution. `None` off Linux.
pub fn self_cpu() -> Option<Duration> {
    process_cpu("self")
}

/// User + system CPU time of process `pid` ("self" for this one).
pub fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// `utime + stime` of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces or parentheses itself, so the fields
/// are counted from the last `)`.
pub fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the command: field 3 (state) is index 0, utime (14) index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        let line = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1292 0 0 0 \
                    150 25 0 0 20 0 3 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu(line), Some(Duration::from_millis(1750)));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(self_cpu().is_some());
    }
}
