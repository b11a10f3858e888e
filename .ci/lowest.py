"""Print pip constraints that pin every dependency of pyproject.toml to its declared floor
(`name>=X` -> `name==X`), so CI can install and test the lowest versions hpc_fed claims to
support. torch is left out: CI installs its own build first."""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
for spec in project["dependencies"]:
    found = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", spec.split(";")[0].strip())
    if found is None:
        sys.exit(f"pyproject.toml: dependency {spec!r} has no plain '>=' floor to pin")
    name, floor = found.groups()
    if name != "torch":
        print(f"{name}=={floor}")
