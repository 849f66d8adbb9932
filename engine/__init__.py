"""The shared trainer behind main_multipart_ntu.py and main_multipart_ucla.py."""


def main(dataset, argv=None):
    from engine.args import parse_args
    from engine.trainer import Processor, init_seed
    args = parse_args(dataset, argv)
    init_seed(args.seed)
    Processor(args, dataset).start()
