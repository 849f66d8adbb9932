"""The run's training objective: the model's own (`model.objective`), given the text it needs when its class learns
from text (LST: `model.text_head` names the encoder of its class descriptions' features)."""
from engine import distributed as dist


def build_criterion(arg, model, device, generator, world, is_main, log):
    """The model's objective, with LST's text features from a frozen bank (default) or a text encoder trained with
    the model (--te-lr-ratio > 0); its prompt draws come from `generator`."""
    text = text_features(arg, model.text_head, model.num_class, device, world, is_main, log) \
        if model.text_head else None
    return model.objective(text=text, loss_alpha=arg.loss_alpha, generator=generator, gather=dist.gather_with_grad,
                           world=world)


def text_features(arg, head, num_class, device, world, is_main, log):
    """What gives each batch the text features of its classes (`sample(labels, generator)`)."""
    from text.bank import TextFeatureBank
    from text.encoders import PromptEncoder, load_text_encoder
    from text.prompts import description_files, load_prompts
    log(f'Descriptions of the {arg.dataset} classes: {", ".join(description_files(arg.dataset, arg.text_dir))}'
        + ('' if arg.part_text else ' (prompt groups 1-4: the class names alone, --part-text False)'))
    if arg.te_lr_ratio > 0:
        encoder = load_text_encoder(head, device, arg.text_weights)
        prompts = load_prompts(arg.dataset, arg.text_dir, num_class, arg.part_text, arg.classes)
        log(f'Fine-tuning the text encoder {head} (lr ratio {arg.te_lr_ratio}).')
        return PromptEncoder(encoder, prompts)
    if world > 1 and not is_main:
        dist.barrier()                                              # the main process builds the cache first
    bank = TextFeatureBank.load_or_build(head, arg.dataset, arg.text_cache_dir, weights=arg.text_weights,
                                         device=device, text_dir=arg.text_dir, num_class=num_class, log=log,
                                         part_text=arg.part_text, classes=arg.classes)
    if world > 1 and is_main:
        dist.barrier()
    return bank
