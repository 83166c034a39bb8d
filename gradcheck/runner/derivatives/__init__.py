"""Checks of every derivative people write by hand, each reduced to the scalar check.

* :func:`~gradcheck.runner.derivatives.vjp.check_vjp`: vector-Jacobian products
  (a layer's backward pass);
* :func:`~gradcheck.runner.derivatives.jacobian.check_jacobian` and
  :func:`~gradcheck.runner.derivatives.jacobian.check_jvp`: Jacobians and
  Jacobian-vector products;
* :func:`~gradcheck.runner.derivatives.second_order.check_hessian` and
  :func:`~gradcheck.runner.derivatives.second_order.check_hvp`: Hessians and
  Hessian-vector products in SciPy's conventions;
* :mod:`~gradcheck.runner.derivatives.binding`: ``args`` and value-and-gradient
  functions, bound for :func:`gradcheck.check`.

This package's ``__init__`` imports nothing: :mod:`gradcheck.runner.phases` imports
:mod:`~gradcheck.runner.derivatives.binding`, and the checks import the runner.
"""
