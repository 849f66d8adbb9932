"""The shared trainer behind main.py and the released entry scripts (main_multipart_*.py)."""
import contextlib
import os
import signal


def main(family=None, argv=None):
    """Train or test; `family` names the released script main_multipart_<family>.py, None is main.py (any dataset)."""
    from engine.args import parse_args
    from lstbase.errors import locked
    from engine.rng import init_seed
    from engine.trainer import Processor
    # A process started in the background by a script inherits SIGINT ignored, and Python then never turns it into
    # KeyboardInterrupt: restore it, so that a SIGINT (reproduce.py --time-limit, Ctrl-C) stops the run cleanly.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args(family, argv)
    # one training run per work dir (the main process of a distributed run holds it); tests may run beside it
    training = args.phase == 'train' and os.environ.get('RANK', '0') == '0'
    with locked(args.work_dir, 'work dir') if training else contextlib.nullcontext():
        init_seed(args.seed)
        Processor(args).start()
