"""The console's third-party browser code, made from the npm packages pinned in package-lock.json (``make setup``
runs this after ``npm ci``), into ``api/static/console/vendor/`` (not committed: it is made from the lockfile):

- ``charts.js``: ECharts, only the Sankey, bar and line charts and the canvas renderer, bundled and minified by
  esbuild from ``api/static/console/src/charts.js`` (580 KB, where ECharts' full build is 1,120 KB);
- ``zxing-reader.js`` and ``zxing_reader.wasm``: zxing-wasm's QR reader, copied as published (the scan pages use it
  where the browser has no ``BarcodeDetector``).

``python -m scripts.console_assets`` builds; ``--check`` exits 1 when a file is missing or older than its source.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
CONSOLE = ROOT / "api" / "static" / "console"
VENDOR = CONSOLE / "vendor"
ESBUILD = NODE_MODULES / ".bin" / "esbuild"
CHARTS_SOURCE = CONSOLE / "src" / "charts.js"
COPIES = {
    "zxing-reader.js": NODE_MODULES / "zxing-wasm" / "dist" / "iife" / "reader" / "index.js",
    "zxing_reader.wasm": NODE_MODULES / "zxing-wasm" / "dist" / "reader" / "zxing_reader.wasm",
}
OUTPUTS = ("charts.js", *COPIES)


def build() -> list[Path]:
    if not ESBUILD.exists():
        raise SystemExit(f"{ESBUILD} is missing: run `npm ci` (make setup)")
    VENDOR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(ESBUILD), str(CHARTS_SOURCE), "--bundle", "--minify", "--format=iife", "--target=es2019",
         "--legal-comments=eof", "--log-level=warning", f"--outfile={VENDOR / 'charts.js'}"],
        check=True,
        cwd=ROOT,
    )
    for name, source in COPIES.items():
        if not source.exists():
            raise SystemExit(f"{source} is missing: run `npm ci` (make setup)")
        shutil.copyfile(source, VENDOR / name)
    return [VENDOR / name for name in OUTPUTS]


def stale() -> list[str]:
    """The outputs that are missing or older than what they are made from."""
    sources = {"charts.js": [CHARTS_SOURCE, ROOT / "package-lock.json"], **{k: [v] for k, v in COPIES.items()}}
    out = []
    for name, inputs in sources.items():
        target = VENDOR / name
        if not target.exists() or any(p.exists() and p.stat().st_mtime > target.stat().st_mtime for p in inputs):
            out.append(name)
    return out


def main(argv: list[str]) -> int:
    if "--check" in argv:
        missing = stale()
        if missing:
            print(f"console assets missing or stale: {', '.join(missing)} (run `make setup`)")
            return 1
        return 0
    for path in build():
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
