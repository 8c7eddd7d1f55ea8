#!/usr/bin/env python3
"""CPU and memory of the processes of a benchmark, read from /proc.

    sampler.py --out FILE [--interval 1] [--proc NAME=PID]... [--postgres]
               [--pg-db NAME] [--rabbitmq] [--reset-hwm] [--marker REGEX]
               [--window SECONDS] [--child-name NAME] [--log FILE]
               [--timeout SECONDS] (--idle SECONDS | -- COMMAND [ARG]...)

With a COMMAND, runs it as a child (its stdout and stderr go to --log) and
samples until it exits; exits with the child's status. With --idle, samples
for that long. Every --interval seconds it records the cumulative CPU time
(utime+stime+cutime+cstime, so exited children that were waited for count)
of each component:

  NAME        every --proc NAME=PID (one process)
  <child>     the COMMAND (--child-name, default "child"); its final CPU is
              the exact rusage from wait4
  postgres    every process whose comm starts with "postgres" (postmaster,
              backends, background processes); postgres_db: the backends of
              --pg-db only (their command line names the database; a closed
              one counts with its CPU at the last sample it was seen)
  rabbitmq    every beam.smp process and its descendants

plus the machine's busy and total CPU time from /proc/stat, and the resident
memory (VmRSS, and VmHWM at the end) of the --proc processes. --reset-hwm
first resets their VmHWM ("5" into /proc/PID/clear_refs) so VmHWM is the
peak of this run.

The window the CPU is reported for: from the first line of the child's
output matching --marker to the child's exit (the load generator prints
"measured phase" when its measured phase starts); without a match, the last
--window seconds before the exit; else the whole run. Values at the window's
edges are interpolated between samples. Writes one JSON object to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def parse_stat(text: str) -> tuple[str, int, int, int] | None:
    """(comm, ppid, cpu ticks incl. waited-for children, start time) of a
    stat line."""
    try:
        lpar = text.index("(")
        rpar = text.rindex(")")
    except ValueError:
        return None
    comm = text[lpar + 1 : rpar]
    fields = text[rpar + 2 :].split()
    # fields[0] is field 3 (state); ppid is field 4, utime..cstime 14..17.
    try:
        ppid = int(fields[1])
        cpu = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        start = int(fields[19])
    except (IndexError, ValueError):
        return None
    return comm, ppid, cpu, start


def proc_cpu(pid: int) -> int | None:
    text = read(f"/proc/{pid}/stat")
    if text is None:
        return None
    parsed = parse_stat(text)
    return parsed[2] if parsed else None


def status_kb(pid: int, key: str) -> int | None:
    text = read(f"/proc/{pid}/status")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    text = read("/proc/stat") or ""
    first = text.splitlines()[0].split()
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    total = sum(values)
    idle = values[3] + values[4]
    return total - idle, total


def scan_processes() -> dict[int, tuple[str, int, int, int]]:
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        text = read(f"/proc/{name}/stat")
        if text is None:
            continue
        parsed = parse_stat(text)
        if parsed:
            out[int(name)] = parsed
    return out


class Sampler:
    def __init__(self, args: argparse.Namespace):
        self.procs: dict[str, int] = {}
        for spec in args.proc or []:
            name, _, pid = spec.partition("=")
            if name and pid.isdigit():
                self.procs[name] = int(pid)
        self.postgres = args.postgres
        self.pg_db = args.pg_db
        self.rabbitmq = args.rabbitmq
        self.child_name = args.child_name
        self.child_pid: int | None = None
        self.series: list[dict] = []
        self.max_rss: dict[str, int] = {}
        self.last_cpu: dict[str, int] = {}
        self.pg_pids: set[int] = set()
        self.pg_db_seen: dict[tuple[int, int], int] = {}

    def reset_hwm(self) -> dict[str, bool]:
        done = {}
        for name, pid in self.procs.items():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
                done[name] = True
            except OSError:
                done[name] = False
        return done

    def sample(self) -> dict:
        t = time.monotonic()
        cpu: dict[str, float] = {}
        for name, pid in self.procs.items():
            ticks = proc_cpu(pid)
            if ticks is None:
                # Gone: keep its last value so the series stays monotonic.
                ticks = self.last_cpu.get(name, 0)
            self.last_cpu[name] = ticks
            cpu[name] = ticks * TICK_MS
            rss = status_kb(pid, "VmRSS")
            if rss is not None:
                self.max_rss[name] = max(self.max_rss.get(name, 0), rss)
        if self.child_pid is not None:
            ticks = proc_cpu(self.child_pid)
            if ticks is not None:
                self.last_cpu[self.child_name] = ticks
            cpu[self.child_name] = self.last_cpu.get(self.child_name, 0) * TICK_MS
        if self.postgres or self.rabbitmq:
            table = scan_processes()
            if self.postgres:
                pg = [p for p, (comm, *_) in table.items() if comm.startswith("postgres")]
                cpu["postgres"] = sum(table[p][2] for p in pg) * TICK_MS
                self.pg_pids = set(pg)
                if self.pg_db:
                    for p in pg:
                        cmdline = (read(f"/proc/{p}/cmdline") or "").replace("\0", " ")
                        # "postgres: 15/main: USER DB 127.0.0.1(PORT) STATE"
                        if f" {self.pg_db} " in f"{cmdline} ":
                            # Kept after the backend exits (the postmaster,
                            # outside this subset, reaps it): the CPU of
                            # a closed connection stays counted.
                            self.pg_db_seen[(p, table[p][3])] = table[p][2]
                    cpu["postgres_db"] = sum(self.pg_db_seen.values()) * TICK_MS
            if self.rabbitmq:
                roots = [p for p, (comm, *_) in table.items() if comm == "beam.smp"]
                children: dict[int, list[int]] = {}
                for p, (_, ppid, *_) in table.items():
                    children.setdefault(ppid, []).append(p)
                seen: set[int] = set()
                stack = list(roots)
                while stack:
                    p = stack.pop()
                    if p in seen:
                        continue
                    seen.add(p)
                    stack.extend(children.get(p, []))
                cpu["rabbitmq"] = sum(table[p][2] for p in seen) * TICK_MS
        busy, total = machine_ticks()
        point = {
            "t": t,
            "cpu_ms": cpu,
            "machine_busy_ms": busy * TICK_MS,
            "machine_total_ms": total * TICK_MS,
        }
        self.series.append(point)
        return point


def value_at(series: list[dict], t: float, get) -> float | None:
    """Linear interpolation of get(point) at time t."""
    before = None
    for point in series:
        v = get(point)
        if v is None:
            continue
        if point["t"] >= t:
            if before is None or point["t"] == before[0]:
                return v
            t0, v0 = before
            return v0 + (v - v0) * (t - t0) / (point["t"] - t0)
        before = (point["t"], v)
    return before[1] if before else None


def main() -> int:
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--proc", action="append")
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--pg-db")
    p.add_argument("--rabbitmq", action="store_true")
    p.add_argument("--reset-hwm", action="store_true")
    p.add_argument("--marker")
    p.add_argument("--window", type=float)
    p.add_argument("--child-name", default="child")
    p.add_argument("--log")
    p.add_argument("--idle", type=float)
    p.add_argument("--timeout", type=float, help="SIGINT to the child after this long, SIGKILL 30 s later")
    args = p.parse_args(argv)
    if not command and args.idle is None:
        p.error("give --idle SECONDS or -- COMMAND")

    sampler = Sampler(args)
    hwm_reset = sampler.reset_hwm() if args.reset_hwm else {}
    marker_re = re.compile(args.marker) if args.marker else None
    marker_t: list[float] = []
    exit_code = 0
    rusage_ms = None
    child_maxrss_kb = None
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()
        if sampler.child_pid:
            try:
                os.kill(sampler.child_pid, signum)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    start = sampler.sample()["t"]
    if command:
        log = open(args.log, "ab") if args.log else None  # noqa: SIM115
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        sampler.child_pid = child.pid
        sampler.sample()

        def pump():
            assert child.stdout is not None
            for line in child.stdout:
                if log:
                    log.write(line)
                    log.flush()
                if marker_re and not marker_t and marker_re.search(line.decode("utf-8", "replace")):
                    marker_t.append(time.monotonic())

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        next_t = time.monotonic() + args.interval
        deadline = time.monotonic() + args.timeout if args.timeout else None
        interrupted = False
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                if not interrupted:
                    print(f"sampler: {command[0]} still runs after {args.timeout:.0f} s: SIGINT", file=sys.stderr)
                    os.kill(child.pid, signal.SIGINT)
                    interrupted, deadline = True, time.monotonic() + 30
                else:
                    print(f"sampler: {command[0]} ignored SIGINT: SIGKILL", file=sys.stderr)
                    os.kill(child.pid, signal.SIGKILL)
                    deadline = None
            # Sample just before reaping so the child's stat is still there.
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if now >= next_t:
                sampler.sample()
                next_t += args.interval
                if next_t < now:
                    next_t = now + args.interval
            time.sleep(min(0.05, max(0.0, next_t - time.monotonic())))
        child.returncode = os.waitstatus_to_exitcode(status)
        exit_code = child.returncode if child.returncode >= 0 else 128 - child.returncode
        rusage_ms = (usage.ru_utime + usage.ru_stime) * 1000.0
        child_maxrss_kb = usage.ru_maxrss
        end_point = sampler.sample()
        # The exact total of the child replaces the last /proc reading.
        end_point["cpu_ms"][args.child_name] = rusage_ms
        reader.join(timeout=5)
        if log:
            log.close()
    else:
        deadline = start + args.idle
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(min(args.interval, max(0.0, deadline - time.monotonic())))
            sampler.sample()
        end_point = sampler.series[-1]

    end = end_point["t"]
    if marker_t:
        w_start, how = marker_t[0], "marker"
    elif args.window and end - args.window > start:
        w_start, how = end - args.window, "trailing"
    else:
        w_start, how = start, "whole"
    series = sampler.series
    names = sorted({k for point in series for k in point["cpu_ms"]})
    components = {}
    for name in names:
        a = value_at(series, w_start, lambda pt, n=name: pt["cpu_ms"].get(n))
        b = value_at(series, end, lambda pt, n=name: pt["cpu_ms"].get(n))
        if a is None or b is None:
            continue
        components[name] = {"cpu_ms": max(0.0, b - a)}
    seconds = end - w_start
    for c in components.values():
        c["cores"] = c["cpu_ms"] / 1000.0 / seconds if seconds > 0 else 0.0
    busy = value_at(series, end, lambda pt: pt["machine_busy_ms"]) - value_at(
        series, w_start, lambda pt: pt["machine_busy_ms"]
    )
    total = value_at(series, end, lambda pt: pt["machine_total_ms"]) - value_at(
        series, w_start, lambda pt: pt["machine_total_ms"]
    )
    memory = {}
    for name, pid in sampler.procs.items():
        memory[name] = {
            "pid": pid,
            "vm_hwm_kb": status_kb(pid, "VmHWM"),
            "max_sampled_rss_kb": sampler.max_rss.get(name),
            "hwm_reset": hwm_reset.get(name),
        }
    if child_maxrss_kb is not None:
        memory[args.child_name] = {"ru_maxrss_kb": child_maxrss_kb}
    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "command": command,
        "exit_code": exit_code,
        "window": {"how": how, "seconds": seconds, "run_seconds": end - start},
        "components": components,
        "machine": {
            "cpus": os.cpu_count(),
            "busy_ms": busy,
            "total_ms": total,
            "busy_pct": 100.0 * busy / total if total > 0 else None,
        },
        "memory": memory,
        "child_cpu_ms_total": rusage_ms,
        "sampler_cpu_ms": (self_usage.ru_utime + self_usage.ru_stime) * 1000.0,
        "samples": len(series),
        "clk_tck": os.sysconf("SC_CLK_TCK"),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
