"""Print the prompts LST builds for a class.

    python -m text.show_prompts ntu120 "drink water"
    python -m text.show_prompts ucla 3            # by label index
    python -m text.show_prompts custom 0 --text-dir my_text
"""
import argparse

import specs
from lstbase.arguments import ArgumentParser
from text.prompts import load_prompts


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=sorted(specs.SPECS))
    parser.add_argument('action', help='class name or 0-based label')
    parser.add_argument('--text-dir', default=None, help='folder of description files (default: text/)')
    args = parser.parse_args(argv)
    prompts = load_prompts(args.dataset, args.text_dir)   # custom: --text-dir, every line of its files
    if args.action.isdigit() and int(args.action) < prompts.num_class:
        label = int(args.action)
    elif args.action.lower() in [n.lower() for n in prompts.names]:
        label = [n.lower() for n in prompts.names].index(args.action.lower())
    else:
        parser.error(f'{args.action!r} is neither a label below {prompts.num_class} nor a class name of '
                     f'{args.dataset}, e.g. {prompts.names[0]!r}')
    print(f'label {label}: {prompts.names[label]}')
    print('group 0 (global feature; one drawn per sample and step):')
    for text in prompts.synonyms[label]:
        print(f'  {text}')
    for g, part in zip((1, 2, 3, 4), ('head', 'hand', 'hip', 'foot')):
        print(f'group {g} ({part} feature): {prompts.group(g)[label]}')


if __name__ == '__main__':
    from lstbase.errors import run
    run(main)
