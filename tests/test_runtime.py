import os

import pytest
import torch

from gnncomm.config import Config
from gnncomm.runtime import CoreMonitor, apply_threads


class FakeMachine:
    """A 2-core machine whose CPU use the test sets: ``others`` cores busy besides this process's ``own``."""

    def __init__(self):
        self.t = self.busy = self.own = 0.0

    def run(self, seconds, *, others, own):
        self.t += seconds
        self.busy += seconds * (others + own)
        self.own += seconds * own

    def monitor(self):
        return CoreMonitor(read=lambda: (self.busy, self.own), clock=lambda: self.t)


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))


def test_a_busy_neighbour_takes_a_core_and_its_leaving_gives_it_back_within_one_interval(two_cores):
    machine = FakeMachine()
    monitor = machine.monitor()
    monitor.start()
    machine.run(3.0, others=1.0, own=1.0)
    assert monitor.others_busy() == pytest.approx(1.0)
    assert monitor.free_cores() == 1  # an empty interval repeats the last estimate
    machine.run(3.0, others=1.0, own=1.0)
    assert monitor.free_cores() == 1
    machine.run(3.0, others=0.0, own=2.0)  # the neighbour left: no load-average lag
    assert monitor.free_cores() == 2


def test_this_process_own_work_never_counts_as_a_neighbour(two_cores):
    machine = FakeMachine()
    monitor = machine.monitor()
    monitor.start()
    machine.run(5.0, others=0.0, own=2.0)
    assert monitor.free_cores() == 2


def test_without_cpu_readings_the_load_average_decides(two_cores):
    assert CoreMonitor(read=lambda: None).free_cores() == 1


def test_apply_threads_sets_what_the_monitor_finds_unless_pinned(two_cores, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    machine = FakeMachine()
    monitor = machine.monitor()
    monitor.start()
    try:
        machine.run(1.0, others=1.0, own=0.5)
        assert apply_threads(Config(threads=0), torch.device("cpu"), monitor) == 1 == torch.get_num_threads()
        assert apply_threads(Config(threads=2), torch.device("cpu"), monitor) == 2 == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert apply_threads(Config(threads=0), torch.device("cpu"), monitor) == 2  # pinned: left alone
    finally:
        torch.set_num_threads(before)


FAULTS = """
import resource, sys, torch
from gnncomm.runtime import set_cpu_memory
if not set_cpu_memory(sys.argv[1]):
    print(-1); sys.exit()
n = 64 * 2**20 // 4  # one 64 MiB tensor: above glibc's largest dynamic mmap threshold
for _ in range(2):  # the heap grows to hold it
    torch.ones(n)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    torch.ones(n)  # freed at once, as a step's temporaries are
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux page-fault counts")
def test_reused_memory_is_not_faulted_in_again_at_every_step_and_released_memory_is():
    import subprocess
    import sys

    def faults(mode):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, env=env, check=True)
        return int(out.stdout.split()[-1])

    reused, released, system = faults("reuse"), faults("release"), faults("system")
    if reused < 0:
        pytest.skip("not glibc")
    if system < 4 * 64 * 2**20 // 4096:  # huge pages, a preloaded allocator or MALLOC_* settings: nothing to fix
        pytest.skip(f"this machine's allocator does not fault freed blocks in again ({system} faults)")
    assert released > system / 2  # release gives every large block back at once, as glibc's default does here
    assert reused < system / 4  # glibc's default faults every page in again, every time (8 x 16,384 here)


def test_an_unknown_cpu_memory_mode_is_refused_naming_the_choices():
    from gnncomm.runtime import set_cpu_memory

    with pytest.raises(ValueError, match=r"cpu_memory must be one of \['release', 'reuse', 'system'\]"):
        set_cpu_memory("lean")
