import logging

import pytest


@pytest.fixture(scope="session")
def cluster():
    """Two worker processes with one thread each on 127.0.0.1, shared by the tests of this folder."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=logging.CRITICAL) as lc:
        with distributed.Client(lc) as client:
            yield client
