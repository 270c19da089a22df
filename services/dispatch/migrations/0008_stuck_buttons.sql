-- A stuck button (homecare/buttons.py): each button key's current run of quick presses, so the
-- rule carries on across restarts and replicas, with what the run's presses added to the urgency
-- of the request they joined (taken back once the run proves stuck).
CREATE TABLE IF NOT EXISTS dispatch.press_runs (
    device_id    text NOT NULL,
    service      text NOT NULL,
    started_at   timestamptz NOT NULL,  -- the run's first press, by the device's clock
    last_at      timestamptz NOT NULL,
    presses      int NOT NULL CHECK (presses >= 1),
    stuck_since  timestamptz,  -- the press at which the run was judged stuck
    request_id   text,  -- the request the run's presses joined
    raised       int NOT NULL DEFAULT 0 CHECK (raised >= 0),  -- urgency they added to it after the first
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, service)
);

-- The mark on a request a stuck button's presses joined: shown on the board, in the API and (when
-- judged) in its timeline. The run's figures, updated as the stuck presses go on.
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS stuck_presses int;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS stuck_from timestamptz;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS stuck_to timestamptz;
