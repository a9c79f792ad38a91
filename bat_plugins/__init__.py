"""Built-in plugins of bat, each registered through the ``bat`` entry-point group."""
