"""Regenerate the blend-file fixtures with the Blender that runs this script.

    /opt/bpy50/bin/python tests/blendfiles/generate.py            # -> tests/blendfiles/v50/
    /opt/bpy42/bin/python tests/blendfiles/generate.py --only images

Blender is used as a Python module (``import bpy``).  Scenarios come from
``gen_assets.SCENARIOS`` and, when present, ``gen_caches.SCENARIOS``; each one is
called with a fresh, empty ``v<major><minor>/<scenario>/`` directory.  Only the
directories of the scenarios being generated are wiped; anything else in the
version directory is left alone.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bpy  # noqa: E402


def load_scenarios() -> dict:
    scenarios: dict = {}
    for module_name in ("gen_assets", "gen_caches"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for name, func in module.SCENARIOS.items():
            if name in scenarios:
                raise SystemExit(f"scenario {name!r} defined twice ({module_name})")
            scenarios[name] = func
    return scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME", help="generate only this scenario (repeatable)")
    parser.add_argument("--out", type=Path, help="version directory (default: tests/blendfiles/vXY)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)

    scenarios = load_scenarios()
    if args.list:
        print("\n".join(scenarios))
        return 0
    names = args.only or list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {sorted(scenarios)}")

    major, minor = bpy.app.version[:2]
    out = args.out or HERE / f"v{major}{minor}"
    out.mkdir(parents=True, exist_ok=True)

    failed = []
    t_all = time.monotonic()
    for name in names:
        root = out / name
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        t0 = time.monotonic()
        print(f"=== {name} -> {root}", flush=True)
        try:
            scenarios[name](root)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            print(f"=== {name} FAILED", flush=True)
        else:
            print(f"=== {name} done in {time.monotonic() - t0:.1f}s", flush=True)
        bpy.ops.wm.read_factory_settings(use_empty=True)

    print(f"Blender {bpy.app.version_string}: {len(names) - len(failed)}/{len(names)} scenarios "
          f"in {time.monotonic() - t_all:.1f}s -> {out}")
    if failed:
        print("FAILED:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
