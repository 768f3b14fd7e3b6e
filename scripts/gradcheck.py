"""Numeric gradient check of the model zoo at tiny sizes (float64 centered differences
against jax.grad, relative error per parameter tensor; `jaxlab.analysis.gradcheck`):
`python -m scripts.gradcheck [--models all|name,name] [--coords 3] [--tolerance 1e-6]
[--verbose]`.

Prints one line per model (tensors checked, max relative error, PASS/FAIL and, on a
failure, the culprit: the layer after which a wrong gradient enters, or a layer whose output
is not float64 in the float64 check), and with --verbose each model's per-tensor table.
`all` includes the full-size entries (`gradcheck.FULL_SIZE`: AlexNet and GoogLeNet have no
width field; minutes each on a CPU); `tiny` is every other entry (the tests check four of them).
Exit status 1 when a model fails, 2 for an unknown model name.
"""

from __future__ import annotations

import sys
import time

from absl import app, flags

from scripts.cli import fail, parse_flags_or_fail

flags.DEFINE_string("models", "all", "Comma-separated TINY_ZOO names, 'tiny' or 'all'.")
flags.DEFINE_integer("coords", 3, "Coordinates checked per parameter tensor.")
flags.DEFINE_float("tolerance", 1e-6, "Largest relative error that passes.")
flags.DEFINE_bool("verbose", False, "Print every model's per-tensor table.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from jaxlab.analysis.gradcheck import FULL_SIZE, TINY_ZOO, check_zoo_model

    f = flags.FLAGS
    if f.models == "all":
        names = list(TINY_ZOO)
    elif f.models == "tiny":
        names = [n for n in TINY_ZOO if n not in FULL_SIZE]
    else:
        names = [n for n in f.models.split(",") if n]
    unknown = [n for n in names if n not in TINY_ZOO]
    if unknown or not names:
        bad = unknown[0] if unknown else ""
        fail(f"unknown model {bad!r}; valid choices: all, tiny, {', '.join(TINY_ZOO)}")
    if f.coords < 1 or f.tolerance <= 0:
        fail("--coords must be >= 1 and --tolerance > 0")
    failed = []
    for name in names:
        t0 = time.time()
        result = check_zoo_model(name, coords=f.coords, tolerance=f.tolerance)
        verdict = "PASS" if result.passed else f"FAIL (culprit: {result.culprit})"
        print(
            f"{name:<16} {len(result.rows):>4} tensors  max rel. error {result.max_error:.2e}  "
            f"{verdict}  ({time.time() - t0:.1f}s)",
            flush=True,
        )
        if f.verbose:
            print(result.format())
        if not result.passed:
            failed.append(name)
    print(
        f"{len(names) - len(failed)}/{len(names)} models pass"
        + (f"; failing: {', '.join(failed)}" if failed else "")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_fail)
