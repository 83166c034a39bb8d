"""Likely bugs, named from the pattern of errors of a failed check.

* :mod:`~gradcheck.diagnosis.patterns`: the tests of each bug pattern, tried in order.
"""
