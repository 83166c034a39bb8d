"""The main job (``gradcheck run``): the seed question answered, and the battery.

* :mod:`~gradcheck.demo.seed`: the learner's two-layer network reproduced and explained;
* :mod:`~gradcheck.demo.battery`: random networks checked against every reference, and
  planted bugs;
* :mod:`~gradcheck.demo.training`: SciPy-optimised training with and without the analytic
  gradient.  It uses the user's gradient, so it is a demonstration, not a reference.
"""
