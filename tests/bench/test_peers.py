"""The rivals are timed as TVM's time_evaluator times the device: one untimed run, then the timed ones."""

import time

import numpy as np

from edge_mnv2.bench.peers import Peer


class FirstRunSlow(Peer):
    """A runtime whose first run after a pause is slow, as a cold cache and sleeping threads make it."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        time.sleep(0.05 if self.calls == 1 else 0.001)
        return x


def test_a_round_starts_with_one_untimed_run():
    peer = FirstRunSlow()
    samples = peer.time(np.zeros(1, "float32"), 3)
    assert len(samples) == 3 and peer.calls == 4
    assert max(samples) < 0.05  # the slow first run was not one of them
