"""A tiny remote-code vision-language model with MiniCPM-V 2.6's interface, written to a folder
that `model.path` loads with `model.trust_remote_code=true` (no Hub): its configuration,
modelling, processor, image processor and tokenizer classes are Python files in the folder
(tests/fixtures/minicpmv_code/), named by the `auto_map` entries of config.json,
processor_config.json / preprocessor_config.json and tokenizer_config.json, exactly as on the Hub.

config.json registers AutoConfig and AutoModel only (no AutoModelForImageTextToText), and the
model's forward takes MiniCPM-V's `data` dict: what hpc_fed must adapt to."""

from __future__ import annotations

import shutil
from pathlib import Path

CODE = Path(__file__).parent / "fixtures" / "minicpmv_code"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>", "<image>", "</image>", "<slice>",
            "</slice>", "<image_id>", "</image_id>"]
# chatml, as MiniCPM-V 2.6's Qwen2 tokenizer; content is a string ("(<image>./</image>)\n" + text)
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
                 "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=256, tie_word_embeddings=False)


def _word_level():
    """The tiny model's words with MiniCPM-V's markers; id 0 is "!" as in Qwen2's vocabulary
    (MiniCPM-V pads with id 0 and masks it out)."""
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from hpc_fed.tiny.model import _vocabulary

    words = ["!", *SPECIALS, *(str(d) for d in range(10))]
    words += [w for w in _vocabulary() if w not in words]
    tok = Tokenizer(WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), Whitespace()
    return tok


def _remote(out: Path, name: str):
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    return get_class_from_dynamic_module(name, str(out))


def save_minicpmv(out_dir, seed: int = 0) -> str:
    """Write the tiny remote-code model (random weights) with its processor to `out_dir`."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for source in CODE.glob("*.py"):
        shutil.copy(source, out / source.name)
    tok_cls = _remote(out, "tokenization_minicpmv_fast.MiniCPMVTokenizerFast")
    tok_cls.register_for_auto_class("AutoTokenizer")
    tokenizer = tok_cls(tokenizer_object=_word_level(), unk_token="<unk>", eos_token="<|im_end|>",
                        pad_token="<|endoftext|>", bos_token="<|im_start|>",
                        additional_special_tokens=SPECIALS[3:])
    tokenizer.chat_template = CHAT_TEMPLATE
    image_cls = _remote(out, "image_processing_minicpmv.MiniCPMVImageProcessor")
    image_cls.register_for_auto_class("AutoImageProcessor")
    processor_cls = _remote(out, "processing_minicpmv.MiniCPMVProcessor")
    processor_cls.register_for_auto_class("AutoProcessor")
    processor = processor_cls(image_processor=image_cls(image_feature_size=4), tokenizer=tokenizer)
    processor.save_pretrained(out)
    config_cls = _remote(out, "configuration_minicpm.MiniCPMVConfig")
    config_cls.register_for_auto_class()
    model_cls = _remote(out, "modeling_minicpmv.MiniCPMV")
    model_cls.register_for_auto_class("AutoModel")
    config = config_cls(query_num=4, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        architectures=["MiniCPMV"], **TEXT)
    torch.manual_seed(seed)
    model_cls(config).save_pretrained(out)
    return str(out)
