"""From a reference and the analytic gradient to a verdict per element.

* :mod:`~gradcheck.verdict.tolerance`: the derived tolerance and the one pass rule;
"""
