"""The command lines' parser: argparse's, but a flag given twice is an error instead of its last value silently
winning (`--base-lr 0.1 ... --base-lr 0.01` would train with one of them without a word)."""
import argparse

GIVEN = '_flags_given'                    # in the namespace while parsing: dest -> the option string that set it


class StoreOnce(argparse._StoreAction):
    """argparse's `store`, refusing a second value for the same argument."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = vars(namespace).setdefault(GIVEN, {})
        if self.dest in given:
            spelt = f' (also as {given[self.dest]})' if given[self.dest] != option_string else ''
            parser.error(f'{option_string} given twice{spelt}: give it once'
                         + (', with all its values' if self.nargs in ('+', '*') else ''))
        given[self.dest] = option_string
        super().__call__(parser, namespace, values, option_string)


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose value flags may be given once (append and count flags, and the dict flags
    that merge their values, keep their own actions)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register('action', None, StoreOnce)
        self.register('action', 'store', StoreOnce)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        vars(namespace).pop(GIVEN, None)
        return namespace, extras
