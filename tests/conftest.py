import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Tests compare float results; keep them independent of the machine's thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
