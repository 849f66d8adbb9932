#!/usr/bin/env python
"""Export a trained model's inference network (input N,C,T,V,M -> logits) as TorchScript or ONNX.

    python tools/export.py --config work_dir/demo/lst_joint/config.yaml \\
        --weights work_dir/demo/lst_joint/best.pt --format torchscript|onnx --out lst_joint.pt

The network is what the test phase runs, without LST's training-only heads (global and part text features): the
k-hop input encoding, the CTR-GCN backbone and the classifier. Batch size and frame count are dynamic in both
formats. The command then loads the written file and checks that its logits equal the eager model's on generated
input of other batch sizes and frame counts: max |exported - eager| <= 1e-5 x max(1, max |logit|), the precision
of float32 at the logits' scale. ONNX needs the `onnx` package; the check needs `onnxruntime` (without it the file
is written and the check is skipped, with a note): `make install-export` installs both, in releases that leave the
pose estimator's protobuf 4.25 (`make install-video`) working. The input is the test feeder's output (crop, resize, bone or
motion as in the config), as `tools/predict.py` makes it; with `--weights` an exported file, predict runs it.
"""
import argparse
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trained_model  # noqa: E402
from trained_model import UsageError  # noqa: E402

from lstbase.arguments import ArgumentParser  # noqa: E402  (trained_model puts the project root on the path)
from lstbase.errors import NotInstalled, import_optional, run  # noqa: E402
from lstbase.files import atomic_path, check_output_file, refuse_writing_inputs  # noqa: E402

TOLERANCE = 1e-5
INPUT, OUTPUT = 'skeleton', 'logits'


def parse(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='the training config (<work_dir>/config.yaml)')
    parser.add_argument('--weights', required=True, help='the weights (a .pt state dict)')
    parser.add_argument('--format', choices=('torchscript', 'onnx'), required=True)
    parser.add_argument('--out', required=True, help='the file to write (e.g. model.pt, model.onnx)')
    args = parser.parse_args(argv)
    # predict/visualize tell the formats apart by the extension: a mismatch would make the file unreadable to them
    if (args.format == 'onnx') != args.out.lower().endswith('.onnx'):
        parser.error(f'--out {args.out}: ' + ('an ONNX file ends in .onnx' if args.format == 'onnx' else
                                             'a .onnx name is read as ONNX; name a TorchScript file e.g. model.pt'))
    return args


def eager_model(config_path, weights_path):
    """(config, the trained model) of a config and its training weights."""
    config = trained_model.read_config(config_path)
    if trained_model.is_exported(weights_path):
        raise UsageError(f'--weights {weights_path}: an exported model; export from the training weights (.pt)')
    return config, trained_model.trained_model(config, config_path, weights_path)


def check_out(out, config_path, weights_path):
    """Before anything is written: --out names a file that can be written, is none of the inputs, and replaces
    nothing but an earlier export (a training state, weights or a config named by mistake would be lost)."""
    check_output_file(out, '--out')
    refuse_writing_inputs([('--out', out)], [('--config', config_path), ('--weights', weights_path)])
    if os.path.isfile(out) and not trained_model.is_exported(out):
        raise UsageError(f'--out {out}: exists and is no exported model; an export replaces only an earlier export: '
                         f'choose another name')


def example_inputs(model, frames):
    """Generated inputs N,C,T,V,M: the one traced, then others with a different batch size and frame count."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(2, frames), (3, frames + 13), (1, 2 * frames)]
    return [torch.randn(n, model.in_channels, t, model.num_point, model.num_person, generator=generator)
            for n, t in shapes]


def window_of(config, config_path):
    """The frame count the test feeder gives the model."""
    from torchlight import import_class
    try:
        feeder = import_class(config['feeder'], ('feeders',))
    except ImportError as exc:
        raise UsageError(f'{config_path}: {exc}') from None
    return sys.modules[feeder.__module__].input_frames(config['test_feeder_args'])


def export_torchscript(network, example, out, check):
    with warnings.catch_warnings():
        # the shape checks run once while tracing (N and T stay dynamic: the check below proves it); trace is
        # deprecated upstream in favour of torch.export, but TorchScript remains what C++ and mobile runtimes load
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', FutureWarning)
        traced = torch.jit.trace(network, example, check_trace=False)          # the check below is stricter
    with atomic_path(out) as tmp:                                               # checked before it takes the name
        with open(tmp, 'wb') as f:                  # through Python: a failed write by torch's own writer aborts
            torch.jit.save(traced, f)
        check(tmp)


def export_onnx(network, example, out, check):
    import_optional('onnx', '--format onnx', f'{trained_model.EXPORT_HINT}; --format torchscript needs nothing more')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', FutureWarning)
        with atomic_path(out) as tmp:
            torch.onnx.export(network, (example,), tmp, dynamo=False, input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: 'batch', 2: 'frames'}, OUTPUT: {0: 'batch'}})
            check(tmp)


@torch.no_grad()
def compare(exported, model, inputs):
    """(max |exported - eager|, max |eager logit|) over `inputs`."""
    difference, scale = 0.0, 0.0
    for x in inputs:
        eager = model.logits(x)
        difference = max(difference, (exported(x) - eager).abs().max().item())
        scale = max(scale, eager.abs().max().item())
    return difference, scale


@torch.no_grad()
def export(config_path, weights_path, fmt, out):
    """Write the network, checked before it takes the name `out`; returns (max difference, logit scale), or None
    when it cannot be run (ONNX without onnxruntime)."""
    check_out(out, config_path, weights_path)
    config, model = eager_model(config_path, weights_path)
    network = model.inference_network()                         # the logits alone: no text-head weights written
    inputs = example_inputs(model, window_of(config, config_path))
    runnable = True
    if fmt == 'onnx':
        try:
            trained_model.import_onnxruntime('the check')
        except NotInstalled:
            runnable = False
    result = []

    def check(tmp):
        if runnable:
            exported = trained_model.load_network(config, config_path, tmp, trust_code=True)     # written here
            result.extend(verified(*compare(exported, model, inputs), out))

    (export_torchscript if fmt == 'torchscript' else export_onnx)(network, inputs[0], out, check)
    channels, _, joints, persons = inputs[0].shape[1:]
    print(f'wrote {out}: {fmt}, input N,C,T,V,M = N,{channels},T,{joints},{persons} (N and T dynamic), '
          f'output N x {model.num_class} logits')
    if not runnable:
        print('onnxruntime is not installed: the ONNX file was written but NOT checked against the eager model '
              f'({trained_model.EXPORT_HINT}, then run this command again)')
        return None
    difference, scale = result
    shapes = ', '.join(str(tuple(x.shape)) for x in inputs)
    print(f'check OK: max |exported - eager| = {difference:.3g} on inputs {shapes} (logits up to {scale:.3g}; '
          f'tolerance {TOLERANCE:g} x max(1, that))')
    return difference, scale


def verified(difference, scale, out):
    if difference > TOLERANCE * max(1.0, scale):
        raise UsageError(f'{out}: the exported model does not reproduce the eager model (max |exported - eager| = '
                         f'{difference:.3g}, logits up to {scale:.3g}); nothing written')
    return difference, scale


def main(argv=None):
    args = parse(argv)
    export(args.config, args.weights, args.format, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
