#!/usr/bin/env python
"""Train or test LST on NW-UCLA (see README for the commands)."""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

if __name__ == '__main__':
    from engine import main
    from lstbase.errors import run
    run(main, 'ucla')
