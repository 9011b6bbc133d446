"""The decoding strategies by name: the one list that options, the API and the CLI read.

A new strategy is a file with its class (see strategy.py) and one line here.
"""

from glassformer.generate.beam import Beam
from glassformer.generate.contrastive import Contrastive
from glassformer.generate.greedy import Greedy
from glassformer.generate.sampling import Sample
from glassformer.generate.strategy import Strategy

STRATEGIES: dict[str, Strategy] = {
    "greedy": Greedy(),
    "sample": Sample(),
    "beam": Beam(),
    "contrastive": Contrastive(),
}
