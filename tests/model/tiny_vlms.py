"""Tiny random vision-language models of several architectures, built offline from transformers'
own config classes (no hub, no processor): what hpc_fed must adapt correctly, whatever the model
calls its parts."""

from __future__ import annotations

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=128, head_dim=8)
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
    raise ValueError(arch)


def tiny_vlm(arch: str):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_config(tiny_config(arch))
