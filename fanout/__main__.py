"""`python -m fanout [dramatiq options]`: run the workers (the `dramatiq` CLI on `worker.py`).

Dramatiq reads how long an idle worker sleeps before polling its queues again from the
environment when it is imported, with a default of 1 s: that would add up to a second to each
hop of the fan-out. So it is set from WORKER_IDLE_POLL_MS before dramatiq is imported.
"""

import os
import sys

from settings import Settings, SettingsError

if __name__ == "__main__":
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"fanout: bad setting: {exc}")
    os.environ["dramatiq_worker_timeout"] = str(settings.worker_idle_poll_ms)  # noqa: SIM112 (its name)
    import dramatiq.cli

    args = dramatiq.cli.make_argument_parser().parse_args(["worker", *sys.argv[1:]])
    sys.exit(dramatiq.cli.main(args))
