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
  (transposed, per-sample delta, missing samples, factor, zeroed, penalty).
* :mod:`~gradcheck.diagnosis.factors`: the constant-factor classifier (fit, tolerance test,
  names such as 1/n), shared with :mod:`gradcheck.runner.update`.
"""

from gradcheck.diagnosis.factors import describe_factor
from gradcheck.diagnosis.failed_check import FailedCheck, validate_layer_inputs
from gradcheck.diagnosis.patterns import diagnose

__all__ = ["diagnose", "FailedCheck", "describe_factor", "validate_layer_inputs"]
