"""A trained LST model in its text space: its five projected skeleton features (the global one and the head, hand,
hip and foot ones) against the text features of any classes, as training compared them (lstbase/zero_shot.py
combines them into class scores), and a classifier for new classes that starts from their text.
"""
import torch
import torch.nn.functional as F

GROUPS = ('name', 'head', 'hand', 'hip', 'foot')     # prompt groups 0-4 and the skeleton features they supervise


def require_text_space(model, what):
    """A model trained without text (CTR-GCN) has no text space: `what` (needing it) is refused in one line."""
    if not getattr(model, 'text_head', None):
        raise ValueError(f'{what} needs a model trained with text (LST); {type(model).__name__} (CTR-GCN) has no '
                         f'text space to compare with class descriptions')


def group_scales(model):
    """The five groups' scales of their cosine logits, as training uses them (model.objective)."""
    return model.logit_scale.detach().float().mean(0)


@torch.no_grad()
def group_cosines(model, x, class_features):
    """N x 5 x classes: the cosine of each of a batch's five projected features with each class's text feature of
    the same group (class_features: 5 x classes x D, TextFeatureBank.class_features). The model is in eval mode."""
    _, features, _, parts = model(x)
    skeleton = F.normalize(torch.stack([features[model.text_head]] + list(parts), 1).float(), dim=-1)
    return torch.einsum('ngd,gcd->ngc', skeleton, class_features.to(skeleton))


@torch.no_grad()
def text_classifier(model, class_features, samples):
    """Set the classifier (model.fc) so that its logits start as the name group's zero-shot logits: row c is the
    global text head's projection towards class c's name feature, scaled by that group's scale over the mean norm of
    the global feature on `samples` (a batch of the training data). The classifier reads the pooled backbone feature,
    which the global head projects linearly, so the name group is the one it can take over exactly (up to each
    sample's norm); the part features pool other joints."""
    head = model.linear_head[model.text_head]
    names = F.normalize(class_features[0], dim=-1).to(head.weight)
    if model.fc.out_features != len(names):
        raise ValueError(f'the text of {len(names)} classes for a classifier of {model.fc.out_features}')
    training = model.training
    model.eval()
    _, features, _, _ = model(samples)
    model.train(training)
    scale = group_scales(model)[0] / features[model.text_head].norm(dim=1).mean()
    model.fc.weight.copy_(scale * names @ head.weight)
    model.fc.bias.copy_(scale * names @ head.bias)
