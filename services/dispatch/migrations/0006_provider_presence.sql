-- Provider presence: when the provider's app (or the provider, by any action) was last heard
-- from. A provider on shift not heard from for `presence_timeout_s` gets no offers and shows as
-- unreachable. Going on shift counts as a sign of life, so providers on shift now start alive.
ALTER TABLE dispatch.providers ADD COLUMN IF NOT EXISTS last_seen_at timestamptz;
UPDATE dispatch.providers SET last_seen_at = now() WHERE on_shift AND last_seen_at IS NULL;
