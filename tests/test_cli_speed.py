"""The command line answers at once when it has no real work to do: help, the version,
argument errors and tab completion build the parser without importing PyTorch or any other
heavy module (benchmarks/cli_speed.py times it; here only the imports are checked, which does
not depend on the machine's load)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "pandas", "mlflow", "optuna")

# Runs aekit.cli.main on each argument list of argv[1] (JSON) in this one process, then
# prints, as JSON, each run's exit code and the heavy modules imported by then.
PROBE = """
import json, sys
from aekit.cli import main
runs = []
for argv in json.loads(sys.argv[1]):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    runs.append(code)
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"codes": runs, "heavy": heavy}), file=sys.__stderr__)
"""


def _probe(*argvs: list[str]) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs), json.dumps(HEAVY)],
                          capture_output=True, text=True)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report, proc.stderr


def _verbs() -> list[str]:
    from aekit.cli import build_parser

    return list(build_parser().verb_parsers)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["--version"]])
def test_help_and_version_import_nothing_heavy(argv):
    report, _ = _probe(argv)
    assert report["codes"] == [0]
    assert report["heavy"] == [], f"aekit {' '.join(argv)} imported {report['heavy']}"


def test_every_verbs_help_imports_nothing_heavy():
    verbs = _verbs()
    assert {"train", "evaluate", "diagnose", "sweep", "detect", "tune", "study"} <= set(verbs)
    report, _ = _probe(*[[verb, "--help"] for verb in verbs])
    assert report["codes"] == [0] * len(verbs)
    assert report["heavy"] == []


@pytest.mark.parametrize("argv,expected", [
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--hiden", "16"], "did you mean --hidden?"),
    (["tune", "--out", "o", "--pruner", "sometimes"],
     "invalid choice: 'sometimes' (choose from 'median', 'none')"),
    (["trian"], "invalid choice: 'trian'"),
    (["train", "--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
])
def test_argument_errors_are_short_clear_and_import_nothing_heavy(argv, expected):
    report, stderr = _probe(argv)
    assert report["codes"] == [2]
    assert report["heavy"] == []
    assert expected in stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()[:-1]  # the probe's own report is the last line
    assert len(lines) <= 4, lines  # no page of usage: a short one, the error, where help is
    assert lines[-1].startswith("(all options: aekit")


def test_a_bad_option_value_is_refused_before_pytorch_is_imported(tmp_path):
    report, stderr = _probe(["train", "--activation", "swish", "--out", str(tmp_path / "o")])
    assert report["codes"] == [2]
    assert "activation" in stderr
    assert report["heavy"] == []
    assert not (tmp_path / "o").exists()


def test_option_lists_named_in_the_command_line_match_the_code_that_uses_them():
    """The parser names a few lists itself so as not to import the modules that hold them."""
    from aekit.apps.study import STRATEGIES
    from aekit.commands.doctor import STRATEGY_NAMES
    from aekit.commands.train import MLFLOW_DEFAULT_URI
    from aekit.training.mlflow_log import DEFAULT_URI

    assert STRATEGY_NAMES == tuple(STRATEGIES)
    assert MLFLOW_DEFAULT_URI == DEFAULT_URI


def _complete(line: str, tmp_path) -> list[str]:
    out = tmp_path / "completions.txt"
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    proc = subprocess.run([sys.executable, "-m", "aekit"], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return [w.strip() for w in out.read_text().split("\n") if w.strip()]


def test_tab_completion_of_verbs_options_and_choices(tmp_path):
    pytest.importorskip("argcomplete")
    assert "train" in _complete("aekit tr", tmp_path)
    assert "--latent-dim" in _complete("aekit train --latent", tmp_path)
    assert set(_complete("aekit train --optimizer ", tmp_path)) >= {"adam", "sgd"}
    assert set(_complete("aekit tune --pruner ", tmp_path)) == {"median", "none"}


def test_entry_modules_are_marked_for_global_completion():
    """``activate-global-python-argcomplete`` completes scripts whose module starts with the
    marker (it reads the first 1024 bytes)."""
    import aekit.cli

    for path in (Path(aekit.cli.__file__), Path(aekit.cli.__file__).with_name("__main__.py")):
        assert "# PYTHON_ARGCOMPLETE_OK" in path.read_text()[:1024], path
