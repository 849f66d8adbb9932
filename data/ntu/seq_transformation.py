"""NTU RGB+D 60 preprocessing, step 3 of 3 (run from this folder; --help for options)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))

if __name__ == '__main__':
    from preprocess.cli import main
    main('ntu60', step=3)
