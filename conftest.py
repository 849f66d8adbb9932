# Lets the tests import the project's top-level packages (graph, model, feeders, text, ...) from a clean clone, and
# pins the CPU threads: the trainer otherwise picks them from the machine's load as each run starts
# (lstbase.processes.cpu_threads), and runs that a test compares bit for bit must use the same number.
import os
import sys

import torch

ROOT = os.path.dirname(os.path.abspath(__file__))
for path in (ROOT, os.path.join(ROOT, 'torchlight')):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault('OMP_NUM_THREADS', str(torch.get_num_threads()))
