"""The module the Dramatiq CLI loads in each worker process (started by `python -m fanout`).

A worker process dies with the `python -m fanout` parent that forked it, even if that parent is
killed with SIGKILL: the parent was its only reader of the log pipe (an orphan blocks writing to
it) and its only supervisor. The worker gets SIGKILL, not a graceful stop that would log into
that pipe; the messages it held are redelivered once its broker heartbeats stop
(BROKER_HEARTBEAT_TIMEOUT_MS).
"""

import multiprocessing
import signal

import dramatiq

from devstack.lifeline import die_with_parent
from fanout import runtime
from fanout.actors import declare_actors
from fanout.broker import build_broker
from settings import Settings

_parent = multiprocessing.parent_process()
if _parent is not None and _parent.pid is not None:  # forked by the Dramatiq CLI
    die_with_parent(_parent.pid, signal.SIGKILL)

settings = Settings.from_env()
runtime.configure(settings)
broker = build_broker(settings)
dramatiq.set_broker(broker)
declare_actors(broker)
