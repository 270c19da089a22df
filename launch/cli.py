"""`homecare`: one command line for every component of the network."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

from homecare.settings import Settings

log = logging.getLogger("homecare")

COMPONENTS = ("gateway", "telemetry", "dispatch", "console")
# Database connections per process (HOMECARE_DATABASE_POOL_MAX overrides): dispatch's three
# laned consumers hold one each per lane (3 x 4) beside its devices consumer, timers and
# publisher: up to 15 threads may want one at once (homecare_db_pool_* on /metrics shows waits).
POOL_MAX = {"dispatch": 20}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `homecare` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args) or 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homecare", description=__doc__)
    sub = parser.add_subparsers(metavar="COMMAND")

    for name in COMPONENTS:
        p = sub.add_parser(
            name, help=f"run the {name} (needs HOMECARE_DATABASE_URL, HOMECARE_MQTT_URL and HOMECARE_NATS_URL)"
        )
        p.add_argument("--port", type=int, help="HTTP port for health, metrics and API (HOMECARE_HTTP_PORT)")
        p.set_defaults(func=_run_component, component=name)
        if name == "telemetry":
            p.add_argument(
                "action", nargs="?", choices=["run-jobs"],
                help="run-jobs: run TimescaleDB's due policy jobs (aggregate refresh, compression, retention)"
                     " in the foreground and exit, for servers whose background workers cannot; a cron job",
            )
            p.add_argument("--all", action="store_true", help="with run-jobs: every job, due or not")

    p = sub.add_parser("demo", help="run the whole network with simulated homes")
    p.add_argument("--homes", type=int, default=20)
    p.add_argument("--providers", type=int, default=8)
    p.add_argument("--speed", type=float, default=None, help="simulated clock speed (default: the demo preset)")
    p.add_argument("--port", type=int, help="console and API port (default 8080)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument(
        "--check", action="store_true",
        help="headless: fail unless samples were stored, requests completed and nothing logged an error",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("simulate", help="simulate homes and providers against a running network")
    p.add_argument("scenario", nargs="?", help="scenario file (TOML or YAML); default: the demo preset")
    p.add_argument("--api-url", default="http://127.0.0.1:8080")
    p.add_argument("--admin-user", default="admin")
    p.add_argument("--admin-password", help="default: read from stdin")
    p.add_argument("--duration", type=float)
    p.add_argument("--homes", type=int, help="override the scenario's number of homes")
    p.add_argument("--speed", type=float, help="override the scenario's clock speed")
    p.add_argument("--roster", help="roster file: loaded when it exists, else written after provisioning")
    p.add_argument("--provision-only", action="store_true", help="provision (and save --roster), then exit")
    p.add_argument("--shard", help="i/n: run every n-th home starting at i (processes share a --roster)")
    p.add_argument("--no-providers", action="store_true", help="run devices only (shard 0 runs providers)")
    p.add_argument("--no-devices", action="store_true", help="run the providers only")
    p.add_argument("--interval", type=float, help="seconds between progress updates (default 2)")
    p.add_argument("--report", help="write the final counters and press latencies here (JSON)")
    p.add_argument("--ledger", help="write what the broker accepted per device here (JSON)")
    p.set_defaults(func=_simulate)

    users = sub.add_parser("users", help="manage console and API accounts").add_subparsers(metavar="ACTION")
    p = users.add_parser("add", help="create or reset an account; the password is read from stdin")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["admin", "dispatcher", "provider"])
    p.add_argument("--provider-id", help="for role provider: the provider this login acts for")
    p.set_defaults(func=_users_add)

    contract = sub.add_parser("contract", help="the device contract").add_subparsers(metavar="ACTION")
    p = contract.add_parser("schema", help="write the JSON Schema of every mqtt-v1 payload")
    p.add_argument("--out", default="contract/schema", help="folder (default: contract/schema)")
    p.set_defaults(func=_contract_schema)

    p = sub.add_parser("plan", help="plan a day's routes from the care plans now (the day planner), and exit")
    p.add_argument("--day", type=_day, help="YYYY-MM-DD in the service centre's time zone (default: tomorrow)")
    p.set_defaults(func=_plan)

    p = sub.add_parser("migrate", help="apply database migrations and exit")
    p.set_defaults(func=_migrate)
    return parser


def _day(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a day like 2026-12-24: {text!r}") from exc


def _plan(args) -> int:
    """Plan (or replan) a day's routes now, as `POST /api/v1/plans/{day}` does; prints the run.
    The dispatch service also plans the next day each evening (HOMECARE_DISPATCH_PLAN_EVENING_HOUR)."""
    from datetime import timedelta

    from homecare.db import migrate, open_pool
    from homecare.shards import first_name
    from services.dispatch.interface import DispatchSettings, context, plan_day_now, today_of_plans

    settings = _setup("plan")
    if not settings.database_url:
        print("set HOMECARE_DATABASE_URL to the network's database", file=sys.stderr)
        return 2
    migrate(settings.database_url, first_shard=first_name(settings))
    ctx = context(DispatchSettings())
    day = args.day or today_of_plans(ctx) + timedelta(days=1)
    pool = open_pool(settings.database_url, name="plan", max_size=1)
    try:
        with pool.connection() as conn:
            run = plan_day_now(conn, ctx, day, "cli")
    finally:
        pool.close()
    bound = f", bound {run['bound_minutes']:.0f} min" if run["bound_minutes"] is not None else ""
    print(f"{day.isoformat()}: {run['visits']} visits, {run['planned']} on routes ({run['kept']} kept as"
          f" released), {run['unplanned']} unplanned, {run['workers']} providers; travel"
          f" {run['travel_minutes']:.0f} min{bound}; {run['solver']} in {run['seconds']:.1f} s")
    return 0


def _setup(component: str) -> Settings:
    from homecare.logs import setup_logging

    settings = Settings()
    setup_logging(component, settings.log_level, settings.log_json)
    return settings


def _run_component(args) -> int:
    if getattr(args, "action", None) == "run-jobs":
        return _telemetry_run_jobs(args)
    from homecare.db import migrate, open_pool
    from homecare.shards import first_name
    from launch import assemble
    from launch.infra import resolve
    from launch.serve import HttpServer, tune_gc, wait_for_stop

    settings = _setup(args.component)
    settings = resolve(settings, allow_embedded=False).settings
    migrate(settings.database_url, first_shard=first_name(settings))
    pool = open_pool(settings.database_url, name=args.component,
                     max_size=settings.database_pool_max or POOL_MAX.get(args.component, 8))
    # The console serves the whole operator API; its routes call the other packages' Python
    # interfaces, which it builds without starting their workers.
    names = COMPONENTS if args.component == "console" else (args.component,)
    components = [assemble.build_component(n, settings, pool) for n in names]
    running = [c for c in components if c.name == args.component]
    app = assemble.http_app(f"homecare {args.component}", pool, components, args.component == "console", running)
    server = HttpServer(app, settings.http_host, args.port or settings.http_port, settings.http_trusted_proxies)
    try:
        tune_gc()
        for component in running:
            component.start()
        server.start()
        log.info("%s running", args.component, extra={"http": server.url})
        wait_for_stop()
    finally:
        # Components first: the console's stop ends open event streams, which the HTTP server
        # would otherwise wait on until its graceful timeout.
        for component in reversed(running):
            component.stop()
        server.stop()
        pool.close()
    return 0


def _telemetry_run_jobs(args) -> int:
    from homecare.db import Flavour, migrate
    from homecare.shards import first_name
    from services.telemetry.store.jobs import run_due

    settings = _setup("telemetry")
    if not settings.database_url:
        print("set HOMECARE_DATABASE_URL", file=sys.stderr)
        return 2
    if migrate(settings.database_url, first_shard=first_name(settings)) is not Flavour.TIMESCALE:
        print("plain PostgreSQL: there are no TimescaleDB jobs (the telemetry service keeps retention itself)")
        return 0
    runs = run_due(settings.database_url, every=args.all)
    for run in runs:
        took = (run.finished_at - run.started_at).total_seconds()
        outcome = f"failed: {run.error}" if run.error else "done"
        print(f"{run.job.name} (job {run.job.job_id}): {outcome} in {took:.1f} s")
    if not runs:
        print("no job is due")
    return 1 if any(run.error for run in runs) else 0


def _demo(args) -> int:
    from launch.demo import run_demo

    settings = _setup("demo")
    return run_demo(settings, args)


def _simulate(args) -> int:
    from devices.simulator.cli import run_simulate

    settings = _setup("simulator")
    password = args.admin_password or _read_password()
    return run_simulate(settings, args, password)


def _users_add(args) -> int:
    import psycopg

    from homecare.auth import Role, audit, create_user
    from homecare.auth.policy import password_problem
    from homecare.db import migrate

    settings = _setup("users")
    if not settings.database_url:
        print("set HOMECARE_DATABASE_URL to the network's database", file=sys.stderr)
        return 2
    password = _read_password()
    problem = password_problem(password, args.name)  # the same policy as the API's
    if problem:
        print(f"error: password {problem}", file=sys.stderr)
        return 2
    migrate(settings.database_url, ["core"])
    try:
        with psycopg.connect(settings.database_url) as conn:
            create_user(conn, args.name, password, Role(args.role), args.provider_id)
            audit.record(conn, "cli", "user.saved", f"user:{args.name}",
                         {"role": args.role, "provider_id": args.provider_id})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"account {args.name} ({args.role}) saved")
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")


def _contract_schema(args) -> int:
    from homecare.contract.schema import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def _migrate(args) -> int:
    from homecare.db import migrate
    from homecare.shards import first_name

    settings = _setup("migrate")
    if not settings.database_url:
        print("set HOMECARE_DATABASE_URL", file=sys.stderr)
        return 2
    flavour = migrate(settings.database_url, first_shard=first_name(settings))
    print(f"migrations applied ({flavour.value})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
