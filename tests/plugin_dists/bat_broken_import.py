"""A plugin that cannot even be imported (a dependency it needs is not there)."""

raise RuntimeError("bat-broken-import needs the studio licence server")
