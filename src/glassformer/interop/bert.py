"""What the BERT entry of the architecture table needs beyond names: heads found from tensors.

A BERT folder (MiniLM is a small BERT) does not say in its config which heads it has; the
tensors do. `bert_heads` reads them (and folds the decoder bias, which some savers store
twice, into one), and `bert_export` names the transformers class those heads make:

    >>> bert_heads({}, {"pooler.dense.weight": None}, "x")
    {'mlm_head': False, 'pooler': True, 'n_classes': 0}
"""

import torch


def bert_heads(hf: dict, weights: dict[str, torch.Tensor], source) -> dict:
    """Our head switches for the tensors present (names without the `bert.` prefix)."""
    decoder_bias = weights.pop("cls.predictions.decoder.bias", None)  # tied to .bias
    if decoder_bias is not None:
        weights.setdefault("cls.predictions.bias", decoder_bias)
    classifier = weights.get("classifier.weight")
    return {
        "mlm_head": "cls.predictions.bias" in weights,
        "pooler": "pooler.dense.weight" in weights,
        "n_classes": 0 if classifier is None else classifier.shape[0],
    }


def bert_export(c) -> dict:
    """The class for our encoder's heads (BertForSequenceClassification / ...MaskedLM /
    BertModel) and the config.json keys that go with it."""
    arch = "BertModel"
    if c.n_classes:
        arch = "BertForSequenceClassification"
    elif c.mlm_head:
        arch = "BertForMaskedLM"
    extra = {"architectures": [arch], "hidden_dropout_prob": 0.0}
    extra["attention_probs_dropout_prob"] = 0.0
    return extra | ({"num_labels": c.n_classes} if c.n_classes else {})
