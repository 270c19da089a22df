"""The benchmarks' CPU series: each interval's cores per group of processes, so that a slow moment
of a run can be set beside what was using the machine then."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.common.machine import CpuSeries

_BURN = "import time\nend = time.monotonic() + 1.2\nwhile time.monotonic() < end:\n    pass\n"


def test_a_busy_process_shows_in_its_groups_intervals_and_an_idle_one_does_not():
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.6)\n" + _BURN])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        series = CpuSeries({"busy": lambda: [busy.pid], "idle": lambda: [idle.pid], "gone": lambda: [2**22 + 7]},
                           interval_s=0.25)
        series.start()
        time.sleep(2.2)
        rows = series.stop()
    finally:
        busy.wait(5)
        idle.kill()
        idle.wait(5)
    assert len(rows) >= 6 and [r["t"] for r in rows] == sorted(r["t"] for r in rows)
    assert max(r["busy"] for r in rows) > 0.3  # about a core while it spun (less on a shared machine)
    assert rows[0]["busy"] < 0.5  # asleep at first (its start-up is before the first reading)
    assert max(r["idle"] for r in rows) < 0.2
    assert all(r["gone"] == 0.0 for r in rows)  # a process that is not there counts nothing
