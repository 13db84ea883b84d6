"""A character tokenizer built offline with ``tokenizers`` and wrapped for ``transformers``.

One token per character of ``CHARS`` plus ``<pad> <bos> <eos> <unk>``; encoding prepends
``<bos>`` (as a Hub tokenizer with ``add_special_tokens=True`` would), decoding fuses the
characters back. Saved with ``save_pretrained`` it loads again with ``AutoTokenizer``. It has
no chat template, so ``riskrl.evaluation.sampling.render_prompt`` renders a chat prompt as its
message content, identically in training, SFT and evaluation.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
from riskrl.embedded.configs import CHARS  # noqa: E402  (re-exported)


def build_tokenizer(chars: str = CHARS) -> PreTrainedTokenizerFast:
    """The character tokenizer: ids 0-3 are ``SPECIALS``, then one id per character."""
    if len(set(chars)) != len(chars):
        raise ValueError(f"duplicate characters in tokenizer alphabet {chars!r}")
    vocab = {tok: i for i, tok in enumerate(list(SPECIALS) + list(chars))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one piece per char
    tok.decoder = decoders.Fuse()  # join characters without spaces
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",  # generation pads prompts on the left
        model_max_length=512,
    )
