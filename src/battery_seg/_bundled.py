"""Names of the models shipped with the package (no torch: the docks list them at start-up).

They stand for their files wherever a model path goes (all trained by
``scripts/train_default_model.py`` on synthetic Si-graphite anodes): ``"default"``, a 2.5D U-Net
of 12 base channels, the most accurate; ``"fast"``, 8 base channels, about twice as fast; ``"2d"``,
the fast model narrowed to one slice of context, for single slices and stacks of unrelated slices.
"""

DEFAULT_MODEL = "default"
BUNDLED_MODELS = (DEFAULT_MODEL, "fast", "2d")
THIN_MODEL = "2d"  # for images thinner than the 2.5D models' context
