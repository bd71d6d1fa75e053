"""The reproduction's experiments in several processes: the rows of a one-process run."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from saddle.errors import SaddleInputError
from saddle.experiments import default_jobs, run_experiments
from saddle.sweep import Store, load_spec, run_sweep

SPECS = {
    "first": """
        seeds = 6
        optimizer = ["adamw", "sgd"]
        m = 8
        n = 8
        basis = "coherent"
        max_steps = 100
        batch_runs = 2
        """,
    "second": """
        seeds = 4
        optimizer = "sgd"
        m = 8
        n = 8
        sigma = [0.01, 0.03]
        basis = "coherent"
        max_steps = 100
        batch_runs = 2
        """,
}


def _rows(out) -> pd.DataFrame:
    return Store(out).runs().drop(columns=["wall_s"])


def test_two_jobs_store_the_rows_of_one_process_and_count_every_run(tmp_path, caplog):
    files = {}
    for name, text in SPECS.items():
        files[name] = tmp_path / f"{name}.toml"
        files[name].write_text(textwrap.dedent(text))
    out = tmp_path / "out"
    out.mkdir()
    seen: dict[str, list] = {}

    def progress(name):
        seen[name] = [0, 0, 0]  # todo at start, runs reported, escaped+censored+diverged

        def on_start(todo, skipped):
            seen[name][0] = todo

        def on_progress(k, counts):
            seen[name][1] += k
            seen[name][2] = counts["escaped"] + counts["censored"] + counts["diverged"]

        return on_start, on_progress

    reports = run_experiments(out, False, tuple(SPECS), progress=progress, jobs=2,
                              spec_files=files)
    helper_log = out / "helper-1.log"
    assert helper_log.exists() and "Traceback" not in helper_log.read_text()
    assert "exited with code" not in caplog.text  # the helper ended with code 0
    for name in SPECS:
        ref = tmp_path / f"ref-{name}"
        run_sweep(load_spec(files[name]), ref)
        pd.testing.assert_frame_equal(_rows(out / "results" / name), _rows(ref))
        # Progress counts the runs the helper stored as well as this process's own.
        todo, reported, statuses = seen[name]
        assert reported == todo == statuses, (name, seen[name])
        assert reports[name]["ran"] + reports[name]["skipped"] <= reports[name]["total"]


def test_default_jobs_is_between_one_and_four():
    assert 1 <= default_jobs() <= 4


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_jobs_flag_refuses_what_is_not_a_positive_integer(value):
    from saddle.cli.reproduce import _jobs

    with pytest.raises(SaddleInputError, match="--jobs"):
        _jobs(value)
