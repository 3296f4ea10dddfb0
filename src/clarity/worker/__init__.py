"""``clarity worker``: consumes domain events from the broker, sharing partitions.

Each worker heartbeats in ``event_workers`` and holds partitions under leases in
``event_partition_leases`` (:mod:`clarity.worker.leases`), takes its fair share of them
(:mod:`clarity.worker.balance`), consumes exactly the partitions it holds and passes each
event to the handlers of :mod:`clarity.worker.registry` (:mod:`clarity.worker.service`).
"""
