"""`hpc-fed config`: the run config's keys, resolved values and reference page.

  hpc-fed config show --config configs/quickstart.yaml fed.rounds=3   # resolved, every default
  hpc-fed config fields                                              # key, type, default
  hpc-fed config docs --out docs/configuration.md                    # the reference page
  hpc-fed config docs --check docs/configuration.md                  # exit 1 when it is stale

`show` loads and checks the config exactly as a run does (a bad key or value is the same one-line
error) and prints YAML that loads back as the same config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpc_fed.errors import command, print_error


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-fed config", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True, metavar="{show,fields,docs}")
    show = sub.add_parser("show", help="print the resolved config (every default) as YAML",
                          description="Load --config FILE (default: none, the schema's defaults) "
                                      "and the key=value overrides, check them as a run does, and "
                                      "print the result as YAML.")
    show.add_argument("--config", "-c", help="run config (configs/*.yaml); default: only defaults")
    show.add_argument("overrides", nargs="*", help="key=value overrides, e.g. fed.rounds=3")
    sub.add_parser("fields", help="list every key with its type or choices and its default")
    docs = sub.add_parser("docs", help="write the configuration reference (docs/configuration.md)")
    where = docs.add_mutually_exclusive_group()
    where.add_argument("--out", help="write the page to this file (default: print it)")
    where.add_argument("--check", metavar="PATH",
                       help="exit 1, naming the command that rewrites it, when PATH differs")
    return p


@command("hpc-fed config")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and (args.action != "show" or any(a.startswith("-") for a in rest)):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if rest:  # overrides on both sides of --config
        args.overrides += rest
    return {"show": _show, "fields": _fields, "docs": _docs}[args.action](args)


def _show(args) -> int:
    from hpc_fed.config import load_config, to_yaml

    print(to_yaml(load_config(args.config, args.overrides)), end="")
    return 0


def _fields(args) -> int:
    from hpc_fed.config import RunConfig
    from hpc_fed.config.reference import default_text, type_text
    from hpc_fed.config.schema import all_field_specs

    for spec in all_field_specs(RunConfig):
        print(f"{spec.key}: {type_text(spec).replace('`', '')} = {default_text(spec.default)}")
    return 0


def _docs(args) -> int:
    from hpc_fed.config.reference import INTRO, render
    from hpc_fed.runtime.owned import starts_with, write_new_or_owned

    page = render()
    if args.check:
        if Path(args.check).is_file() and Path(args.check).read_text() == page:
            return 0
        print_error("hpc-fed config", f"{args.check} is not the reference the schema gives; rewrite "
                    f"it with `hpc-fed config docs --out {args.check}`")
        return 1
    if args.out:  # an earlier reference is replaced, any other file is left as it is
        ours = starts_with(INTRO.split(" by ")[0].encode())  # the title and "Generated from the schema"
        write_new_or_owned(Path(args.out), page, ours, what="--out")
        print(f"configuration reference written to {args.out}")
    else:
        print(page, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
