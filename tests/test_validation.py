"""Bad input through the real CLI: one line on stderr naming the field, exit 2, no traceback.

Plus property-based fuzzing of the config and TOML parsers: whatever the input, they either
return a valid Config or raise the lab's own one-line input error, never anything else.
"""

import math
import string
import subprocess
import sys
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saddle import Config, SaddleInputError
from saddle.config import FIELDS, load_toml

BAD_FLAGS = [
    (["--m", "0"], "m"),
    (["--m", "-3"], "m"),
    (["--m", "2.5"], "m"),
    (["--n", "abc"], "n"),
    (["--m", "8", "--n", "8", "--escape-rank", "9"], "escape_rank"),
    (["--learning-rate", "nan"], "learning_rate"),
    (["--learning-rate", "-0.1"], "learning_rate"),
    (["--learning-rate", "inf"], "learning_rate"),
    (["--sigma", "-1"], "sigma"),
    (["--sigma", "nan"], "sigma"),
    (["--optimizer", "adam"], "optimizer"),
    (["--noise", "gaussian"], "noise"),
    (["--bulk", "wigner"], "bulk"),
    (["--escape", "time"], "escape"),
    (["--momentum", "1.0"], "momentum"),
    (["--momentum", "-0.5"], "momentum"),
    (["--radius", "0"], "radius"),
    (["--radius", "-1"], "radius"),
    (["--max-steps", "0"], "max_steps"),
    (["--seeds", "0"], "seeds"),
    (["--dtype", "float16"], "dtype"),
    (["--basis", "random"], "basis"),
    (["--optimizer", "adamw", "--b2", "1"], "b2"),
    (["--escape", "loss", "--gamma", "0.2", "--quartic", "1", "--loss-drop", "0.5"], "loss_drop"),
    (["--escape", "loss", "--gamma", "0"], "loss_drop"),
    (["--noise", "lowrank", "--m", "4", "--n", "6", "--noise-rank", "5"], "noise_rank"),
    (["--optimizer", "muon", "--ns-steps", "0"], "ns_steps"),
    (["--optimizer", "muon", "--orthogonalizer", "qr"], "orthogonalizer"),
    (["--optimizer", "muon", "--scaling", "spectral"], "scaling"),
    (["--optimizer", "mano", "--variant", "v3"], "variant"),
    (["--init-scale", "-1"], "init_scale"),
    (["--max-loss", "0"], "max_loss"),
    (["--gamma", "-0.1"], "gamma"),
    (["--bulk", "uniform", "--bulk-ratio", "0"], "bulk_ratio"),
    (["--basis", "partial", "--mixing", "1.5"], "mixing"),
    (["--landscape-seed", "-1"], "landscape_seed"),
    (["--learning-rte", "0.1"], "--learning-rate"),
    (["--batch-size", "0"], "--batch-size"),
]

BAD_FILES = [
    ("missing", None, "not found"),
    ("malformed", "m = = 3\n", "not valid TOML"),
    ("unknown key", 'optimzer = "muon"\n', "did you mean 'optimizer'"),
    ("wrong type", 'm = "x"\n', "m: got 'x'"),
    ("nested table", "[landscape]\nm = 3\n", "landscape"),
    ("binary", b"\xff\xfe\x00m", "UTF-8"),
]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "saddle", "run", *args], capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(proc, needle):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("saddle: error: ")
    assert needle in lines[0], lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize("args, field", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flag(args, field):
    assert_one_line_error(run_cli(*args), field)


@pytest.mark.parametrize("name, content, needle", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_config_file(tmp_path, name, content, needle):
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_one_line_error(run_cli("--config", str(path)), needle)


def test_config_path_that_is_a_directory(tmp_path):
    assert_one_line_error(run_cli("--config", str(tmp_path)), "directory")


@pytest.mark.parametrize("sections", ["X", "ABQ", ""])
def test_bench_rejects_unknown_sections(sections):
    proc = subprocess.run([sys.executable, "-m", "saddle", "bench", "--sections", sections],
                          capture_output=True, text=True, timeout=60)
    assert_one_line_error(proc, "--sections")
    assert "ABCDGN" in proc.stderr


def test_at_least_25_distinct_bad_inputs_are_covered():
    assert len(BAD_FLAGS) + len(BAD_FILES) + 1 >= 25


# --- fuzzing -----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
keys = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(alphabet=string.ascii_lowercase + "_",
                                                           max_size=15))


def _check_valid(c: Config):
    for name in ("learning_rate", "gamma", "bulk_scale", "max_loss"):
        v = getattr(c, name)
        assert v is None or math.isfinite(v)
    assert c.m >= 1 and c.n >= 1 and 1 <= c.escape_rank <= min(c.m, c.n)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, scalars, max_size=6))
def test_fuzz_config_dicts_never_escape_as_other_errors(data):
    # Shapes are capped so that valid fuzz configs stay cheap to build.
    try:
        c = Config.from_dict(data)
    except SaddleInputError as e:
        assert "\n" not in str(e)
    else:
        _check_valid(c)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_toml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.toml"
    path.write_text(text, encoding="utf-8")
    try:
        data = load_toml(path)
        Config.from_dict(data)
    except SaddleInputError as e:
        assert "\n" not in str(e).strip() or "TOML" in str(e)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=4, unique=True),
       st.lists(st.text(alphabet=string.printable, max_size=8), min_size=4, max_size=4))
def test_fuzz_cli_flags_parse_or_fail_cleanly(fields, values):
    from saddle.cli import build_parser
    from saddle.cli._common import config_from_args

    argv = ["run"]
    for f, v in zip(fields, values, strict=False):
        spec = FIELDS[f]
        if spec.kind == "bool":
            argv.append("--" + f.replace("_", "-"))
        else:
            argv += ["--" + f.replace("_", "-") + "=" + v]
    try:
        args = build_parser().parse_args(argv)
        config_from_args(args)
    except SaddleInputError as e:
        assert "\n" not in str(e)


def test_toml_errors_are_one_line(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("a = [1,\n2,\n")
    with pytest.raises(SaddleInputError) as e:
        load_toml(p)
    assert "\n" not in str(e.value)
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("a = [1,\n2,\n")
