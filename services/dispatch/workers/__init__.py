"""Background work of dispatch: the event consumer, the outbox publisher, the timer loop."""
