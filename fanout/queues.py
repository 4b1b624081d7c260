"""Which worker processes consume which Dramatiq queues (no imports: the dev stack reads it).

Video processing runs minutes-long jobs in a child process; it gets worker processes of its own
(`python -m fanout --queues video`) so that it never holds a thread fan-out needs. Every other
queue is consumed by the general workers. A test checks that the two lists cover every queue
an actor declares.
"""

GENERAL_QUEUES = ("fanout", "feeds", "accounts", "media")
VIDEO_QUEUES = ("video",)
