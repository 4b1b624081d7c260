"""The module the Dramatiq CLI loads in each worker process (started by `python -m fanout`): the
workers' composition root, as `app` is the API's (both built by `wiring`).

A worker process dies with the `python -m fanout` parent that forked it, even if that parent is
killed with SIGKILL: the parent was its only reader of the log pipe (an orphan blocks writing to
it) and its only supervisor. The worker gets SIGKILL, not a graceful stop that would log into
that pipe; the messages it held are redelivered once its broker heartbeats stop
(BROKER_HEARTBEAT_TIMEOUT_MS).
"""

import multiprocessing
import signal

import dramatiq

from ops.lifeline import die_with_parent
from settings import Settings
from wiring import WorkerJobs

_parent = multiprocessing.parent_process()
if _parent is not None and _parent.pid is not None:  # forked by the Dramatiq CLI
    die_with_parent(_parent.pid, signal.SIGKILL)

broker = WorkerJobs(Settings.from_env()).broker  # the Dramatiq CLI looks for `broker` here
dramatiq.set_broker(broker)
