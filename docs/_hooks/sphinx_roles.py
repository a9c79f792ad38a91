"""mkdocs hook: show ``:class:`X``` and its kin in docstrings as plain code, not as a role name.

bat's docstrings name other objects the Sphinx way (``:class:`Target```,
``:func:`trace```), which reads well in ``help()`` and in an editor; rendered
as Markdown by mkdocstrings, the role name would show as text before the code.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const):(?=<code)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub("", html)
