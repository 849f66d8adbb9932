# Lets the tests import the project's top-level packages (graph, model, feeders, text, ...) from a clean clone.
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
for path in (ROOT, os.path.join(ROOT, 'torchlight')):
    if path not in sys.path:
        sys.path.insert(0, path)
