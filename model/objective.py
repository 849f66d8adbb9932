"""What a model is trained to minimise, as its class says (`Model.objective`): CTR-GCN the cross-entropy of its
logits, LST the cross-entropy plus alpha x a symmetric KL contrastive loss between skeleton and text features.

The contrastive loss is the release's formulation (its KLLoss and gen_label); the objectives own what they need
beyond the model's output (LST: the text features), so the training loop calls any of them the same way:
`loss, logits, terms = objective(model_output, labels)`, `terms` naming the loss's parts (detached): the
cross-entropy, which the test phase's loss is too, and LST's language loss.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from text.encoders import PromptEncoder


def same_label_matrix(labels, dtype=torch.float32):
    """B x B targets: 1 where two samples share a label (the release's gen_label)."""
    return (labels[:, None] == labels[None, :]).to(dtype)


def kl_contrastive(logits, targets):
    """The release's KLLoss: KL(softmax(10 * targets) || softmax(logits)), mean over elements, times batch size."""
    # reduction 'mean' over all elements (the release's size_average=True), written as sum / numel
    divergence = F.kl_div(F.log_softmax(logits, 1), F.softmax(targets * 10, 1), reduction='sum')
    return divergence / logits.numel() * logits.shape[0]


def symmetric_kl(skeleton, text, scale, targets):
    """(KL(skeleton->text) + KL(text->skeleton)) / 2 over cosine-similarity logits times `scale`."""
    skeleton = F.normalize(skeleton, dim=-1)
    text = F.normalize(text, dim=-1)
    logits = scale * skeleton @ text.t()
    return (kl_contrastive(logits, targets) + kl_contrastive(logits.t(), targets.t())) / 2


def contrastive_loss(global_features, part_features, text_features, logit_scale, labels):
    """Mean over the five prompt groups of the symmetric KL loss.

    global_features: B x D (the first head's feature); part_features: [head, hand, hip, foot], each B x D;
    text_features: five B x D tensors (group 0 for the global feature, groups 1-4 for the parts);
    logit_scale: the model's [k, 5] parameter (k = 1, or one row per GPU under DataParallel); as released, each
    group's scale is the column mean, used as is (not exponentiated).
    """
    targets = same_label_matrix(labels, global_features.dtype)
    skeleton = [global_features] + list(part_features)
    terms = [symmetric_kl(s, t.to(s.dtype), logit_scale[:, g].mean(), targets)
             for g, (s, t) in enumerate(zip(skeleton, text_features))]
    return sum(terms) / len(terms)


class CrossEntropyObjective(nn.Module):
    """CTR-GCN's: the cross-entropy of the logits; nothing of its own to train."""

    text_encoder = None

    def forward(self, logits, labels):
        loss = F.cross_entropy(logits, labels)
        return loss, logits, dict(cross_entropy=loss.detach())


def this_process_only(tensor):
    """Without DDP there is nothing to gather: the tensor as it is."""
    return tensor


class LSTObjective(nn.Module):
    """LST's: cross-entropy + alpha x the contrastive loss between the model's global and part features and the text
    features of the batch's classes, which `text` gives (`sample(labels, generator)`: a frozen TextFeatureBank, or a
    PromptEncoder trained with the model).

    Under DDP `gather` (engine.distributed.gather_with_grad) joins every process's rows, so the loss compares the
    global batch, as one process would; `world` scales it back (each process's gradient reaches its own rows only,
    and DDP averages the processes')."""

    def __init__(self, text, head, alpha, generator=None, gather=this_process_only, world=1):
        super().__init__()
        self.text, self.head, self.alpha = text, head, alpha
        self.generator, self.gather, self.world = generator, gather, world

    @property
    def text_encoder(self):
        """The text encoder trained with the model, or None when the features come from a frozen bank."""
        return self.text.encoder if isinstance(self.text, PromptEncoder) else None

    def text_features(self, labels):
        """The five groups' text features of `labels`, the prompts drawn from the objective's own generator."""
        return self.text.sample(labels, self.generator)

    def forward(self, output, labels):
        logits, features, logit_scale, parts = output
        loss_ce = F.cross_entropy(logits, labels)
        text = self.text_features(labels)
        gather = self.gather
        skeleton = gather(features[self.head])
        parts = [gather(p) for p in parts]
        text = [gather(t) for t in text]
        all_labels = gather(labels)
        loss_te = contrastive_loss(skeleton, parts, text, logit_scale, all_labels) * self.world
        terms = dict(cross_entropy=loss_ce.detach(), language_loss=loss_te.detach())
        return loss_ce + self.alpha * loss_te, logits, terms
