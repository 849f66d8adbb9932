"""The shared trainer behind main.py and the released entry scripts (main_multipart_*.py)."""
import contextlib
import os
import signal


def main(family=None, argv=None):
    """Train or test; `family` names the released script main_multipart_<family>.py, None is main.py (any dataset)."""
    from engine.args import parse_args
    from engine.rng import init_seed
    from engine.trainer import Processor
    from lstbase.errors import locked
    from lstbase.files import check_writable, made_folder
    # A process started in the background by a script inherits SIGINT ignored, and Python then never turns it into
    # KeyboardInterrupt: restore it, so that a SIGINT (reproduce.py --time-limit, Ctrl-C) stops the run cleanly.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args(family, argv)
    main_process = os.environ.get('RANK', '0') == '0'                # of a distributed run: it alone writes
    if main_process:
        check_writable(args.work_dir, 'work dir')
    # a work dir made for a run that then stops at a bad input, before writing anything, is removed again
    with made_folder(args.work_dir) if main_process else contextlib.nullcontext():
        # one training run per work dir; tests may run beside it
        with locked(args.work_dir, 'work dir') if main_process and args.phase == 'train' else contextlib.nullcontext():
            init_seed(args.seed)
            Processor(args).start()


def check(family=None, argv=None):
    """Every check a run makes before it trains, writing nothing: its arguments, model, data (the feeders' checks of
    every sample, labels within the model's classes, a batch that fits, the graph's layout) and descriptions.
    tools/reproduce.py runs it before it starts many runs."""
    from engine.args import parse_args
    from engine.build import build, datasets
    from text.prompts import load_prompts
    args = parse_args(family, argv)
    model = build('model', args.model, args.model_args)
    datasets(args, 1, model)
    if model.text_head:
        load_prompts(args.dataset, args.text_dir, model.num_class, args.part_text, args.classes)
