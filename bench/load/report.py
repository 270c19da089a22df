"""The load benchmark's result: the JSON body and the table."""

from __future__ import annotations

from collections import Counter
from typing import Any

from devices.simulator.misbehaviour import EXPECTED_CODE
from devices.simulator.stats import summarize

from ..common.results import now_iso
from ..common.table import print_table, verdict
from .run import LoadRun

TARGETS = {"devices": 10_000, "ratio": 0.8, "press_to_ack_p99_ms": 250.0}


def compose(run: LoadRun, notes: list[str] | None = None) -> dict[str, Any]:
    w = run.window
    span = w["t1"] - w["t0"]
    before, after = w["before"], w["after"]
    offered = (after["sim"]["samples_sent"] - before["sim"]["samples_sent"]) / span
    platform_steady = (after["stored"] - before["stored"]) / span if after["stored"] is not None else None
    bare_steady = (after["bare"]["samples"] - before["bare"]["samples"]) / span
    platform_cap = run.platform_drain.samples_per_s if run.platform_drain else None
    bare_cap = run.bare_drain.samples_per_s if run.bare_drain else None
    samples_per_s = platform_cap if platform_cap else platform_steady
    bare = bare_cap if bare_cap else bare_steady
    ratio = round(samples_per_s / bare, 3) if samples_per_s and bare else None
    stats = run.sim_report.get("stats", {})
    series = run.sim_report.get("press_to_ack_ms", [])
    in_window = summarize([v for t, v in series if w["t0"] <= t <= w["t1"]])
    whole_run = summarize([v for _, v in series])
    probe = summarize([v for v in run.probe_ms if v is not None])
    devices = max((r for r in (before["sim"].get("devices_connected"), after["sim"].get("devices_connected")) if r),
                  default=0)
    broker_values = [v for _, v in run.broker_series if v is not None]
    body: dict[str, Any] = {
        "benchmark": "load",
        "finished_at": now_iso(),
        "devices": devices,
        "devices_total": stats.get("devices_total"),
        "samples_per_s": _r(samples_per_s),
        "bare_pipe_samples_per_s": _r(bare),
        "ratio": ratio,
        "press_to_ack_p50_ms": in_window["p50"],
        "press_to_ack_p99_ms": in_window["p99"],
        "press_to_ack_max_ms": in_window["max"],
        "press_to_ack_count": in_window["count"],
        "probe_press_to_ack_p50_ms": probe["p50"],
        "probe_press_to_ack_p99_ms": probe["p99"],
        "probe_press_to_ack_max_ms": probe["max"],
        "probe_presses": len(run.probe_ms),
        "probe_unanswered": sum(v is None for v in run.probe_ms),
        "press_to_offer_p99_ms": run.offers.get("press_to_offer_p99_ms"),
        "press_to_offer_p50_ms": run.offers.get("press_to_offer_p50_ms"),
        "how_measured": {
            "samples_per_s": "the platform's capacity: the gateway is paused (SIGSTOP) while the devices keep "
                             "sending, then resumed; samples durable per second (telemetry's stored counter, "
                             "after commit) while the backlog drains, least-squares slope",
            "bare_pipe_samples_per_s": "the same for the bare pipe (one paho subscriber COPYing every telemetry "
                                       "payload into an index-less table, acknowledged on receipt, no validation)",
            "press_to_ack": "at the device: from sending button.pressed to the request.acknowledged (or, for a "
                            "repeat press on an assigned request, request.assigned) that answers it; presses "
                            "in the steady window only",
            "probe_press_to_ack": "the same at the benchmark's own button, a connection of its own outside the "
                                  "simulator (whose event loop, busy with thousands of devices, adds its own lag "
                                  "to what it times), pressing every few seconds in the steady window; an answer "
                                  "not within 5 s counts as unanswered",
            "hops": "press -> acknowledgement hop by hop from the database, on the platform's clock "
                    "(bench/load/hops.py): the gateway's receipt -> dispatch's transaction -> the publisher's round "
                    "that had the broker take the command, for requests opened by a press in the steady window",
            "press_to_offer": "first offer's created_at (dispatch's request detail) minus the moment the device "
                              "sent the press, for requests opened by a press in the steady window",
            "dispatch_consumers": "per consumer of dispatch, in the steady window, from its /metrics "
                                  "(homecare_log_wait_seconds, homecare_log_handle_seconds): how long a message "
                                  "waited in the log from being stored to dispatch starting on it, and how long "
                                  "dispatch took on it; upper bounds of the histogram buckets holding the p50 and p99",
        },
        "steady": {
            "window_s": round(span, 1),
            "offered_samples_per_s": _r(offered),
            "platform_samples_per_s": _r(platform_steady),
            "bare_pipe_samples_per_s": _r(bare_steady),
            "messages_per_s": _r((after["sim"]["messages_sent"] - before["sim"]["messages_sent"]) / span),
            "presses": after["sim"]["presses"] - before["sim"]["presses"],
            "simulator_loop_lag_max_ms": w.get("lag_max_ms"),
            "cpu_cores": run.cpu_cores,
            "cpu_series": run.cpu_series,
        },
        "capacity": {
            "platform": run.platform_drain.as_dict() if run.platform_drain else None,
            "bare_pipe": run.bare_drain.as_dict() if run.bare_drain else None,
        },
        "press_to_ack_whole_run_ms": whole_run,
        "probe_press_to_ack_ms": run.probe_ms,
        "probe_pressed_at": run.probe_at,
        "hops_ms": run.hops,
        "dispatch_consumers": run.log_waits,
        "press_to_offer": run.offers,
        "rejections": _rejections(stats, run.gateway_metrics),
        "backlog": {
            "broker_stored_messages_steady_start": broker_values[0] if broker_values else None,
            "broker_stored_messages_steady_end": broker_values[-1] if broker_values else None,
            "broker_stored_messages_series": run.broker_series,
            "at_end": run.end,
        },
        "simulator": {
            **{k: stats.get(k) for k in (
                "messages_sent", "samples_sent", "presses", "acks_sent", "errors_received", "connect_failures",
                "disconnects", "devices_misbehaving", "commands_received", "presses_unanswered")},
            **{k: run.crew_report.get("stats", {}).get(k) for k in (
                "offers_seen", "offers_accepted", "offers_declined", "requests_arrived", "requests_completed",
                "provider_errors")},
        },
        "setup": {"connect_s": run.connect_s, "platform_caught_up_after_connect_s": run.settle_s,
                  "provision_s": run.provision_s,
                  "closed_earlier_requests": run.closed_earlier_requests,
                  "scenario": run.scenario.model_dump(mode="json"), "options": _options(run)},
        "machine": run.machine,
        "other_load": run.other_load,
        "notes": notes or [],
    }
    body["targets"] = {
        "devices >= 10000": verdict(devices, TARGETS["devices"], True),
        "ratio >= 0.8": verdict(ratio, TARGETS["ratio"], True),
        "press_to_ack_p99 < 250 ms": verdict(in_window["p99"], TARGETS["press_to_ack_p99_ms"], False),
        "probe press_to_ack_p99 < 250 ms": verdict(probe["p99"], TARGETS["press_to_ack_p99_ms"], False),
    }
    return body


def _rejections(stats: dict[str, Any], gateway: dict[str, Any]) -> dict[str, Any]:
    sent = stats.get("misbehaviour_sent", {}) or {}
    expected: Counter[str] = Counter()
    for label, n in sent.items():
        code = EXPECTED_CODE.get(label)
        if code:
            expected[code] += n
    return {
        "sent_by_label": sent,
        "expected_by_code": dict(expected),
        "rejected_by_code": gateway.get("rejected_by_code", {}),
        "duplicates_sent": {k: v for k, v in sent.items() if k.startswith("duplicate.")},
        "event_duplicates_dropped": gateway.get("event_duplicates"),
        "sample_duplicates_dropped": gateway.get("sample_duplicates"),
    }


def _options(run: LoadRun) -> dict[str, Any]:
    o = run.options
    return {"devices": o.devices, "duration_s": o.duration_s, "warmup_s": o.warmup_s, "backlog_s": o.backlog_s,
            "misbehaving": o.misbehaving, "broker_auth": o.broker_auth}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def show(body: dict[str, Any]) -> None:
    t = body["targets"]
    steady, rej = body["steady"], body["rejections"]
    rows = [
        ["connected devices", body["devices"], "10,000", t["devices >= 10000"]],
        ["ingest, platform (samples/s durable)", body["samples_per_s"], "", ""],
        ["ingest, bare pipe (samples/s durable)", body["bare_pipe_samples_per_s"], "", ""],
        ["ratio platform / bare pipe", body["ratio"], ">= 0.8", t["ratio >= 0.8"]],
        ["steady: offered / platform / bare (samples/s)",
         f"{steady['offered_samples_per_s']} / {steady['platform_samples_per_s']}"
         f" / {steady['bare_pipe_samples_per_s']}",
         "", ""],
        ["press -> ack p50 / p99 / max (ms, at the device)",
         f"{body['press_to_ack_p50_ms']} / {body['press_to_ack_p99_ms']} / {body['press_to_ack_max_ms']}"
         f"  (n={body['press_to_ack_count']})", "p99 < 250", t["press_to_ack_p99 < 250 ms"]],
        ["press -> ack p50 / p99 / max (ms, the bench's own button)",
         f"{body['probe_press_to_ack_p50_ms']} / {body['probe_press_to_ack_p99_ms']}"
         f" / {body['probe_press_to_ack_max_ms']}"
         f"  (n={body['probe_presses']}, unanswered {body['probe_unanswered']})", "p99 < 250",
         t["probe press_to_ack_p99 < 250 ms"]],
        ["hops p50 / p99 (ms): gateway>dispatch, dispatch>broker",
         ", ".join(f"{(body['hops_ms'].get(h) or {}).get('p50')}/{(body['hops_ms'].get(h) or {}).get('p99')}"
                   for h in ("gateway_to_dispatch", "dispatch_to_broker")),
         "", ""],
        ["press -> first offer p50 / p99 (ms)", f"{body['press_to_offer_p50_ms']} / {body['press_to_offer_p99_ms']}"
         f"  (n={body['press_to_offer'].get('count')})", "", ""],
        ["rejected by code (expected from what was sent)",
         ", ".join(f"{c} {n} ({rej['expected_by_code'].get(c, 0)})" for c, n in sorted(rej['rejected_by_code'].items()))
         or "-", "", ""],
        ["broker stored messages, steady start -> end",
         f"{body['backlog']['broker_stored_messages_steady_start']} -> "
         f"{body['backlog']['broker_stored_messages_steady_end']}", "no growth", ""],
        ["lag at the end (samples): platform / bare pipe",
         f"{body['backlog']['at_end'].get('platform_lag_samples')} / "
         f"{body['backlog']['at_end'].get('bare_pipe_lag_samples')}", "", ""],
        ["CPU (cores) in the steady window", ", ".join(f"{k} {v}" for k, v in steady["cpu_cores"].items()), "", ""],
    ]
    print_table("load benchmark", ["measure", "value", "target", ""], rows)
