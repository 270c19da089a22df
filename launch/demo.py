"""`homecare demo`: the whole network in one process with simulated homes and providers."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass

from homecare.auth import Role, create_user
from homecare.db import migrate, open_pool
from homecare.logs import error_counter
from homecare.settings import Settings
from launch import assemble
from launch.embedded import start_mail_sink
from launch.infra import resolve
from launch.serve import HttpServer, tune_gc, wait_for_stop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str
    districts: tuple[str, ...] = ()  # a district dispatcher's; empty: every district


def run_demo(settings: Settings, args) -> int:
    """Run everything until Ctrl-C or --duration; with --check, judge the run by its results."""
    from devices.simulator.run import Simulation
    from devices.simulator.scenario import Scenario

    # An embedded mosquitto enforces device identity: each device and each component has its own
    # account (dynamic security), as in a deployment.
    infra = resolve(settings, broker_auth=True)
    settings = infra.settings
    mail = _notifications()
    pool = None
    components = []
    server = simulation = None
    try:
        migrate(settings.database_url)
        pool = open_pool(settings.database_url, max_size=20, name="demo")
        port = _port(settings.http_host, args.port or settings.http_port)
        os.environ.setdefault("HOMECARE_NOTIFY_CONSOLE_URL", f"http://{settings.http_host}:{port}")  # links in mails
        components = [
            assemble.build_component(n, settings.for_component(n), pool) for n in assemble.BUILDERS
        ]
        tune_gc()
        for component in components:
            component.start()
        server = HttpServer(assemble.http_app("homecare", pool, components, True), settings.http_host, port,
                            settings.http_trusted_proxies)
        server.start()
        scenario = Scenario.demo(homes=args.homes, providers=args.providers)
        if args.speed:
            scenario = scenario.model_copy(update={"speed": args.speed})
        logins = _create_logins(pool, demo_logins(scenario))
        admin = logins[0]

        simulation = Simulation(server.url, settings.mqtt_url, scenario, admin.username, admin.password)
        simulation.start()
        logins.extend(Login(u, p, "provider") for u, p in simulation.provider_logins()[:1])
        _banner(server.url, settings, logins, infra, mail)

        why = wait_for_stop(args.duration)
        log.info("demo stopping: %s", why)
        if args.check:
            return _check(pool, simulation)
        return 0
    finally:
        if simulation:
            simulation.stop()
        # Components before the HTTP server: the console's stop ends open event streams.
        for component in reversed(components):
            component.stop()
        if server:
            server.stop()
        if pool:
            pool.close()
        if mail:
            mail.stop()
        infra.stop()


def _port(host: str, wanted: int) -> int:
    """The wanted port when it is free, else (or when 0) any free one."""
    with socket.socket() as sock:
        try:
            sock.bind((host, wanted))
            port = sock.getsockname()[1]
            if wanted:
                return port
        except OSError:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    if not wanted:
        return port
    log.warning("port %d is busy; the console uses %d instead", wanted, port)
    return port


def demo_logins(scenario) -> list[Login]:
    """The city's admin and a dispatcher of the city bureau (role city: every district), and a
    dispatcher of each of the first two districts the simulated homes live in, with fresh random
    passwords (printed, never stored plain)."""
    from devices.simulator.geo import districts_of

    logins = [Login("admin", secrets.token_urlsafe(9), "admin"),
              Login("dispatcher", secrets.token_urlsafe(9), "city")]
    for district in districts_of(scenario.districts)[:2]:
        slug = "".join(c for c in district.name.lower() if c.isalnum())
        logins.append(Login(f"dispatcher-{slug}", secrets.token_urlsafe(9), "dispatcher", (district.name,)))
    return logins


def _create_logins(pool, logins: list[Login]) -> list[Login]:
    with pool.connection() as conn:
        for login in logins:
            create_user(conn, login.username, login.password, Role(login.role), districts=login.districts)
    return logins


# The demo's notification rules, unless HOMECARE_NOTIFY_RULES says otherwise: the on-call desk hears
# of everything critical or high, and consenting family of a critical alert or an escalated emergency.
DEMO_RULES = [
    {"severities": ["critical", "high"], "channel": "email", "recipients": ["on-call@care.example"]},
    {"severities": ["critical"], "triggers": ["request.escalated", "alert.raised"], "channel": "email",
     "recipients": ["family"]},
]


def _notifications():
    """A local SMTP sink that prints each mail, and the demo's rules, unless HOMECARE_NOTIFY_*
    name real ones. The components read these settings from the environment when built."""
    if os.environ.get("HOMECARE_NOTIFY_SMTP_URL"):
        return None
    sink = start_mail_sink(lambda text: print(f"  [notification] {text}", file=sys.stderr, flush=True))
    if sink is None:
        log.warning("aiosmtpd is not installed: the demo sends no notification mails")
        return None
    os.environ["HOMECARE_NOTIFY_SMTP_URL"] = sink.url
    os.environ.setdefault("HOMECARE_NOTIFY_RULES", json.dumps(DEMO_RULES))
    return sink


def _banner(url: str, settings: Settings, logins: list[Login], infra, mail=None) -> None:
    embedded = ", ".join(f"{e.name} at {e.url}" for e in [*infra.embedded, *([mail] if mail else [])]) \
        or "none (configured URLs)"
    lines = [
        "",
        "  Home-care network demo is running.",
        f"  Console and API:  {url}/          (OpenAPI: {url}/docs)",
        f"  Embedded:         {embedded}",
        "  Logins:",
        *[f"    {lg.role:<11} {lg.username:<20} {lg.password:<14} {_where(lg)}" for lg in logins],
        *(["  Notifications:    mails go to the local SMTP sink and are printed here as [notification]"]
          if mail else []),
        "  Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _where(login: Login) -> str:
    if login.districts:
        return f"district {', '.join(login.districts)}"
    return "every district" if login.role in ("admin", "city") else ""


def _check(pool, simulation) -> int:
    """Exit status of --check: samples stored, requests completed, no error logged."""
    from services.dispatch import queries as dispatch_queries
    from services.telemetry import queries as telemetry_queries

    with pool.connection() as conn:
        samples = telemetry_queries.count_samples(conn)
        by_status = dispatch_queries.count_by_status(conn)
    stats = simulation.stats()
    problems = []
    if samples <= 0:
        problems.append("no bed samples were stored")
    if by_status.get("completed", 0) <= 0:
        problems.append("no request was completed")
    roster = simulation.roster
    if simulation.scenario.care.share > 0 and not (roster and roster.care_plans and roster.planned_days):
        problems.append("the homes got no care plans, or no day was planned")
    if error_counter.count:
        problems.append(f"{error_counter.count} error(s) logged, first: {error_counter.first}")
    summary = {"samples_stored": samples, "requests": by_status, "simulator": stats,
               "care_plans": len(roster.care_plans) if roster else 0,
               "planned_days": roster.planned_days if roster else []}
    print(f"demo check: {summary}", file=sys.stderr)
    for problem in problems:
        print(f"demo check FAILED: {problem}", file=sys.stderr)
    if not problems:
        print("demo check passed", file=sys.stderr)
    return 1 if problems else 0


