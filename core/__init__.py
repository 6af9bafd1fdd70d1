"""NetCanvas core: layer registry, graph model, project files, analysis, compiler, importer, training.

Nothing under ``core`` imports Qt; the GUI observes these objects through plain events.
"""
