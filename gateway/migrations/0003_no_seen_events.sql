-- Events are de-duplicated once, by their consumers, in the transaction of their effect
-- (dispatch.processed_events); the edge is a stateless bridge into the internal log.
DROP TABLE IF EXISTS gateway.seen_events;
