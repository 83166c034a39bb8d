"""Independent references for a gradient, each with its own error estimate.

* :mod:`~gradcheck.references.base`: :class:`~gradcheck.references.base.Estimate`, what
  every reference returns (derivative, error estimate, step, evaluations, method);
* :mod:`~gradcheck.references.finite_difference`: central differences (roundoff from the
  measured noise), one-sided slopes, Richardson extrapolation over a ladder of steps;
* :mod:`~gradcheck.references.complex_step`: ``Im f(x + ih) / h`` and the test that the
  loss really supports it;
* :mod:`~gradcheck.references.noise`: the loss's rounding noise (ECnoise difference tables);
* :mod:`~gradcheck.references.scipy_refs`: SciPy's ``approx_fprime`` and
  ``scipy.differentiate`` as references;
* :mod:`~gradcheck.references.registry`: ``METHODS`` and ``REFERENCES``, every name a user
  may pass as ``method``;
* :mod:`~gradcheck.references.sweep`: step-size sweeps and the agreement of every reference,
  the evidence a report shows.

References see the loss only through :class:`~gradcheck.problem.objective.Objective`; they
never import the model, the runner or the report.
"""
