"""The module the Dramatiq CLI loads in each worker process (started by `python -m fanout`)."""

import dramatiq

from fanout import runtime
from fanout.actors import declare_actors
from fanout.broker import build_broker
from settings import Settings

settings = Settings.from_env()
runtime.configure(settings)
broker = build_broker(settings)
dramatiq.set_broker(broker)
declare_actors(broker)
