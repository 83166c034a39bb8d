"""What is being checked, in the form every layer of the checker shares.

* :mod:`~gradcheck.problem.space`: the user's parameter tree, copied, named by path
  (``layers[1].weight``) and mapped to one flat index space;
* :mod:`~gradcheck.problem.objective`: the user's loss as a function of that flat vector,
  evaluated at perturbed points (real and complex);
* :mod:`~gradcheck.problem.calls`: calls into user code, whose exceptions come back with
  gradcheck's context.
"""
