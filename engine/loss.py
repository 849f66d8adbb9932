"""LST's objective: cross-entropy plus a symmetric KL contrastive loss between skeleton and text features."""
import torch
import torch.nn.functional as F


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
