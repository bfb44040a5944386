"""Training tasks: pretext tasks (lines, slices, multitask) as LightningModules."""
