"""From a reference and the analytic gradient to a verdict per element.

* :mod:`~gradcheck.verdict.tolerance`: the derived tolerance, its constants with their
  reasons, and the one pass rule ``|analytic - reference| <= tolerance``;
* :mod:`~gradcheck.verdict.comparison`: the per-element state every phase records into
  (reference, error estimate, step, method, tolerance), dense or sparse;
* :mod:`~gradcheck.verdict.jitter`: the analytic gradient's own rounding noise, measured
  from the user's gradient, which becomes room in the tolerance;
* :mod:`~gradcheck.verdict.kinks`: non-differentiable points told apart from wrong gradients;
* :mod:`~gradcheck.verdict.hazards`: mutation, randomness and drift, narrow dtypes, an
  exactly-zero loss: what makes a verdict less than it seems.

Nothing here imports the runner or the model: the verdict is a function of numbers.
"""
