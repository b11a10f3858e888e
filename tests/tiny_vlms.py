"""Tiny random vision-language models of several architectures, built offline from transformers'
own config classes (no hub, no processor): what hpc_fed must adapt correctly, whatever the model
calls its parts."""

from __future__ import annotations

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=128, head_dim=8)
GRID = [[32, 32], [32, 64], [64, 32]]  # LLaVA-NeXT's any-resolution grid
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
              image_size=32, patch_size=8)

# architecture -> (language, vision, projector) module names that transformers gives it
EXPECTED_ROLES = {
    "llava": ("model.language_model", "model.vision_tower", "model.multi_modal_projector"),
    "llava_next": ("model.language_model", "model.vision_tower", "model.multi_modal_projector"),
    "llava_onevision": ("model.language_model", "model.vision_tower", "model.multi_modal_projector"),
    "idefics3": ("model.text_model", "model.vision_model", "model.connector"),
    "qwen2_vl": ("model.language_model", "model.visual", "model.visual.merger"),
    "paligemma": ("model.language_model", "model.vision_tower", "model.multi_modal_projector"),
    "gemma3": ("model.language_model", "model.vision_tower", "model.multi_modal_projector"),
}


def tiny_config(arch: str):
    import transformers as T

    clip, llama = T.CLIPVisionConfig(**VISION), T.LlamaConfig(**TEXT)
    if arch == "llava":
        return T.LlavaConfig(vision_config=clip, text_config=llama, image_token_index=100)
    if arch == "llava_next":
        return T.LlavaNextConfig(vision_config=clip, text_config=llama, image_token_index=100,
                                 image_grid_pinpoints=[[32, 32]])
    if arch == "llava_onevision":
        return T.LlavaOnevisionConfig(vision_config=T.SiglipVisionConfig(**VISION),
                                      text_config=T.Qwen2Config(**TEXT, bos_token_id=0, eos_token_id=1),
                                      image_token_index=100, image_grid_pinpoints=[[32, 32]])
    if arch == "idefics3":
        return T.Idefics3Config(vision_config=T.Idefics3VisionConfig(**VISION), text_config=llama,
                                image_token_id=100, scale_factor=2)
    if arch == "qwen2_vl":
        return T.Qwen2VLConfig(
            vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=4, patch_size=4,
                               spatial_merge_size=2, temporal_patch_size=2),
            text_config=dict(**TEXT, rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}),
            image_token_id=100, video_token_id=101, vision_start_token_id=102)
    if arch == "paligemma":
        return T.PaliGemmaConfig(vision_config=T.SiglipVisionConfig(**VISION),
                                 text_config=T.GemmaConfig(**TEXT), image_token_index=100)
    if arch == "gemma3":
        return T.Gemma3Config(text_config=T.Gemma3TextConfig(**TEXT),
                              vision_config=T.SiglipVisionConfig(**VISION), mm_tokens_per_image=4,
                              image_token_index=100, boi_token_index=101, eoi_token_index=102)
    raise ValueError(arch)


def tiny_vlm(arch: str):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_config(tiny_config(arch))


def llava_next_processor():
    """A LLaVA-NeXT processor (any-resolution tiles, `image_sizes` per image) over the tiny
    model's word-level tokenizer and chat template."""
    import transformers as T

    from hpc_fed.tiny.model import CHAT_TEMPLATE, build_tokenizer

    try:
        image_processor_class = T.LlavaNextImageProcessorPil  # no torchvision here
    except AttributeError:
        image_processor_class = T.LlavaNextImageProcessor
    image_processor = image_processor_class(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                            image_grid_pinpoints=GRID)
    return T.LlavaNextProcessor(image_processor=image_processor, tokenizer=build_tokenizer(), patch_size=8,
                                vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                chat_template=CHAT_TEMPLATE)


def save_llava_next(out_dir) -> str:
    """A tiny LLaVA-NeXT with that processor, saved where `model.path` can load it."""
    import transformers as T

    from hpc_fed.tiny.model import SPECIAL

    processor = llava_next_processor()
    tok = processor.tokenizer
    text = dict(TEXT, vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id)
    config = T.LlavaNextConfig(vision_config=T.CLIPVisionConfig(**VISION), text_config=T.LlamaConfig(**text),
                               image_token_index=tok.convert_tokens_to_ids(SPECIAL["image"]),
                               image_grid_pinpoints=GRID, vision_feature_select_strategy="default")
    T.LlavaNextForConditionalGeneration(config).save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return str(out_dir)


def _template(image_placeholder: str) -> str:
    """The tiny model's chat template with another architecture's image placeholder."""
    from hpc_fed.tiny.model import CHAT_TEMPLATE

    return CHAT_TEMPLATE.replace(" <image>", f" {image_placeholder}")


def _word_tokenizer(image_tokens: dict[str, str]):
    """The tiny model's word-level vocabulary with another architecture's image tokens
    (`image_tokens`: the tokenizer attribute -> token, e.g. boi_token -> <start_of_image>)."""
    import transformers as T
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from hpc_fed.tiny.model import SPECIAL, _vocabulary

    extra = list(dict.fromkeys(image_tokens.values()))
    specials = [v for k, v in SPECIAL.items() if k != "image"] + extra
    word = Tokenizer(WordLevel(vocab={t: i for i, t in enumerate(specials + _vocabulary())},
                               unk_token=SPECIAL["unk"]))
    word.normalizer, word.pre_tokenizer = normalizers.Lowercase(), Whitespace()
    tok = T.PreTrainedTokenizerFast(
        tokenizer_object=word, bos_token=SPECIAL["bos"], eos_token=SPECIAL["eos"], pad_token=SPECIAL["pad"],
        unk_token=SPECIAL["unk"], extra_special_tokens=image_tokens)
    tok.add_special_tokens({"additional_special_tokens": extra})
    return tok


def save_idefics3(out_dir) -> str:
    """A tiny Idefics3 (SmolVLM's architecture: `pixel_attention_mask`, images per row, a
    pixel-shuffle connector) with a real Idefics3Processor, saved where `model.path` loads it."""
    import transformers as T

    tok = _word_tokenizer({"image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                           "global_image_token": "<global-img>",
                           "end_of_utterance_token": "<end_of_utterance>"})
    image_processor = T.Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": 32},
                                                  max_image_size={"longest_edge": 32})
    processor = T.Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=4,
                                    chat_template=_template("<image>"))
    text = dict(TEXT, vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id)
    config = T.Idefics3Config(vision_config=T.Idefics3VisionConfig(**VISION),
                              text_config=T.LlamaConfig(**text), scale_factor=2,
                              image_token_id=tok.convert_tokens_to_ids("<image>"))
    T.Idefics3ForConditionalGeneration(config).save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return str(out_dir)


def save_gemma3(out_dir) -> str:
    """A tiny Gemma-3 (SigLIP tower, pooled projector, `token_type_ids` marking image tokens for
    bidirectional attention; text-only rows allowed) with a real Gemma3Processor: the stand-in
    for PaliGemma, whose processor wants an image on every row."""
    import transformers as T

    tok = _word_tokenizer({"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                           "eoi_token": "<end_of_image>"})
    image_processor = T.Gemma3ImageProcessorPil(size={"height": 32, "width": 32}, do_pan_and_scan=False)
    processor = T.Gemma3Processor(image_processor=image_processor, tokenizer=tok, image_seq_length=4,
                                  chat_template=_template("<start_of_image>"))
    text = dict(TEXT, vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id)
    ids = tok.convert_tokens_to_ids
    config = T.Gemma3Config(text_config=T.Gemma3TextConfig(**text),
                            vision_config=T.SiglipVisionConfig(**VISION), mm_tokens_per_image=4,
                            boi_token_index=ids("<start_of_image>"), eoi_token_index=ids("<end_of_image>"),
                            image_token_index=ids("<image_soft_token>"))
    T.Gemma3ForConditionalGeneration(config).save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return str(out_dir)
