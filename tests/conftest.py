import os

import pytest
import torch

# Two cores shared by the suite: oversubscribed OpenMP threads slow everything down.
torch.set_num_threads(int(os.environ.get("GNNCOMM_TEST_THREADS", "1")))


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def compile_counter(monkeypatch):
    """``torch.compile`` with a counting backend: dynamo's guards and recompiles, without Inductor."""
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: real(fn, backend=counter))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield counter
    torch._dynamo.reset()
