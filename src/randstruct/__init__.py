"""randstruct: randomness and structure during learning in RNNs."""

from randstruct.version import __version__  # noqa: E402,F401

from randstruct.engine.model import Ensemble  # noqa: E402
from randstruct.runs import Run, RunSpec, execute, load  # noqa: E402
from randstruct.tasks import get_task  # noqa: E402
from randstruct.engine.train import TrainConfig, Trainer, train  # noqa: E402

__all__ = ["Ensemble", "Run", "RunSpec", "TrainConfig", "Trainer", "execute", "get_task", "load", "train"]
