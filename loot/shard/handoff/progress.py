"""A shard's handoff progress: what the Status RPC answers and Prometheus scrapes."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from loot.internal.v1 import shard_pb2


@dataclass
class Progress:
    epoch: int = 0
    settled: bool = True
    to_pull: int = 0
    pulled: int = 0
    handed_off: int = 0
    failed: int = 0

    def status(self) -> shard_pb2.HandoffStatus:
        return shard_pb2.HandoffStatus(epoch=self.epoch, settled=self.settled, to_pull=self.to_pull,
                                       pulled=self.pulled, handed_off=self.handed_off, failed=self.failed)


class ProgressCollector(Collector):
    def __init__(self, progress: Progress):
        self._progress = progress

    def collect(self):
        progress = self._progress
        yield GaugeMetricFamily("loot_handoff_settled", "1 when every database moving here under the epoch is in place",
                                value=int(progress.settled))
        yield GaugeMetricFamily("loot_handoff_to_pull", "Databases moving here, not yet in place", value=progress.to_pull)
        yield CounterMetricFamily("loot_handoff_pulled", "Databases copied here from their previous owner",
                                  value=progress.pulled)
        yield CounterMetricFamily("loot_handoff_handed_off", "Databases retired here once their new owner had them",
                                  value=progress.handed_off)
        yield CounterMetricFamily("loot_handoff_failed", "Handoff calls to another shard that failed (and are retried)",
                                  value=progress.failed)


def watch_progress(progress: Progress) -> None:
    REGISTRY.register(ProgressCollector(progress))
