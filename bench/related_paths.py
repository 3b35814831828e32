"""Where the plain-Python relatedness kernels stop paying: plain vs NumPy, per corpus size.

    python -m bench.related_paths                  # 10, 100, 300, 500, 1000, 2000 case studies
    python -m bench.related_paths --n 10 --n 3000 --repeat 5

For each size, a generated corpus (:mod:`bench._corpus`), its index fitted and cached once
with each kernel, then in fresh processes (median CPU time of ``--repeat``), each kernel:

- ``warm``: import the kernels (NumPy for the numeric ones), load the cached index, answer one
  edition (``related`` and ``company_mentions`` among every other case study: the most a
  query can read);
- ``fit``: the same from no cache (analysis, which both share, included: what a cold first
  publish pays).

The ratio is plain / NumPy: below 1 the plain kernels are cheaper. ``PLAIN_BELOW`` in
:mod:`syndicate.related._index` is set where it crosses 1 for ``warm``, a publish's usual case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/related_paths.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]

_PROBE = """
import pickle, sys, time
cases = pickle.loads(open(sys.argv[1], "rb").read())
mode, cache, numeric = sys.argv[2], sys.argv[3], sys.argv[4] == "numpy"
started = time.process_time()
import syndicate.related as related
from syndicate.related import _index
related.PLAIN_BELOW = 0 if numeric else 10 ** 9
_index.PLAIN_VALUES = 0 if numeric else 10 ** 12  # these kernels, whatever the query
from pathlib import Path
if mode == "warm":
    index = related.load_index(Path(cache))
else:
    index = related.build_index(cases)
others = [case.slug for case in cases[:-1]]
index.related(cases[-1].slug, candidates=others, k=3)
index.company_mentions(cases[-1].slug, candidates=others)
assert index.numeric == numeric and ("numpy" in sys.modules) == numeric
print(time.process_time() - started)
"""


def _cpu(args: list[str], repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [float(subprocess.run([sys.executable, "-c", _PROBE, *args], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()[-1])
            for _ in range(repeat)]
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="corpus sizes")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = args.n or [10, 100, 300, 500, 1000, 2000]
    import pickle

    import syndicate.related as related
    from bench._corpus import generate_corpus

    print(f"{'case studies':>12}  {'mode':>4}  {'plain s':>8}  {'numpy s':>8}  {'plain/numpy':>11}")
    with tempfile.TemporaryDirectory(prefix="syndicate-paths-") as tmp:
        for n in sizes:
            cases = generate_corpus(n)
            corpus = Path(tmp) / f"cases-{n}.pickle"
            corpus.write_bytes(pickle.dumps(cases))
            saved = related.PLAIN_BELOW
            for kernel, below in (("plain", 10 ** 9), ("numpy", 0)):
                related.PLAIN_BELOW = below
                related.save_index(related.build_index(cases), Path(tmp) / f"{kernel}-{n}.rel")
            related.PLAIN_BELOW = saved
            for mode in ("warm", "fit"):
                plain = _cpu([str(corpus), mode, str(Path(tmp) / f"plain-{n}.rel"), "plain"],
                             args.repeat)
                numpy = _cpu([str(corpus), mode, str(Path(tmp) / f"numpy-{n}.rel"), "numpy"],
                             args.repeat)
                print(f"{n:>12}  {mode:>4}  {plain:8.3f}  {numpy:8.3f}  {plain / numpy:11.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
