"""NetCanvas editor (PySide6): observes the core model and edits it through undo commands."""
