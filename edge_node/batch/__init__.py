"""``edge-node batch``: a history backfill on Dask with the edge's bundle and scoring code
(inputs.py: files and partitions; aggregate.py: days, cohorts, daily aggregates; job.py: the run).
Needs the ``batch`` extra (dask[distributed], pyarrow); serving never imports this package."""
