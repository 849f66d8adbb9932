"""Weights files: plain state dicts as released (runs-<epoch>-<step>.pt, best.pt) that also record what they were
trained as. The trainer and the tools (tools/trained_model.py) read, load and check them here.

Read without running code (lstbase.safe_load); loaded so that every parameter of the model comes from the file, but
those --ignore-weights names: numbers from a half-random model would be wrong without a sign.
"""
import os
import re
from collections import OrderedDict

import torch

from engine.args import CONFIG_FILE
from lstbase.files import plain, same_file, save_torch
from lstbase.safe_load import load_torch

WEIGHTS_INFO_KEY = '__lst__'          # in a state dict's _metadata: what the weights were trained as
BEST_WEIGHTS = 'best.pt'              # the best epoch's weights, also kept as runs-<epoch>-<step>.pt


def strip_module(state_dict):
    """Parameter names without DataParallel's and DDP's `module.` prefix."""
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in state_dict.items())


def epoch_and_step_from_name(path):
    """(epoch, global step) from a released weights name `runs-<epoch>-<step>.pt`; (None, 0) for any other name."""
    match = re.search(r'-(\d+)-(\d+)\.pt$', os.path.basename(path))
    return (int(match.group(1)), int(match.group(2))) if match else (None, 0)


def modality(feeder_args):
    """The input modality a feeder's arguments give: its bone/vel flags, or a data_path naming a modality."""
    keys = ('bone', 'vel', 'data_path')
    found = {k: feeder_args[k] for k in keys if k in feeder_args}
    if 'data_path' in found and str(found['data_path']).endswith(('.npz', '.npy')):
        del found['data_path']                          # an NTU file, not a modality
    return plain(found)


def trained_as(model, model_args, test_feeder_args):
    """What weights are for: the model class, its arguments and the input modality (from a config's settings)."""
    return dict(model=model, model_args=plain(model_args), modality=modality(test_feeder_args))


def save_weights(state_dict, info, path):
    """A plain state dict, as released (the release's loader reads it), with `info` in its _metadata."""
    metadata = getattr(state_dict, '_metadata', None)
    state_dict._metadata = type(metadata)(metadata) if metadata is not None else {}
    state_dict._metadata[WEIGHTS_INFO_KEY] = plain(info)
    save_torch(state_dict, path)


def weights_info(state_dict):
    """What save_weights recorded about a state dict ({} for other files, e.g. the released checkpoints)."""
    return dict(getattr(state_dict, '_metadata', None) or {}).get(WEIGHTS_INFO_KEY, {})


def trained_otherwise(weights, now):
    """How the weights' record differs from `now` (trained_as of the config they are used with); [] when it does
    not, or where the weights record nothing (released checkpoints, or a key an earlier version did not record)."""
    saved = weights_info(weights)
    return [f'{key}: {saved[key]!r} there, {now[key]!r} here' for key in now if key in saved and saved[key] != now[key]]


def read_weights(path, log=None):
    """The state dict of a weights file, or of a training state's (checkpoint.pt) model part."""
    weights = load_torch(path, 'weights file')
    if isinstance(weights, dict) and 'model' in weights and 'optimizer' in weights:
        if log:
            log(f'{path} is a training state: loading its model part (epoch {weights.get("epoch")}).')
        weights = weights['model']
    if not isinstance(weights, dict) or not all(torch.is_tensor(v) for v in weights.values()):
        raise ValueError(f'--weights {path}: expected a state dict (parameter name -> tensor), got '
                         f'{type(weights).__name__}; e.g. <work_dir>/runs-<epoch>-<step>.pt')
    return weights


def run_config_advice(weights_path, config_path):
    """'; use <work dir>/config.yaml, ...' when the folder of the weights holds a run's config and the model was
    built from another (e.g. the template it was copied from): weights fit the config they were trained with."""
    run_config = os.path.join(os.path.dirname(weights_path) or '.', CONFIG_FILE)
    if config_path is None or not os.path.isfile(run_config) or same_file(run_config, config_path):
        return ''
    return f'; use {run_config}, the config these weights were trained with'


def load_weights(model, weights, path, model_name, ignore=(), as_released=False, log=None, config_path=None):
    """The state dict `weights` (read from `path`) into `model`, which `model_name` names in errors; the model was
    built from `config_path`.

    Every parameter of the model must be in `weights`, but those the `ignore` patterns name (removed from the file's
    first: they start from scratch). `as_released` (the trainer, both phases): weights the model has no place for
    are logged and passed over, as the release does, and a missing parameter's error points to --ignore-weights.
    Otherwise (the tools, which use a trained model as it is) such weights are an error as well. Each error points
    to the run's own config.yaml when the weights lie beside one the model was not built from."""
    log = log or (lambda text: None)
    advice = run_config_advice(path, config_path)
    weights = strip_module(weights)
    for pattern in ignore:
        for key in [k for k in weights if pattern in k]:
            weights.pop(key)
            log(f'Sucessfully Remove Weights: {key}.')
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:                                     # same names, other shapes
        shapes = [line.strip() for line in str(exc).splitlines() if 'size mismatch' in line]
        raise ValueError(f'--weights {path} does not fit {model_name}: {shapes[0] if shapes else exc}{advice}') \
            from None
    if missing:
        log('Can not find these weights:\n' + '\n'.join(f'  {k}' for k in missing))
    unasked = [k for k in missing if not any(pattern in k for pattern in ignore)]
    if unasked:
        raise ValueError(f'--weights {path} does not fit {model_name}: {len(unasked)} of its '
                         f'{len(model.state_dict())} parameters are not in the file ({", ".join(unasked[:3])}'
                         f'{", ..." if len(unasked) > 3 else ""})'
                         + ('; name those to start from scratch with --ignore-weights' if as_released else '')
                         + advice)
    if unexpected and not as_released:
        raise ValueError(f'--weights {path} does not fit {model_name}: {len(unexpected)} of its weights are not '
                         f'parameters of the model ({", ".join(unexpected[:3])}'
                         f'{", ..." if len(unexpected) > 3 else ""}){advice}')
    if unexpected:
        log('Ignored weights the model does not have:\n' + '\n'.join(f'  {k}' for k in unexpected))
    return model


def load_initial_weights(model, arg, log):
    """--weights into the trainer's model, as released (`load_weights`); (their epoch, the global step to count on
    from), as their record or their released name runs-<epoch>-<step>.pt tells."""
    weights = read_weights(arg.weights, log)
    epoch, step = epoch_and_step_from_name(arg.weights)
    saved = weights_info(weights)
    if saved:
        epoch, step = saved.get('epoch', epoch), saved.get('global_step', step)
        differ = trained_otherwise(weights, trained_as(arg.model, arg.model_args, arg.test_feeder_args))
        if differ:
            log(f'WARNING: {arg.weights} was saved for another model or modality ({"; ".join(differ)}).')
    log(f'Load weights from {arg.weights}' + (f' (epoch {epoch}).' if epoch else '.'))
    classifier = ['fc.weight', 'fc.bias'] if arg.init_classifier != 'weights' else []   # --init-classifier's
    load_weights(model, weights, arg.weights, arg.model, arg.ignore_weights + classifier, as_released=True, log=log,
                 config_path=arg.config)
    return epoch, step
