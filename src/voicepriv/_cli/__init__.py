"""Command groups of the ``voicepriv`` CLI, one module each (see :mod:`voicepriv.cli`)."""
