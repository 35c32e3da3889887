"""The benchmarks: ``make bench``, ``make bench-memory``, ``make scale``; see benchmarks/README.md."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCTION_DIR = os.path.join(ROOT, "function")
# The forwarder and the FunctionGraph handler import from the code root, as on the platform.
if FUNCTION_DIR not in sys.path:
    sys.path.insert(0, FUNCTION_DIR)
