"""Likely bugs, named from the pattern of errors of a failed check.

The runner builds a :class:`FailedCheck` from a failed comparison and calls :func:`diagnose`,
which returns a :class:`~gradcheck.results.Diagnosis`.

Modules
-------
* :mod:`~gradcheck.diagnosis.failed_check`: :class:`FailedCheck`, the input, and its split by
  parameter; :func:`validate_layer_inputs`.
* :mod:`~gradcheck.diagnosis.patterns`: :func:`diagnose` and the whole-check bug patterns,
  tried in order (:data:`~gradcheck.diagnosis.patterns.DETECTORS`); the table of what each
  pattern means.
* :mod:`~gradcheck.diagnosis.parameter_patterns`: the patterns of one parameter's gradient
  (transposed, per-sample delta, missing samples, factor, partial sign flip, zeroed, penalty).
* :mod:`~gradcheck.diagnosis.layer_patterns`: the patterns that need a layer's structure
  (normalisation terms, a missing activation derivative, a diagonal-only softmax Jacobian).
* :mod:`~gradcheck.diagnosis.factors`: the constant-factor classifier (fit, tolerance test,
  the causes a factor fits), shared with :mod:`gradcheck.runner.update`.
* :mod:`~gradcheck.diagnosis.probes`: the extra evaluations that make a pattern's test
  meaningful (does the true gradient move? the gradient's rounding noise; float32 inputs).
"""

from gradcheck.diagnosis.factors import describe_factor
from gradcheck.diagnosis.failed_check import FailedCheck, validate_layer_inputs
from gradcheck.diagnosis.patterns import diagnose

__all__ = ["diagnose", "FailedCheck", "describe_factor", "validate_layer_inputs"]
