"""The numpy network whose backward pass gradcheck verifies: ``dL/dW = a_prev.T @ delta``.

* :mod:`~gradcheck.model.network`: forward and backward of a multilayer perceptron;
* :mod:`~gradcheck.model.activations`: each activation beside its derivative;
* :mod:`~gradcheck.model.losses`: each loss beside its ``dL/da`` (and ``dL/dz`` when fused).

Nothing in the checker depends on this package: it is one problem the checker is run on.
"""

from gradcheck.model.activations import ACTIVATIONS
from gradcheck.model.losses import LOSSES
from gradcheck.model.network import Network, random_data

__all__ = ["ACTIVATIONS", "LOSSES", "Network", "random_data"]
