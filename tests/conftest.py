import os

import pytest
import torch

# Two cores shared by the suite: oversubscribed OpenMP threads slow everything down.
torch.set_num_threads(int(os.environ.get("GNNCOMM_TEST_THREADS", "1")))


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)
