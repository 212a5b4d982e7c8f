"""Tasks (LightningModules) and the train/eval loops the CLI runs."""
