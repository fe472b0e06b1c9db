"""Runtimes that functions may name. The worker maps each name to an image and a command."""

PYTHON_3_11 = "python3.11"

RUNTIME_NAMES = (PYTHON_3_11,)
