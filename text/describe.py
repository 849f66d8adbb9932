"""Write the descriptions of your own classes with any large language model, as LST's knowledge engine did.

    python -m text.describe prompts --label-map my_text/custom_label_map.txt > prompts.txt
    #   ... give each prompt to the LLM of your choice, paste the answers one after the other into answers.txt ...
    python -m text.describe parse --label-map my_text/custom_label_map.txt --answers answers.txt --out my_text

The paper's knowledge engine (GPT-3) was asked, per action, for synonyms of its name and for what each body part
does while it is performed: head, hand, arm, hip, leg, foot. `prompts` prints that question for every class of a
label map (one class name per line, in label order), asking for an answer in a fixed form:

    ### <class name>
    Synonyms: <synonym>, <synonym>, ...
    Head: <what the head does>
    Hand: ...   Arm: ...   Hip: ...   Leg: ...   Foot: ...

`parse` reads the pasted answers (any order, extra text between them is ignored), and writes <set>_synonyms.txt and
<set>_parts.txt (and <set>_label_map.txt) into --out, after every check the training's loader makes: one answer per
class, every field there, no empty description. A <set>_label_map.txt already in --out that names other classes is
refused, not replaced (the descriptions there are its classes'). Nothing is written when a check fails.
"""
import argparse
import os
import re
import sys
import tempfile

PARTS = ('head', 'hand', 'arm', 'hip', 'leg', 'foot')
FIELDS = ('synonyms',) + PARTS
HEADER = re.compile(r'^\s*#{3}\s*(.+?)\s*$')
FIELD = re.compile(r'^\s*[*-]?\s*\**\s*(synonyms|head|hand|arm|hip|leg|foot)\s*\**\s*:\s*(.*)$', re.IGNORECASE)

PROMPT = '''Action: "{name}"
1. Give {synonyms} synonyms or short paraphrases of this action.
2. Describe what each of these body parts does while a person performs it: head, hand, arm, hip, leg, foot
   (one short sentence each, about the movement, without the action's name).
Answer exactly in this form, nothing else:
### {name}
Synonyms: <synonym>, <synonym>, ...
Head: <sentence>
Hand: <sentence>
Arm: <sentence>
Hip: <sentence>
Leg: <sentence>
Foot: <sentence>
'''


class AnswerError(ValueError):
    pass


def prompts(names, synonyms=10):
    """The question for every class, separated by blank lines."""
    return '\n'.join(PROMPT.format(name=name, synonyms=synonyms) for name in names)


def parse_answers(text, names, path):
    """{class name: {field: text}} from the pasted answers; every class must have one answer with every field."""
    from text.prompts import says_nothing
    answers, current, where = {}, None, {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = HEADER.match(line)
        if header:
            name = header.group(1).strip().strip('"').lower()
            known = {n.lower(): n for n in names}
            if name not in known:
                raise AnswerError(f'{path}, line {number}: "### {header.group(1)}" is not a class of the label map '
                                  f'(e.g. {names[0]!r})')
            current = known[name]
            if current in answers:
                raise AnswerError(f'{path}, line {number}: a second answer for {current!r} (the first at line '
                                  f'{where[current]})')
            answers[current], where[current] = {}, number
            continue
        field = FIELD.match(line)
        if field and current is not None:                      # markdown emphasis around the value goes
            answers[current][field.group(1).lower()] = field.group(2).strip().strip('*').strip()
    missing = [n for n in names if n not in answers]
    if missing:
        raise AnswerError(f'{path}: no answer for {len(missing)} class(es), e.g. {missing[0]!r} (each answer starts '
                          f'with "### <class name>")')
    for name in names:
        absent = [f for f in FIELDS if not answers[name].get(f) or says_nothing(f, clean(answers[name][f]))]
        if absent:
            raise AnswerError(f'{path}, line {where[name]}: the answer for {name!r} has no {", ".join(absent)}')
    return answers


def clean(text):
    """One field of a description file: no ';' or line breaks (the file's separators), no final full stop."""
    return ' '.join(text.replace(';', ',').split()).rstrip('.').strip()


def description_lines(names, answers):
    """The lines of <set>_synonyms.txt and <set>_parts.txt (a part's sentence starts with the part, as released)."""
    synonyms, parts = [], []
    for name in names:
        answer = answers[name]
        candidates = [clean(s) for s in re.split('[,;]', answer['synonyms']) if clean(s)]
        synonyms.append(','.join(dict.fromkeys([name] + [c for c in candidates if c.lower() != name.lower()])))
        parts.append(';'.join([name] + [part_field(part, clean(answer[part])) for part in PARTS]))
    return synonyms, parts


def part_field(part, sentence):
    """The sentence starting with the part, as released ('head tilts back'): the part the answer names first is
    kept once ('The head tilts back', 'head: tilts back' -> 'head tilts back'), else the part is put in front."""
    named = re.match(rf'(?:(?:the|his|her|their)\s+)?({part}s?)\b\s*[:\-]?\s*(.*)', sentence, re.IGNORECASE)
    if named:
        return f'{named.group(1).lower()} {named.group(2)}'.strip()
    return f'{part} {sentence}'


def write_set(names, answers, out, text_set='custom', inputs=()):
    """Check the three files with the training's loader in a temporary folder, then put them into `out`. `inputs`
    ((flag, path) of the files read) are never written onto; the label map the names were read from, when it is
    already `out`'s, is left as it is (how the README's commands run)."""
    from lstbase.files import check_writable, copy_file, refuse_replacing, refuse_writing_inputs, same_file
    from text.prompts import DescriptionError, load_prompts
    synonyms, parts = description_lines(names, answers)
    files = {f'{text_set}_label_map.txt': names, f'{text_set}_synonyms.txt': synonyms,
             f'{text_set}_parts.txt': parts}
    label_map = dict(inputs).get('--label-map')
    written = [name for name in files if not (label_map and name.endswith('_label_map.txt')
                                              and same_file(label_map, os.path.join(out, name)))]
    refuse_writing_inputs([('--out', os.path.join(out, name)) for name in written], inputs)
    check_writable(out, '--out')
    refuse_replacing(os.path.join(out, f'{text_set}_label_map.txt'), names, 'class names',
                     'the descriptions there belong to those classes; choose another --out, or move that set away')
    with tempfile.TemporaryDirectory() as staging:
        for name, lines in files.items():
            with open(os.path.join(staging, name), 'w', encoding='utf-8') as f:
                f.write('\n'.join(lines) + '\n')
        try:
            load_prompts(text_set, staging, len(names))            # every check of the loader, before writing
        except DescriptionError as exc:
            raise DescriptionError(f'{str(exc).replace(staging, out)} (as it would be written; nothing was)') from None
        for name in written:
            copy_file(os.path.join(staging, name), os.path.join(out, name))
    return [os.path.join(out, name) for name in written]


def main(argv=None):
    import specs
    from lstbase.arguments import ArgumentParser
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    ask = commands.add_parser('prompts', help='print the question for every class of a label map')
    ask.add_argument('--label-map', required=True, help='one class name per line, in label order')
    ask.add_argument('--synonyms', type=int, default=10, help='synonyms to ask for per class (default 10)')
    read = commands.add_parser('parse', help='turn the pasted answers into description files')
    read.add_argument('--label-map', required=True)
    read.add_argument('--answers', required=True, help='a text file with the answers pasted one after the other')
    read.add_argument('--out', required=True, help='the folder to give training as --text-dir')
    read.add_argument('--set', default='custom', choices=sorted({spec.text_files for spec in specs.SPECS.values()}),
                      help='the description set\'s name (default custom: config/custom)')
    args = parser.parse_args(argv)
    if args.command == 'prompts' and args.synonyms < 1:
        parser.error(f'--synonyms {args.synonyms}: expected at least 1')
    from text.prompts import read_names
    names = read_names(args.label_map)
    if args.command == 'prompts':
        print(prompts(names, args.synonyms), end='')
        return 0
    from lstbase.files import read_text
    answers = parse_answers(read_text(args.answers, "the LLM's answers (a text file)"), names, args.answers)
    inputs = [('--label-map', args.label_map), ('--answers', args.answers)]
    for path in write_set(names, answers, args.out, args.set, inputs):
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    from lstbase.errors import run
    sys.exit(run(main))
