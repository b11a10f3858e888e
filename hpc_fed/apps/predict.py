"""`hpc-fed predict`: ask a model (with a trained adapter) one question, in one process.

  hpc-fed predict --adapter runs/quickstart/adapter --image shape.png \\
      --question "what shape is in the image?" --options circle,rectangle,triangle
  hpc-fed predict --adapter DIR --image x.png --text "a caption" --question "is it hateful?"

With --options the options are scored by their log-likelihood (as evaluation does) and printed
most likely first with their probabilities; without, the model's greedy reply is printed. The
prompt is built as in training (data.prompt, the model's chat template). Without --config the
adapter's run config (DIR/../config.yaml) is used.
"""

from __future__ import annotations

import argparse
import sys

from hpc_fed.errors import UsageError, command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-fed predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", help="run config (default: the adapter's run config.yaml)")
    p.add_argument("--adapter", help="a saved adapter folder (a run's adapter/); none: the base model")
    p.add_argument("--question", required=True, help="the question asked")
    p.add_argument("--image", help="an image file")
    p.add_argument("--text", help="the sample's own text (a caption, a tweet)")
    p.add_argument("--options", help="comma-separated answers to score (else: generate a reply)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. distributed.device=cpu")
    return p


def predict(cfg, question: str, image: str | None, text: str | None, options: list[str],
            max_new_tokens: int = 16) -> list:
    """[(option, probability), ...] most likely first, or [(reply, None)]."""
    import torch

    from hpc_fed.client.config import resolve_precision
    from hpc_fed.data.collate import Collator
    from hpc_fed.data.records import Record
    from hpc_fed.eval.generate import generate_replies
    from hpc_fed.eval.scoring import option_loglik
    from hpc_fed.model.loading import (apply_lora, load_adapter, load_base_model, load_interface,
                                       load_processor)

    use_gpu = cfg.distributed.device != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
    dtype = resolve_precision(cfg.train.precision, device)
    collator = Collator(load_processor(cfg.model), cfg.data.prompt, cfg.data.list_options,
                        interface=load_interface(cfg.model))
    model = apply_lora(load_base_model(cfg.model, dtype), cfg.model.lora)
    if cfg.model.adapter:
        load_adapter(model, cfg.model.adapter)
    model.to(device).eval()
    record = Record(id="question", question=question, answer=options[0] if options else "?",
                    options=tuple(options), image=image, text=text)
    with torch.no_grad():
        if options:
            scores = option_loglik(model, collator, [record], device, dtype)[0]
            probs = torch.softmax(scores, dim=0).tolist()
            return sorted(zip(options, probs), key=lambda x: -x[1])
        return [(generate_replies(model, collator, [record], device, dtype, max_new_tokens)[0], None)]


@command("hpc-fed predict")
def main(argv: list[str] | None = None) -> int:
    import logging

    from hpc_fed.config import load_config, require_config
    from hpc_fed.data.images import image_error
    from hpc_fed.runtime.logs import quiet_libraries

    args = build_parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.WARNING)
    quiet_libraries()
    config = require_config(args.config, "hpc-fed predict", args.adapter)
    adapter = [f"model.adapter={args.adapter}"] if args.adapter else []
    cfg = load_config(config, [*args.overrides, *adapter])
    if args.image and image_error(args.image):
        raise UsageError(f"--image {args.image} is not a readable image ({image_error(args.image)})")
    if not args.image and not args.text and not args.question.strip():
        raise UsageError("--question is empty; ask something")
    options = [o.strip() for o in args.options.split(",") if o.strip()] if args.options else []
    answers = predict(cfg, args.question, args.image, args.text, options, args.max_new_tokens)
    for answer, prob in answers:
        if prob is None and not answer:
            answer = "(an empty reply: the model ended its answer at once)"
        print(answer if prob is None else f"{prob:.4f}  {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
