"""Commands that drive the engine below them: `hpc-fed eval` (eval) evaluates a saved adapter
through the launcher, `hpc-fed predict` (predict) asks a model one question. hpc_fed/cli.py
dispatches to them; nothing in the engine imports this package."""
