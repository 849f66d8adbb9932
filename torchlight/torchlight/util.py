"""Argument helpers used by the main scripts, kept under the package name the original code used."""
import argparse
import ast
import importlib

_TRUE = ('yes', 'true', 't', 'y', '1')
_FALSE = ('no', 'false', 'f', 'n', '0')


def str2bool(value):
    """Parse a command-line boolean ('true', 'False', '1', 'no', ...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(
        f'expected a boolean ({", ".join(_TRUE)} / {", ".join(_FALSE)}), got {value!r}')


def str2dict(value):
    """Parse a Python dict literal such as "{'a': 1}" or "dict(a=1)"."""
    text = value.strip()
    if text.startswith('dict(') and text.endswith(')'):
        text = '{' + ', '.join(
            f'{k.strip()!r}: {v.strip()}' for k, v in (item.split('=', 1) for item in _split_top(text[5:-1]))) + '}'
    try:
        result = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise argparse.ArgumentTypeError(f'expected a dict literal, got {value!r}') from exc
    if not isinstance(result, dict):
        raise argparse.ArgumentTypeError(f'expected a dict literal, got {value!r}')
    return result


def _split_top(text):
    """Split on commas that are not nested inside brackets or quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in '\'"':
            quote = ch
        elif ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        elif ch == ',' and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:])
    return parts


class DictAction(argparse.Action):
    """argparse action that merges a dict literal into the option's (config-provided) default dict."""

    def __init__(self, option_strings, dest, nargs=None, **kwargs):
        if nargs is not None:
            raise ValueError('nargs is not allowed with DictAction')
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        merged = dict(getattr(namespace, self.dest, None) or {})
        merged.update(str2dict(values))
        setattr(namespace, self.dest, merged)


def import_class(name, packages=None, base=None):
    """Import 'package.module.Class' and return the class, with an error naming what is missing.

    With `packages`, only a class from those packages is accepted, and with `base` only a subclass of it: a config
    names classes that get called, so a shared config must not be able to name `os.system`.
    """
    module_name, _, class_name = str(name).rpartition('.')
    if not module_name:
        raise ImportError(f'{name!r} is not a dotted path like "model.ctrgcn.Model"')
    if packages and module_name.split('.')[0] not in packages:
        raise ImportError(f'{name!r}: only classes of the {", ".join(p + "/" for p in packages)} package'
                          f'{"s" if len(packages) > 1 else ""} are accepted here (put yours there)')
    found = _import(name, module_name, class_name)
    if base is not None and not (isinstance(found, type) and issubclass(found, base)):
        raise ImportError(f'{name!r} is not a {base.__module__}.{base.__name__} class')
    return found


def _import(name, module_name, class_name):
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ImportError(f'cannot import {name!r}: module {module_name!r} not found ({exc})') from exc
    try:
        return getattr(module, class_name)
    except AttributeError:
        known = sorted(n for n in dir(module) if n[:1].isupper())
        raise ImportError(
            f'cannot import {name!r}: module {module_name!r} has no {class_name!r}; '
            f'it defines: {", ".join(known) or "nothing public"}') from None
