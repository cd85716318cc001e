"""napari dock widgets: the only code that imports magicgui, qtpy or napari.qt.

Each widget gathers parameters, builds the job's configuration object, runs one core generator
through :class:`~battery_seg._widgets._jobs.JobControls` and shows the result as layers.
"""
