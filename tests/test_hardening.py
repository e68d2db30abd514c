"""Issue #20, part A: every bad input is one line on stderr and exit status 2, and no command
overwrites one of its inputs (or anything else it was not asked to write)."""

import hashlib
import io
import json
import math
import pickle
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers_models import tiny_model

from spikelut.cli.main import main
from spikelut.compiler.backend.plan import plans_from_json
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import ModelFileError, load_model, save_model
from spikelut.compiler.train.lm import new_model

# an unwritable place for any user, root included: procfs makes no new files
UNWRITABLE = "/proc/spikelut-hardening"
ICE40_START = b"\xff\x00\x00\xff\x7e\xaa\x99\x7e"
ECP5_START = b"\xff\x00Part: LFE5U-25F-8MG285C\x00\xff\xff\xff\xbd\xb3"


def refused(capsys, argv, *words) -> str:
    """Run the CLI; assert exit 2 and one stderr line, no traceback, naming ``words``."""
    status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"spikelut {argv[0]}: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def int_model(tmp_path):
    path = tmp_path / "q.lutnet"
    save_model(tiny_model(), path)
    return path


@pytest.fixture
def float_model(tmp_path):
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=4, out_dim=3, n_tables=4, n_c=2, rng=rng)
    layer = layer.with_tables(rng.normal(size=layer.tables.shape).astype(np.float32))
    model = ClassifierMLP(InputEncoding.identity(4, bits=6), [layer], 3, meta={"dataset": "iris"})
    path = tmp_path / "f.lutnet"
    save_model(model, path)
    return path


@pytest.fixture
def toy_npz(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = np.arange(40) % 2
    X[y == 1] += 3.0
    path = tmp_path / "toy.npz"
    np.savez(path, X=X, y=y)
    return path


def rewrite_header(path, out, edit):
    """Copy a model file with ``edit(top)`` applied to its header (``edit`` may return a
    replacement header text)."""
    with zipfile.ZipFile(path) as zf:
        top = json.loads(zf.read("header.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "header.json"}
    text = edit(top)
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("header.json", text if text is not None else json.dumps(top))
    return out


# -- 1. no command overwrites its input ------------------------------------------------------


def test_report_refuses_to_overwrite_its_model(int_model, capsys):
    before = digest(int_model)
    refused(capsys, ["report", int_model, "-o", int_model], "never overwrites")
    assert digest(int_model) == before
    html = int_model.with_suffix(".html")
    refused(capsys, ["report", int_model, "-o", int_model.parent / "x.lutnet"], ".html")
    assert not html.exists()


def test_quantize_refuses_to_overwrite_its_float_model(float_model, capsys):
    before = digest(float_model)
    refused(capsys, ["quantize", float_model, "-o", float_model], "is the input")
    # the same file under another name is the same input
    refused(capsys, ["quantize", float_model, "-o", float_model.parent / "." / "f.lutnet"])
    assert digest(float_model) == before


@pytest.mark.parametrize("command", ["compile", "build"])
def test_compile_and_build_refuse_their_input_as_output_dir(command, int_model, capsys):
    before = digest(int_model)
    board = ["--board", "icebreaker"] if command == "build" else []
    refused(capsys, [command, int_model, *board, "-o", int_model], "is the input")
    # a directory that holds the input would take the outputs beside it
    refused(capsys, [command, int_model, *board, "-o", int_model.parent], "holds the input")
    assert digest(int_model) == before


def test_train_and_convert_refuse_their_inputs(toy_npz, tmp_path, capsys):
    before = digest(toy_npz)
    refused(capsys, ["train", "classifier", "--data", toy_npz, "-o", toy_npz], "is the input")
    assert digest(toy_npz) == before
    text = tmp_path / "text.txt"
    text.write_text("hello world " * 100)
    refused(capsys, ["train", "lm", "--text", text, "-o", text], "is the input")
    ann = tmp_path / "net.onnx"
    ann.write_bytes(b"not onnx")
    refused(capsys, ["convert", ann, "--data", "iris", "-o", ann], "is the input")
    out = tmp_path / "m.lutnet"
    refused(
        capsys,
        ["convert", ann, "--data", "iris", "-o", out, "--int-output", out],
        "-o and --int-output",
    )
    assert ann.read_bytes() == b"not onnx"


def test_sim_refuses_waves_over_its_model(tmp_path, capsys):
    model = tmp_path / "m.vcd"
    save_model(tiny_model(), model)
    before = digest(model)
    refused(capsys, ["sim", model, "--waves", model], "is the input")
    assert digest(model) == before


# -- 2. one line instead of a traceback --------------------------------------------------------


@pytest.mark.parametrize("arrays", [[], None, "x", {"layers/0/a": []}])
def test_header_arrays_of_the_wrong_type(int_model, tmp_path, arrays, capsys):
    bad = rewrite_header(int_model, tmp_path / "bad.lutnet", lambda t: t.update(arrays=arrays))
    with pytest.raises(ModelFileError):
        load_model(bad)
    refused(capsys, ["eval", bad], "bad.lutnet")


def test_header_nested_too_deeply(int_model, tmp_path, capsys):
    deep = '{"format": "spikelut-lutnet", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    bad = rewrite_header(int_model, tmp_path / "deep.lutnet", lambda t: deep)
    refused(capsys, ["eval", bad], "nested too deeply")


@pytest.mark.parametrize("meta", ["a string", [1, 2], 3])
@pytest.mark.parametrize("command", ["eval", "sim", "run", "report", "quantize"])
def test_meta_of_the_wrong_type(int_model, tmp_path, command, meta, capsys):
    def edit(top):
        top["model"]["meta"] = meta

    bad = rewrite_header(int_model, tmp_path / "meta.lutnet", edit)
    extra = {
        "run": ["--port", "tcp:127.0.0.1:1"],
        "report": ["-o", tmp_path / "r.html"],
        "quantize": ["-o", tmp_path / "out.lutnet"],
    }.get(command, [])
    refused(capsys, [command, bad, *extra], "meta must be an object")


@pytest.mark.parametrize("dataset", [["iris"], {"name": "iris"}, 5])
def test_meta_dataset_of_the_wrong_type(int_model, tmp_path, dataset, capsys):
    def edit(top):
        top["model"]["meta"] = {"dataset": dataset}

    bad = rewrite_header(int_model, tmp_path / "meta.lutnet", edit)
    refused(capsys, ["run", bad, "--port", "tcp:127.0.0.1:1"], "meta.dataset")


def test_declared_shape_of_ten_to_the_thirteen(int_model, tmp_path, capsys):
    def edit(top):
        top["arrays"]["layers/0/tables"]["shape"] = [10**13]

    bad = rewrite_header(int_model, tmp_path / "huge.lutnet", edit)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="declares"):
            load_model(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    refused(capsys, ["eval", bad], "declares")


def test_npy_header_disagreeing_with_the_model_header(int_model, tmp_path):
    """The member is the size the header says, but its own .npy header declares 10**13."""
    member = "arrays/layers/0/tables.npy"
    with zipfile.ZipFile(int_model) as zf:
        top = json.loads(zf.read("header.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "header.json"}
    data = members[member]
    spec = top["arrays"]["layers/0/tables"]
    header = io.BytesIO()
    npy = {"descr": spec["dtype"], "fortran_order": False, "shape": (10**13,)}
    np.lib.format.write_array_header_1_0(header, npy)
    members[member] = header.getvalue() + data[data.index(b"\n") + 1 :]
    spec["sha256"] = hashlib.sha256(members[member]).hexdigest()
    bad = tmp_path / "npy.lutnet"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
        zf.writestr("header.json", json.dumps(top))
    with pytest.raises(ModelFileError, match="does not match its header"):
        load_model(bad)


def test_sample_refuses_a_context_of_a_billion(tmp_path, capsys):
    path = tmp_path / "rnn.lutnet"
    save_model(new_model("rnn", 1, context=8, dim=8, n_tables=4, n_c=3), path)
    bad = rewrite_header(
        path, tmp_path / "ctx.lutnet", lambda t: t["model"]["shape"].update(context=10**9)
    )
    tracemalloc.start()
    try:
        refused(capsys, ["sample", bad, "--bytes", "2"], "context must be")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
    refused(capsys, ["train", "lm", "--text", path, "--arch", "rnn", "--context", 10**9])


@pytest.mark.parametrize(
    "argv",
    [
        ["quantize", "{float}", "-o", "{bad}"],
        ["compile", "{int}", "-o", "{bad}"],
        ["build", "{int}", "--board", "icebreaker", "-o", "{bad}"],
        ["report", "{int}", "-o", "{bad}.html"],
        ["sim", "{int}", "--waves", "{bad}.vcd"],
        ["train", "lm", "--text", "{float}", "--steps", "1", "-o", "{bad}"],
        ["train", "classifier", "--data", "iris", "-o", "{bad}"],
        ["demo", "-o", "{bad}"],
    ],
)
@pytest.mark.parametrize("where", ["proc", "under_a_file"])
def test_outputs_into_an_unwritable_place(argv, where, int_model, float_model, tmp_path, capsys):
    bad = UNWRITABLE if where == "proc" else str(int_model) + "/out"
    names = {"{float}": str(float_model), "{int}": str(int_model)}
    args = [names.get(a, a.replace("{bad}", bad)) for a in argv]
    refused(capsys, args, "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.lutnet", "q.lutnet"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["quantize", "{float}", "-o", "{dir}"], "is a directory"),
        (["report", "{int}", "-o", "{dir}.html"], "is a directory"),
        (["sim", "{int}", "--waves", "{dir}.vcd"], "is a directory"),
        (["train", "lm", "--text", "{float}", "-o", "{dir}"], "is a directory"),
        (["compile", "{int}", "-o", "{float}"], "is a file"),
    ],
)
def test_outputs_onto_a_directory_or_file(argv, words, int_model, float_model, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d.html").mkdir()
    (tmp_path / "d.vcd").mkdir()
    names = {"{float}": str(float_model), "{int}": str(int_model)}
    args = [names.get(a, a.replace("{dir}", str(tmp_path / "d"))) for a in argv]
    refused(capsys, args, words)


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((2, 8, 1)), "2-D array"),
        (np.array([["a"] * 8]), "real numbers"),
        (np.ones((2, 8)) * 1j, "real numbers"),
        (np.full((2, 8), np.nan), "NaN"),
    ],
)
def test_run_input_of_the_wrong_kind(int_model, tmp_path, array, words, capsys):
    path = tmp_path / "x.npy"
    np.save(path, array)
    refused(capsys, ["run", int_model, "--port", "tcp:127.0.0.1:1", "--input", path], words)


@pytest.mark.parametrize(
    "info, words",
    [
        ({"board": "icebreaker", "indexer": "parallel"}, "lacks plans"),
        (
            {"board": "icebreaker", "indexer": "parallel", "plans": [{"storage": "flash"}]},
            "needs a storage",
        ),
        (
            {
                "board": "icebreaker",
                "indexer": "parallel",
                "plans": [{"storage": "bram", "lanes": 0}],
            },
            "lanes",
        ),
        ([1, 2], "lacks plans"),
    ],
)
def test_run_load_tables_with_a_bad_board_json(int_model, tmp_path, info, words, capsys):
    build = tmp_path / "build"
    build.mkdir()
    (build / "board.json").write_text(json.dumps(info))
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 8)))
    argv = ["run", int_model, "--port", "tcp:127.0.0.1:1", "--input", x, "--load-tables", build]
    refused(capsys, argv, words)


@pytest.mark.parametrize("items", [None, [], {}, [None], [{"storage": "disk"}], [{}]])
def test_plans_from_json_refuses_with_value_error(items):
    with pytest.raises(ValueError, match="plan"):
        plans_from_json(items)


def test_sample_seed_and_numbers(tmp_path, capsys):
    path = tmp_path / "rnn.lutnet"
    save_model(new_model("rnn", 1, context=8, dim=8, n_tables=4, n_c=3), path)
    refused(capsys, ["sample", path, "--seed", "-1"], "--seed", "0..")
    refused(capsys, ["sample", path, "--temperature", "nan"], "--temperature", "finite")
    refused(capsys, ["sample", path, "--bytes", "-3"], "--bytes")


def test_flash_refuses_a_file_that_is_not_a_bitstream(capsys, tmp_path):
    refused(
        capsys,
        ["flash", "/proc/version", "--board", "orangecrab-25f", "--dry-run"],
        "not a bitstream",
    )
    text = tmp_path / "notes.bin"
    text.write_text("hello")
    refused(capsys, ["flash", text, "--board", "icebreaker", "--dry-run"], "not a bitstream")
    ecp5 = tmp_path / "top.bit"
    ecp5.write_bytes(ECP5_START + bytes(100))
    refused(capsys, ["flash", ecp5, "--board", "icebreaker", "--dry-run"], "ecp5 bitstream")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.bin", "top.bit"]


def test_flash_accepts_bitstreams_and_flash_images_and_a_dry_run_writes_nothing(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("OPENFPGALOADER", "/nonexistent/openFPGALoader")
    monkeypatch.setenv("ICEPROG", "/nonexistent/iceprog")
    image = tmp_path / "flash.bin"
    image.write_bytes(ICE40_START + bytes(1 << 20) + b"tables")  # bitstream, tables at 1 MiB
    assert main(["flash", str(image), "--board", "icebreaker", "--dry-run"]) == 0
    ecp5 = tmp_path / "spikelut.bit"
    ecp5.write_bytes(ECP5_START + bytes(100))
    assert main(["flash", str(ecp5), "--board", "orangecrab-25f", "--dry-run"]) == 0
    assert "--dfu" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flash.bin", "spikelut.bit"]


# -- 3. memory amplification -------------------------------------------------------------------


def test_a_zip_bomb_member_is_refused_before_it_is_read(int_model, tmp_path, capsys):
    """A deflated member of 64 MiB of zeros (its SHA-256 valid) where the header declares a
    few bytes: refused from the zip directory, without inflating it."""
    member = "arrays/layers/0/tables.npy"
    size = 64 << 20
    with zipfile.ZipFile(int_model) as zf:
        top = json.loads(zf.read("header.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n not in ("header.json", member)}
    sha = hashlib.sha256()
    bomb = tmp_path / "bomb.lutnet"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        chunk = bytes(1 << 20)
        with zf.open(member, "w") as fh:
            for _ in range(size >> 20):
                fh.write(chunk)
                sha.update(chunk)
        top["arrays"]["layers/0/tables"]["sha256"] = sha.hexdigest()
        zf.writestr("header.json", json.dumps(top))
    assert bomb.stat().st_size < size // 100
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="holds 67108864 bytes"):
            load_model(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # not the 64 MiB (nor twice that) it inflates to
    refused(capsys, ["eval", bomb], "corrupted")


def test_loading_reads_each_array_once(tmp_path):
    """A valid model's arrays are read straight into their buffers: the peak is about the
    arrays' size, not twice it."""
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=16, out_dim=512, n_tables=16, n_c=10, rng=rng)
    layer = layer.with_tables(rng.normal(size=layer.tables.shape).astype(np.float32))
    model = ClassifierMLP(InputEncoding.identity(16, bits=6), [layer], 512)
    path = tmp_path / "big.lutnet"
    save_model(model, path)
    nbytes = layer.tables.nbytes
    assert nbytes == 16 * 1024 * 512 * 4
    tracemalloc.start()
    try:
        again = load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(again.layers[0].tables, layer.tables)
    assert peak < 1.5 * nbytes


# -- 4. bad values are refused, not used ------------------------------------------------------


@pytest.mark.parametrize("lr", ["inf", "nan", "0", "-1", "1e400"])
def test_train_refuses_a_learning_rate_that_is_not_finite_and_positive(tmp_path, lr, capsys):
    out = tmp_path / "m.lutnet"
    refused(capsys, ["train", "classifier", "--data", "iris", "--lr", lr, "-o", out], "--lr")
    assert not out.exists()


def test_train_refuses_a_diverging_learning_rate(tmp_path, capsys):
    out = tmp_path / "m.lutnet"
    argv = ["train", "classifier", "--data", "iris", "--epochs", "1", "--lr", "1e300"]
    refused(capsys, [*argv, "-o", out], "diverged", "smaller --lr")
    assert not out.exists()


@pytest.mark.parametrize(
    "option",
    [
        ["--clock-mhz", "nan"],
        ["--clock-mhz", "inf"],
        ["--clock-mhz", "0"],
        ["--throughput", "0"],
        ["--throughput", "nan"],
        ["--tables-per-cycle", "0"],
        ["-P", "0"],
        ["--lanes", "0"],
        ["-L", "-2"],
    ],
)
def test_compile_refuses_values_out_of_range(int_model, tmp_path, option, capsys):
    out = tmp_path / "out"
    refused(capsys, ["compile", int_model, "-o", out, *option], option[0])
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["quantize", "{float}", "-o", "{out}", "--shift-tolerance", "nan"],
        ["quantize", "{float}", "-o", "{out}", "--shift-tolerance", "-1"],
        ["build", "{int}", "--board", "icebreaker", "--freq", "nan"],
        ["build", "{int}", "--board", "icebreaker", "--freq", "-12"],
        ["run", "{int}", "--port", "sim", "--timeout", "inf"],
        ["convert", "{float}", "--data", "iris", "-o", "{out}", "--input-gain", "nan"],
        ["train", "lm", "--text", "{float}", "--steps", "0"],
    ],
)
def test_numeric_options_are_checked(argv, int_model, float_model, tmp_path, capsys):
    names = {"{float}": str(float_model), "{int}": str(int_model), "{out}": str(tmp_path / "o")}
    refused(capsys, [names.get(a, a) for a in argv], "must be")


def test_complex_features_are_refused(int_model, tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)) + 1j
    y = np.arange(20) % 2
    np.savez(tmp_path / "c.npz", X=X, y=y)
    out = tmp_path / "m.lutnet"
    refused(
        capsys, ["train", "classifier", "--data", tmp_path / "c.npz", "-o", out], "real numbers"
    )
    rows = "\n".join(
        ",".join([f"{v:.3f}+1j" for v in r] + [str(c)]) for r, c in zip(X.real, y, strict=True)
    )
    (tmp_path / "c.csv").write_text(rows + "\n")
    refused(capsys, ["train", "classifier", "--data", tmp_path / "c.csv", "-o", out], "number")
    assert not out.exists()


def test_a_data_path_is_recorded_as_given(toy_npz, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.lutnet"
    argv = ["train", "classifier", "--data", str(toy_npz), "--epochs", "1", "--tables", "8"]
    assert main([*argv, "-o", str(out)]) == 0
    assert load_model(out).meta["dataset"] == str(toy_npz)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0  # found again by its absolute path
    assert json.loads(capsys.readouterr().out)["dataset"] == str(toy_npz)


# -- 5. pickles only with --trust-pickle -------------------------------------------------------


class _Evil:
    """Unpickling this touches a file: the code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize(
    "argv",
    [
        ["compile", "{pkl}", "--baseline", "mac", "-o", "{out}"],
        ["build", "{pkl}", "--baseline", "mac", "--board", "icebreaker", "-o", "{out}"],
        ["convert", "{pkl}", "--data", "digits", "-o", "{out}.lutnet"],
    ],
)
@pytest.mark.parametrize("suffix", [".pkl", ".joblib", ".pt"])
def test_pickles_need_trust_pickle(argv, suffix, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps(_Evil(marker)))
    args = [a.replace("{pkl}", str(evil)).replace("{out}", str(tmp_path / "out")) for a in argv]
    refused(capsys, args, "--trust-pickle")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [evil.name]


def test_limits_are_sane():
    from spikelut.compiler.ir import modelfile

    assert modelfile.MAX_HEADER_BYTES < modelfile.MAX_ARRAY_BYTES <= modelfile.MAX_MODEL_BYTES
    assert math.log2(modelfile.MAX_ARRAY_BYTES) > 32  # the default transformer's 3 GB fit


def test_sim_seed_and_a_network_too_large_for_memory(int_model, tmp_path, capsys):
    refused(capsys, ["sim", int_model, "--seed", "-1", "--dataset", "random"], "--seed")
    out = tmp_path / "m.lutnet"
    argv = ["train", "classifier", "--data", "iris", "--tables", str(10**12), "-o", out]
    refused(capsys, argv, "memory")
    assert not out.exists()
