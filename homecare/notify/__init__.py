"""Notifications outside the console: e-mail and a signed webhook (SMS or paging gateway).

Why here, in the shared core: dispatch (escalated requests) and telemetry (alerts) both notify,
and telemetry may not be imported by dispatch nor dispatch's internals by telemetry. The core
imports no component, so both use one routing decision (`model`), one channel interface
(`channels`), one outbox (`outbox`) and one sender loop (`sender`) from here. Each service keeps
its own outbox table in its own schema (`dispatch.notifications`, `telemetry.notifications`),
writes a notice into it in the transaction of the change that causes it, and runs the sender on
it with a callback that writes the delivery results into its own timeline (a request's or an
alert's): no service reads another's tables.
"""
