#!/usr/bin/env python3
"""Tables of the benchmark's results (Python 3 standard library only).

    report.py bench DIR    DIR/runs/*.json (one per loadgen run) ->
                           DIR/summary.json, DIR/summary.md; prints the Markdown
    report.py limits DIR   DIR/limits/*.json -> DIR/limits.json, DIR/limits.md;
                           prints the Markdown

A run's JSON (written by tests/bench/run.sh) is
{"meta": {...}, "loadgen": <loadgen --json>, "sampler": <sampler.py --out>}.
Figures of several runs are shown as "median (min–max)".
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import sys

SERVICE = ("api", "workers", "postgres", "rabbitmq", "target")
TOOLS = ("stub", "loadgen")


def load(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(v, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def agg(values: list, digits: int = 1) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    med = statistics.median(vals)
    if len(vals) == 1 or min(vals) == max(vals):
        return fmt(med, digits)
    return f"{fmt(med, digits)} ({fmt(min(vals), digits)}–{fmt(max(vals), digits)})"


def stats(values: list) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def run_metrics(run: dict) -> dict:
    """The figures of one loadgen run."""
    meta = run.get("meta") or {}
    lg = run.get("loadgen") or {}
    measured = lg.get("measured") or {}
    lat = measured.get("latency_ms") or {}
    sampler = run.get("sampler") or {}
    comps = sampler.get("components") or {}
    cpu = {}
    for name, c in comps.items():
        key = "workers" if name.startswith("worker") else name
        cpu[key] = cpu.get(key, 0.0) + c.get("cpu_ms", 0.0)
    logins = measured.get("completed") or 0
    service = sum(cpu.get(k, 0.0) for k in SERVICE)
    whole = service + sum(cpu.get(k, 0.0) for k in TOOLS)
    machine = sampler.get("machine") or {}
    window_ms = (sampler.get("window") or {}).get("seconds", 0) * 1000.0
    cpus = machine.get("cpus") or os.cpu_count() or 1
    other_pct = None
    if machine.get("total_ms"):
        other_pct = max(0.0, 100.0 * (machine["busy_ms"] - whole) / machine["total_ms"])

    def per_login(ms):
        return ms / logins if logins and ms is not None else None

    def share(ms):
        return 100.0 * ms / whole if whole and ms is not None else None

    mem = sampler.get("memory") or {}

    def rss_mb(name):
        m = mem.get(name) or {}
        # VmHWM after the reset, or the largest VmRSS sampled, whichever is
        # larger (the kernel updates the high-water mark lazily).
        kbs = [m.get("max_sampled_rss_kb")]
        if m.get("hwm_reset"):
            kbs.append(m.get("vm_hwm_kb"))
        kbs = [k for k in kbs if k is not None]
        return max(kbs) / 1024.0 if kbs else None

    worker_rss = [rss_mb(n) for n in mem if n.startswith("worker")]
    worker_rss = [v for v in worker_rss if v is not None]
    out = {
        "scenario": meta.get("scenario"),
        "backend": meta.get("backend"),
        "run": meta.get("run"),
        "load": meta.get("load"),
        "exit_code": meta.get("exit_code"),
        "logins": logins,
        "logins_per_s": measured.get("logins_per_s"),
        "p50_ms": lat.get("p50"),
        "p90_ms": lat.get("p90"),
        "p99_ms": lat.get("p99"),
        "max_ms": lat.get("max"),
        "errors": measured.get("errors_total"),
        "errors_by_kind": measured.get("errors") or {},
        "accepted_then_polled": measured.get("accepted_then_polled"),
        "max_start_lag_ms": measured.get("max_start_lag_ms"),
        "window_s": window_ms / 1000.0,
        "window_how": (sampler.get("window") or {}).get("how"),
        "cpu_ms": cpu,
        "cpu_ms_per_login": {k: per_login(v) for k, v in cpu.items()},
        "cpu_ms_per_login_service": per_login(service),
        "cpu_ms_per_login_whole": per_login(whole),
        "cpu_share_pct": {k: share(v) for k, v in cpu.items()},
        "cores_used_whole": whole / window_ms if window_ms else None,
        "machine_busy_pct": machine.get("busy_pct"),
        "machine_other_pct": other_pct,
        "machine_cpus": cpus,
        "rss_mb": {
            "api": rss_mb("api"),
            "worker_max": max(worker_rss) if worker_rss else None,
            "workers_sum": sum(worker_rss) if worker_rss else None,
            "stub": rss_mb("stub"),
            "target": rss_mb("target"),
        },
        "loadgen_self_cpu_ms": measured.get("loadgen_cpu_ms"),
        "kind": meta.get("kind", "logins"),
        "campaign": run.get("campaign") or {},
        "rate_per_second": meta.get("rate_per_second"),
    }
    return out


def bench(directory: str) -> str:
    runs = []
    left_out = []
    for path in sorted(glob.glob(os.path.join(directory, "runs", "*.json"))):
        run = load(path)
        if not run:
            continue
        if (run.get("meta") or {}).get("stack_died"):
            left_out.append(f"{os.path.basename(path)}: {run['meta']['stack_died']}")
            continue
        runs.append(run_metrics(run))
    env = load(os.path.join(directory, "environment.json")) or {}
    order = env.get("scenario_order") or []
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault((r["backend"], r["scenario"]), []).append(r)

    def sort_key(key):
        backend, scenario = key
        name = scenario if backend != "embedded" else f"embedded-{scenario}"
        return (order.index(name) if name in order else len(order), backend, scenario)

    keys = sorted(groups, key=sort_key)
    summary = {"environment": env, "scenarios": []}
    lines = []
    settings = env.get("settings") or {}
    lines.append(f"# socialauth benchmark — {env.get('started_utc', '?')}")
    lines.append("")
    lines.append(
        f"Machine: {env.get('cpu_model', '?')}, {env.get('nproc', '?')} CPUs, "
        f"{env.get('mem_total_gib', '?')} GiB; PostgreSQL {env.get('postgres_version', '?')} "
        f"(synchronous_commit={env.get('pg_synchronous_commit', '?')}, "
        f"fsync={env.get('pg_fsync', '?')}), RabbitMQ {env.get('rabbitmq_version', '?')}; "
        f"commit {env.get('git_commit', '?')}{' (dirty tree)' if env.get('git_dirty') else ''}."
    )
    lines.append(
        f"Settings: {settings.get('runs', '?')} run(s) × {settings.get('duration_s', '?')} s "
        f"measured after {settings.get('warmup_s', '?')} s warm-up; production: "
        f"{settings.get('workers', '?')} worker(s), database pool {settings.get('db_pool', '?')} per process, "
        f"login batch wait {settings.get('login_batch_wait_ms', '?')} ms, "
        f"PostgreSQL sslmode={settings.get('pg_tls', 'disable')}, "
        f"prefetch {settings.get('prefetch', '?')}, publish channels {settings.get('publish_channels', '?')}; "
        f"embedded: worker concurrency {settings.get('embedded_concurrency', '?')}; "
        f"stub workers {settings.get('stub_workers', '?')}, loadgen threads {settings.get('loadgen_threads', '?')}."
    )
    idle = []
    for path in sorted(glob.glob(os.path.join(directory, "idle-*.json"))):
        s = load(path) or {}
        name = os.path.basename(path)[5:-5]
        busy = (s.get("machine") or {}).get("busy_pct")
        comps = s.get("components") or {}
        secs = (s.get("window") or {}).get("seconds") or 0
        parts = ", ".join(
            f"{k} {100.0 * v['cpu_ms'] / 1000.0 / secs:.1f}%" for k, v in sorted(comps.items()) if secs
        )
        idle.append(f"{name}: machine {fmt(busy)}% busy ({parts})")
    if idle:
        lines.append(
            f"Idle, before the load ({settings.get('idle_s', '?')} s, % of one CPU per component): "
            + "; ".join(idle)
            + "."
        )
    lines.append("")

    # Table 1: throughput and latency.
    lines.append("## Throughput and latency")
    lines.append("")
    lines.append(
        "| scenario | backend | load | logins/s | p50 ms | p90 ms | p99 ms | max ms | errors | 202→polled |"
    )
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in keys:
        g = groups[key]
        backend, scenario = key
        load_desc = g[0].get("load") or ""
        lines.append(
            f"| {scenario} | {backend} | {load_desc} | {agg([r['logins_per_s'] for r in g], 0)} | "
            f"{agg([r['p50_ms'] for r in g], 1)} | {agg([r['p90_ms'] for r in g], 1)} | "
            f"{agg([r['p99_ms'] for r in g], 1)} | {agg([r['max_ms'] for r in g], 0)} | "
            f"{agg([r['errors'] for r in g], 0)} | {agg([r['accepted_then_polled'] for r in g], 0)} |"
        )
    lines.append("")

    # Refresh campaigns: their own figures.
    campaign_keys = [k for k in keys if groups[k][0].get("kind") == "campaign"]
    if campaign_keys:
        lines.append("## Refresh campaigns")
        lines.append("")
        lines.append(
            "A campaign over the seeded links against the stub provider's refresh grant, "
            "started and followed with `socialauth-api campaign start`; refreshes/s on the "
            "campaign's own clock (its creation to its end). In the other tables a "
            "refreshed account counts as a login."
        )
        lines.append("")
        lines.append(
            "| scenario | links | rate asked | refreshes/s | off the rate | refreshed | failed | "
            "service CPU-ms/refresh | worker MB (max) |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key in campaign_keys:
            g = groups[key]
            rate = g[0].get("rate_per_second")
            off = (
                agg([100.0 * (r["logins_per_s"] - rate) / rate for r in g if r["logins_per_s"]], 2) + " %"
                if rate
                else "–"
            )
            lines.append(
                f"| {key[1]} | {agg([r['campaign'].get('total') for r in g], 0)} | "
                f"{fmt(rate, 0) if rate else 'none'} | {agg([r['logins_per_s'] for r in g], 0)} | {off} | "
                f"{agg([r['campaign'].get('refreshed') for r in g], 0)} | "
                f"{agg([r['campaign'].get('failed') for r in g], 0)} | "
                f"{agg([r['cpu_ms_per_login_service'] for r in g], 3)} | "
                f"{agg([r['rss_mb']['worker_max'] for r in g], 0)} |"
            )
        lines.append("")

    # Table 2: CPU per login.
    lines.append("## CPU time per login (ms)")
    lines.append("")
    lines.append(
        "`service` = api + workers + PostgreSQL + RabbitMQ (what a deployment pays); "
        "`whole` adds the stub provider and the load generator. PostgreSQL is every "
        "`postgres` process of the machine (`pg: our db` only the backends of the "
        "benchmark's database); RabbitMQ is `beam.smp` and its children."
    )
    lines.append("")
    lines.append(
        "| scenario | backend | api | workers | postgres | pg: our db | rabbitmq | stub | loadgen | **service** | whole |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in keys:
        g = groups[key]
        backend, scenario = key
        cols = []
        for comp in ("api", "workers", "postgres", "postgres_db", "rabbitmq", "stub", "loadgen"):
            vals = [r["cpu_ms_per_login"].get(comp) for r in g]
            cols.append(agg(vals, 3) if any(v is not None for v in vals) else "–")
        lines.append(
            f"| {scenario} | {backend} | " + " | ".join(cols)
            + f" | **{agg([r['cpu_ms_per_login_service'] for r in g], 3)}**"
            + f" | {agg([r['cpu_ms_per_login_whole'] for r in g], 3)} |"
        )
    lines.append("")

    # Table 3: CPU shares, machine, memory.
    lines.append("## CPU share, machine load and peak memory")
    lines.append("")
    lines.append(
        "Shares are of the whole stack's CPU in the measured window. `cores` = CPUs the "
        "whole stack kept busy; `others` = machine-wide busy time not accounted for by "
        "the stack (other work on the machine), in % of all CPUs. Peak RSS is VmHWM, "
        "reset before each run (or the largest VmRSS sampled, if larger)."
    )
    lines.append("")
    lines.append(
        "| scenario | backend | api % | workers % | postgres % | rabbitmq % | stub % | loadgen % | cores | machine busy % | others % | api MB | worker MB (max) | stub MB |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in keys:
        g = groups[key]
        backend, scenario = key
        cols = []
        for comp in ("api", "workers", "postgres", "rabbitmq", "stub", "loadgen"):
            vals = [r["cpu_share_pct"].get(comp) for r in g]
            cols.append(agg(vals, 0) if any(v is not None for v in vals) else "–")
        lines.append(
            f"| {scenario} | {backend} | " + " | ".join(cols)
            + f" | {agg([r['cores_used_whole'] for r in g], 2)}"
            + f" | {agg([r['machine_busy_pct'] for r in g], 0)}"
            + f" | {agg([r['machine_other_pct'] for r in g], 0)}"
            + f" | {agg([r['rss_mb']['api'] for r in g], 0)}"
            + f" | {agg([r['rss_mb']['worker_max'] for r in g], 0)}"
            + f" | {agg([r['rss_mb']['stub'] for r in g], 0)} |"
        )
    lines.append("")

    notes = []
    for key in keys:
        g = groups[key]
        backend, scenario = key
        failed = [r["run"] for r in g if r.get("exit_code") not in (0, None)]
        if failed:
            notes.append(f"- {scenario} ({backend}): loadgen exited non-zero in run(s) {failed}.")
        kinds: dict[str, int] = {}
        for r in g:
            for k, v in (r.get("errors_by_kind") or {}).items():
                kinds[k] = kinds.get(k, 0) + v
        if kinds:
            top = sorted(kinds.items(), key=lambda kv: -kv[1])[:5]
            notes.append(
                f"- {scenario} ({backend}) errors: " + "; ".join(f"{k} × {v}" for k, v in top) + "."
            )
        hows = {r.get("window_how") for r in g}
        if hows - {"marker"}:
            notes.append(
                f"- {scenario} ({backend}): CPU window from {sorted(h or '?' for h in hows)} "
                "(not the loadgen's measured-phase marker)."
            )
        lags = [r["max_start_lag_ms"] for r in g if r.get("max_start_lag_ms") is not None]
        if lags:
            notes.append(
                f"- {scenario} ({backend}): open loop, largest start lag {fmt(max(lags))} ms "
                "(latency counts from the scheduled start)."
            )
    busy_others = [r["machine_other_pct"] for r in runs if r.get("machine_other_pct") is not None]
    if busy_others and statistics.median(busy_others) > 10:
        notes.insert(
            0,
            f"- **The machine was shared**: other work used a median {statistics.median(busy_others):.0f}% "
            f"(up to {max(busy_others):.0f}%) of all CPUs during the measured windows. Throughput and "
            "latency are then lower bounds; CPU time per login is the steadier figure.",
        )
    for item in left_out:
        notes.append(f"- Left out (a process of the stack died during the run): {item}.")
    for note in env.get("notes") or []:
        notes.append(f"- {note}")
    if notes:
        lines.append("## Notes")
        lines.append("")
        lines.extend(notes)
        lines.append("")

    for key in keys:
        g = groups[key]
        backend, scenario = key
        entry = {
            "scenario": scenario,
            "backend": backend,
            "load": g[0].get("load"),
            "runs": len(g),
            "logins_per_s": stats([r["logins_per_s"] for r in g]),
            "latency_ms": {q: stats([r[f"{q}_ms"] for r in g]) for q in ("p50", "p90", "p99", "max")},
            "errors": stats([r["errors"] for r in g]),
            "accepted_then_polled": stats([r["accepted_then_polled"] for r in g]),
            "cpu_ms_per_login": {
                comp: stats([r["cpu_ms_per_login"].get(comp) for r in g])
                for comp in ("api", "workers", "postgres", "postgres_db", "rabbitmq", "stub", "loadgen", "target")
            },
            "cpu_ms_per_login_service": stats([r["cpu_ms_per_login_service"] for r in g]),
            "cpu_ms_per_login_whole": stats([r["cpu_ms_per_login_whole"] for r in g]),
            "cpu_share_pct": {
                comp: stats([r["cpu_share_pct"].get(comp) for r in g])
                for comp in ("api", "workers", "postgres", "rabbitmq", "stub", "loadgen", "target")
            },
            "machine_busy_pct": stats([r["machine_busy_pct"] for r in g]),
            "machine_other_pct": stats([r["machine_other_pct"] for r in g]),
            "peak_rss_mb": {
                k: stats([r["rss_mb"][k] for r in g]) for k in ("api", "worker_max", "workers_sum", "stub", "target")
            },
            "per_run": g,
        }
        summary["scenarios"].append(entry)
    md = "\n".join(lines)
    with open(os.path.join(directory, "summary.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(directory, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    return md


def other_pct(sampler: dict, ours: tuple) -> float | None:
    """Machine-wide busy time not spent by the measured components, % of all CPUs."""
    machine = sampler.get("machine") or {}
    if not machine.get("total_ms"):
        return None
    comps = sampler.get("components") or {}
    used = sum((comps.get(k) or {}).get("cpu_ms", 0.0) for k in ours)
    return max(0.0, 100.0 * (machine["busy_ms"] - used) / machine["total_ms"])


def limits(directory: str) -> str:
    env = load(os.path.join(directory, "limits", "environment.json")) or {}
    pg_rows = []
    mq_rows = []
    for path in sorted(glob.glob(os.path.join(directory, "limits", "*.json"))):
        item = load(path)
        if not item or "kind" not in item:
            continue
        comps = (item.get("sampler") or {}).get("components") or {}
        machine = (item.get("sampler") or {}).get("machine") or {}
        if item["kind"] == "pgbench":
            tx = item.get("transactions") or 0
            pg_ms = (comps.get("postgres") or {}).get("cpu_ms")
            pg_db_ms = (comps.get("postgres_db") or {}).get("cpu_ms")
            tool_ms = (comps.get("pgbench") or {}).get("cpu_ms")
            pg_rows.append(
                {
                    "name": item.get("name"),
                    "script": item.get("script"),
                    "clients": item.get("clients"),
                    "seconds": item.get("seconds"),
                    "transactions": tx,
                    "tps": item.get("tps"),
                    "latency_ms": item.get("latency_ms"),
                    "postgres_cpu_ms_per_tx": pg_ms / tx if tx and pg_ms is not None else None,
                    "postgres_db_cpu_ms_per_tx": pg_db_ms / tx if tx and pg_db_ms is not None else None,
                    "machine_other_pct": other_pct(item.get("sampler") or {}, ("postgres", "pgbench")),
                    "pgbench_cpu_ms_per_tx": tool_ms / tx if tx and tool_ms is not None else None,
                    "postgres_cores": (comps.get("postgres") or {}).get("cores"),
                    "machine_busy_pct": machine.get("busy_pct"),
                    "exit_code": item.get("exit_code"),
                    "order": item.get("order", 0),
                }
            )
        elif item["kind"] == "amqpbench":
            r = item.get("result") or {}
            n = r.get("messages") or 0
            mq_ms = (comps.get("rabbitmq") or {}).get("cpu_ms")
            tool_ms = (comps.get("amqpbench") or {}).get("cpu_ms")
            mq_rows.append(
                {
                    "name": item.get("name"),
                    "messages": n,
                    "confirm_window": r.get("confirm_window"),
                    "publishers": r.get("publishers"),
                    "consumers": r.get("consumers"),
                    "prefetch": r.get("prefetch"),
                    "size": r.get("size"),
                    "msgs_per_s": r.get("msgs_per_sec"),
                    "confirm_wait_p50_ms": (r.get("confirm_wait_ms") or {}).get("p50"),
                    "end_to_end_p50_ms": (r.get("end_to_end_ms") or {}).get("p50"),
                    "end_to_end_p99_ms": (r.get("end_to_end_ms") or {}).get("p99"),
                    "rabbitmq_cpu_ms_per_msg": mq_ms / n if n and mq_ms is not None else None,
                    "machine_other_pct": other_pct(item.get("sampler") or {}, ("rabbitmq", "amqpbench")),
                    "client_cpu_ms_per_msg": tool_ms / n if n and tool_ms is not None else None,
                    "rabbitmq_cores": (comps.get("rabbitmq") or {}).get("cores"),
                    "machine_busy_pct": machine.get("busy_pct"),
                    "exit_code": item.get("exit_code"),
                    "order": item.get("order", 0),
                }
            )
    pg_rows.sort(key=lambda r: r["order"])
    mq_rows.sort(key=lambda r: r["order"])
    lines = [f"# Infrastructure limits on this machine — {env.get('started_utc', '?')}", ""]
    lines.append(
        f"Machine: {env.get('cpu_model', '?')}, {env.get('nproc', '?')} CPUs; PostgreSQL "
        f"{env.get('postgres_version', '?')} (synchronous_commit={env.get('pg_synchronous_commit', '?')}, "
        f"fsync={env.get('pg_fsync', '?')}, wal_sync_method={env.get('pg_wal_sync_method', '?')}, "
        f"shared_buffers={env.get('pg_shared_buffers', '?')}), RabbitMQ {env.get('rabbitmq_version', '?')}. "
        f"Machine busy before the runs: {fmt(env.get('idle_busy_pct'))}% of all CPUs."
    )
    lines.append("")
    lines.append("## PostgreSQL (pgbench, prepared statements, one run each)")
    lines.append("")
    lines.append(
        "`signup` = BEGIN; INSERT users; INSERT social_accounts; INSERT auth_tokens; COMMIT "
        "(tables of migrations/postgres/0001_init.sql). `code-claim` = the worker's one-statement "
        "autocommit `INSERT INTO login_codes … ON CONFLICT … DO UPDATE … WHERE … RETURNING` "
        "(a new code each time, so an insert). `login` = the worker's one-statement login of a new "
        "identity (data-modifying CTEs: look up the link, insert the user, the link, the app token's hash and "
        "the job's result; autocommit). CPU is every postgres process's, over the run, per transaction."
    )
    lines.append("")
    lines.append(
        "| transaction | clients | TPS | latency avg ms | postgres CPU-ms/tx | of which scratch-db backends | postgres cores | pgbench CPU-ms/tx | machine busy % | others % |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in pg_rows:
        lines.append(
            f"| {r['script']} | {r['clients']} | {fmt(r['tps'], 0)} | {fmt(r['latency_ms'], 2)} | "
            f"{fmt(r['postgres_cpu_ms_per_tx'], 3)} | {fmt(r['postgres_db_cpu_ms_per_tx'], 3)} | "
            f"{fmt(r['postgres_cores'], 2)} | {fmt(r['pgbench_cpu_ms_per_tx'], 3)} | "
            f"{fmt(r['machine_busy_pct'], 0)} | {fmt(r['machine_other_pct'], 0)} |"
        )
    lines.append("")
    lines.append("## RabbitMQ (amqpbench: persistent messages, durable classic queue, confirms, manual ack)")
    lines.append("")
    lines.append(
        "Publishing and consuming at the same time; msgs/s is end to end (all published, "
        "confirmed, delivered and acknowledged). Window = unconfirmed messages per publisher "
        "(1: each publish waits for its confirm, as one api request does)."
    )
    lines.append("")
    lines.append(
        "| run | messages | window | publishers | consumers | prefetch | msgs/s | confirm wait p50 ms | end-to-end p50 / p99 ms | beam CPU-ms/msg | rabbitmq cores | client CPU-ms/msg | machine busy % | others % |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in mq_rows:
        lines.append(
            f"| {r['name']} | {r['messages']} | {r['confirm_window']} | {r['publishers']} | "
            f"{r['consumers']} | {r['prefetch']} | {fmt(r['msgs_per_s'], 0)} | "
            f"{fmt(r['confirm_wait_p50_ms'], 2)} | {fmt(r['end_to_end_p50_ms'], 2)} / "
            f"{fmt(r['end_to_end_p99_ms'], 2)} | {fmt(r['rabbitmq_cpu_ms_per_msg'], 3)} | "
            f"{fmt(r['rabbitmq_cores'], 2)} | {fmt(r['client_cpu_ms_per_msg'], 3)} | "
            f"{fmt(r['machine_busy_pct'], 0)} | {fmt(r['machine_other_pct'], 0)} |"
        )
    lines.append("")
    lines.append("## Against the figures quoted in the issue")
    lines.append("")
    lines.append("| figure | quoted | measured here |")
    lines.append("|---|---:|---:|")

    def pick(rows, **want):
        for r in rows:
            if all(r.get(k) == v for k, v in want.items()):
                return r
        return {}

    w256 = pick(mq_rows, name="mq-window-256")
    w1 = pick(mq_rows, name="mq-window-1")
    s16 = pick(pg_rows, script="signup", clients=16)
    lines.append(f"| persistent confirmed msgs/s, window 256 | ~15,000 | {fmt(w256.get('msgs_per_s'), 0)} |")
    lines.append(f"| persistent confirmed msgs/s, each publish waits | ~1,600 | {fmt(w1.get('msgs_per_s'), 0)} |")
    lines.append(f"| signup transactions/s, 16 clients | ~4,700 | {fmt(s16.get('tps'), 0)} |")
    lines.append(
        f"| postgres CPU-ms per signup transaction, 16 clients | 0.29 | {fmt(s16.get('postgres_cpu_ms_per_tx'), 3)} |"
    )
    lines.append("")
    others = [r["machine_other_pct"] for r in pg_rows + mq_rows if r.get("machine_other_pct") is not None]
    if others and statistics.median(others) > 10:
        lines.append(
            f"**The machine was shared**: other work used a median {statistics.median(others):.0f}% "
            f"(up to {max(others):.0f}%) of all CPUs during these runs, so the rates are lower bounds."
        )
        lines.append("")
    failed = [r["name"] for r in pg_rows + mq_rows if r.get("exit_code") not in (0, None)]
    if failed:
        lines.append(f"Failed runs: {', '.join(str(f) for f in failed)}.")
        lines.append("")
    md = "\n".join(lines)
    with open(os.path.join(directory, "limits.md"), "w") as f:
        f.write(md + "\n")
    with open(os.path.join(directory, "limits.json"), "w") as f:
        json.dump({"environment": env, "postgres": pg_rows, "rabbitmq": mq_rows}, f, indent=1)
        f.write("\n")
    return md


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("bench", "limits"):
        print(__doc__, file=sys.stderr)
        return 2
    md = bench(sys.argv[2]) if sys.argv[1] == "bench" else limits(sys.argv[2])
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
