"""Built-in backends, each a plugin registered through the ``voicepriv`` entry-point group."""
