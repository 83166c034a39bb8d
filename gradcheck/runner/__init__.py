"""The check pipeline: ties the problem, the references and the verdict together.

* :mod:`~gradcheck.runner.check`: ``check()``, its phases in order;
* :mod:`~gradcheck.runner.directional`: random-direction probes with a stated guarantee,
  and bisection to the wrong elements;
* :mod:`~gradcheck.runner.evaluation`: evaluation in chunks, vectorized or on an executor,
  and the budget that picks the mode;
* :mod:`~gradcheck.runner.update`: ``check_update()``, a training step read as a gradient.
"""
