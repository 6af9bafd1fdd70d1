"""Dialogs of the editor window: template gallery, torchvision import, keyboard shortcuts."""
