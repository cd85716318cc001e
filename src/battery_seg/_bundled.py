"""Names of the models shipped with the package (no torch: the docks list them at start-up).

They stand for their files wherever a model path goes. Anode models (phases pore, silicon, cbd,
graphite; ``scripts/train_default_model.py``): ``"default"``, a 2.5D U-Net of 12 base channels,
the most accurate; ``"fast"``, 8 base channels, about twice as fast; ``"2d"``, the fast model
narrowed to one slice of context, for single slices and stacks of unrelated slices. Cathode
models (phases pore, active, cbd; ``scripts/train_cathode_model.py``): ``"nmc"``, a 2.5D U-Net
pretrained on generated NMC and LFP cathodes under physics-based CT and FIB-SEM imaging, and
``"nmc-2d"``, the same narrowed to one slice.
"""

DEFAULT_MODEL = "default"
CATHODE_MODEL = "nmc"
BUNDLED_MODELS = (DEFAULT_MODEL, "fast", "2d", CATHODE_MODEL, "nmc-2d")
THIN_MODEL = "2d"  # for images thinner than the 2.5D models' context
#: each bundled model's one-slice counterpart (single slices, stacks of unrelated slices)
FLAT_MODELS = {DEFAULT_MODEL: THIN_MODEL, "fast": THIN_MODEL, CATHODE_MODEL: "nmc-2d"}
_ACTIVE_NAMES = {"active", "nmc", "lfp", "cathode", "am"}


def is_cathode(phase_names) -> bool:
    """Whether phases are a cathode's three: pore, CBD and one active material (any order)."""
    names = {str(n).lower() for n in phase_names}
    return len(names) == 3 and {"pore", "cbd"} <= names and bool(names & _ACTIVE_NAMES)


def flat_for(model) -> str:
    """The one-slice model to suggest instead of ``model`` (a bundled name, a path or None):
    ``nmc-2d`` for the cathode model, else ``2d``."""
    return FLAT_MODELS.get(str(model), THIN_MODEL)


def bundled_for(phase_names, *, flat: bool = False) -> str:
    """The bundled model that suits these phases: the cathode model for a cathode's phases,
    else the default anode model; ``flat`` gives its one-slice counterpart.

    >>> bundled_for(("active", "cbd", "pore"), flat=True)
    'nmc-2d'
    >>> bundled_for(("pore", "silicon", "cbd", "graphite"))
    'default'
    """
    name = CATHODE_MODEL if phase_names is not None and is_cathode(phase_names) else DEFAULT_MODEL
    return FLAT_MODELS[name] if flat else name
