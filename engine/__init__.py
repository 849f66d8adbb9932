"""The shared trainer behind main_multipart_ntu.py and main_multipart_ucla.py."""
import contextlib
import os


def main(dataset, argv=None):
    from engine.args import parse_args
    from engine.errors import locked
    from engine.trainer import Processor, init_seed
    args = parse_args(dataset, argv)
    # one training run per work dir (the main process of a distributed run holds it); tests may run beside it
    training = args.phase == 'train' and os.environ.get('RANK', '0') == '0'
    with locked(args.work_dir, 'work dir') if training else contextlib.nullcontext():
        init_seed(args.seed)
        Processor(args, dataset).start()
