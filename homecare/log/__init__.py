"""The internal log: NATS JetStream between the device edge and the services.

`Log` is a service's connection (streams, publishing); `Consumer` is the one consumer runtime
every service uses (fetch, handle, commit, ack; retry, dead-letter, lag). Subjects are named in
`homecare.topics.Subjects`, streams in `streams`."""

from homecare.settings import Settings

from . import streams
from .client import Log
from .consumer import Consumer, ConsumerSpec, Delivery, Durable, Handler, PermanentError, system_fault


def connect(settings: Settings, component: str) -> Log:
    """The log of a component, not yet started: named after the component and its replica."""
    return Log(settings.nats_url, settings.client_id(component), settings.log_namespace, settings.log_replicas)


__all__ = ["Consumer", "ConsumerSpec", "Delivery", "Durable", "Handler", "Log", "PermanentError", "connect", "streams",
           "system_fault"]
