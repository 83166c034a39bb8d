"""Independent references for a gradient: finite differences, complex step, SciPy."""
