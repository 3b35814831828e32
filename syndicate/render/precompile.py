"""The shipped templates of a publication, compiled ahead: ``python -m
syndicate.render.precompile`` rewrites ``syndicate/render/precompiled.json``.

Jinja compiles a template in two steps: the template to Python source (lexing, parsing,
code generation: about 0.15 s for the email, feed item and archive templates), then that
source to Python code (about 0.02 s). The first step depends only on the template's
source, Jinja's version and the environment's options, so for the shipped templates it is
done here, once, and the result ships in the package (package data: it works from a
wheel); a first publish on a new site does only the second step. The file records each
template's source digest and the environment's fingerprint: a template whose source
differs (an edited shipped template, an operator's override is never looked up here) or
another Jinja version falls back to compiling, as before. ``tests/test_publish_path.py``
checks the file matches the shipped templates: after editing one, run this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from ..digest import sha256_hex
from .templates import PACKAGE, PACKAGE_FOLDER, fingerprint, template_environment

#: Where the compiled templates are kept (package data beside this module).
PRECOMPILED = Path(__file__).with_name("precompiled.json")
#: The templates a publication renders (the web pages and the console compile on use).
PREFIXES = ("email.", "feed_item.", "_theme.", "archive/")


def generate() -> str:
    """The content of :data:`PRECOMPILED` for the shipped templates as they are now."""
    env = template_environment(None)
    shipped = jinja2.PackageLoader(PACKAGE, PACKAGE_FOLDER)
    templates = {}
    for name in shipped.list_templates():
        if not name.startswith(PREFIXES):
            continue
        source, _filename, _uptodate = shipped.get_source(env, name)
        templates[name] = {"source": sha256_hex(source.encode("utf-8")),
                           "python": env.compile(source, name, None, raw=True)}
    data = {"fingerprint": fingerprint(env), "templates": templates}
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def main() -> None:
    PRECOMPILED.write_text(generate(), encoding="utf-8")
    print(f"wrote {PRECOMPILED}")


if __name__ == "__main__":  # pragma: no cover
    main()
