"""The paper's figures, one function per figure, one module per experiment, drawn from run stores and the theory only.

Each ``figX(runs)`` takes the runs of the experiment the figure needs (a dict label -> Run, as
returned by :func:`randstruct.paper.experiments.run_experiment`) and returns ``(figure, caption)``; the
caption states what is drawn and every deliberate deviation from the published figure.
"""

from randstruct.paper.figures.common import check_letters, save
from randstruct.paper.figures.eigenvalues import figS4, figS5
from randstruct.paper.figures.linear import fig3, fig4, figS3
from randstruct.paper.figures.nonlinear import fig1, fig2, figS1, figS2
from randstruct.paper.figures.sentiment import fig5, figS6

__all__ = ["fig1", "fig2", "fig3", "fig4", "fig5", "figS1", "figS2", "figS3", "figS4", "figS5", "figS6", "check_letters", "save"]
