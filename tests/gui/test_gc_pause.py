"""The collector's one switch: overlapping pauses (an import, an arrange, a big open) keep it off
until the last one ends, whatever order they end in."""

from __future__ import annotations

import gc

from gui.gc_pause import hold_gc, release_gc


def test_overlapping_holds_keep_the_collector_off_until_the_last_ends() -> None:
    was = gc.isenabled()
    gc.enable()
    try:
        hold_gc()  # e.g. a torchvision import starts
        hold_gc()  # an arrange starts meanwhile
        assert not gc.isenabled()
        release_gc()  # the import ends first: the arrange's worker still runs
        assert not gc.isenabled()
        release_gc()
        assert gc.isenabled()
        release_gc()  # one release too many changes nothing
        assert gc.isenabled()
    finally:
        if not was:
            gc.disable()


def test_a_hold_started_with_the_collector_off_leaves_it_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        hold_gc()
        release_gc()
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_arrange_and_the_import_dialog_share_the_switch(qtbot) -> None:
    from gui.canvas import arrange_job
    from gui.dialogs.torchvision_import import TorchvisionImportDialog

    was = gc.isenabled()
    gc.enable()
    try:
        dialog = TorchvisionImportDialog()  # lists the models on a worker: holds the collector
        qtbot.addWidget(dialog)

        class Job:  # an arrange job on its worker, until told it has finished
            done = False

            def finished(self) -> bool:
                return self.done

        job = Job()
        pause = arrange_job._GcPause()
        pause.hold(job)  # type: ignore[arg-type]
        qtbot.waitUntil(lambda: not dialog._busy() and not dialog._gc_held, timeout=30_000)
        # the list arrived and the dialog's hold ended, but the arrange's still counts
        assert not gc.isenabled()
        job.done = True
        qtbot.waitUntil(gc.isenabled, timeout=5_000)  # the pause's poll sees it and lets go
        dialog.done(0)
    finally:
        if not was:
            gc.disable()
