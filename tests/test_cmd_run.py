"""``spikelut run``: the host runtime end to end against the simulated board (Verilator,
real UART bit timing), and its failures."""

import json

import numpy as np
import pytest
from helpers_models import retrained, tiny_model

from spikelut.boards.design import board_core, make_core, model_hash, model_tables
from spikelut.boards.platforms import board
from spikelut.cli.main import main
from spikelut.compiler.backend.plan import plans_to_json
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.modelfile import save_model
from spikelut.hdl.storage import Storage
from spikelut.sim.board_sim import SIM_CLOCK_NS, SIM_DIVISOR, board_flash_area, simulated_board


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny.lutnet"
    save_model(tiny_model(), path)
    return path


@pytest.mark.slow
def test_run_on_the_simulated_board_matches_the_golden_model(model_file, tmp_path, capsys):
    raw = np.random.default_rng(3).integers(-16, 16, (10, 8))
    np.save(tmp_path / "x.npy", raw)
    argv = ["run", str(model_file), "--port", "sim", "--input", str(tmp_path / "x.npy")]
    assert main([*argv, "--tables", "link", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    golden = run_classifier(tiny_model(), raw).predictions.tolist()
    assert r["n"] == r["agree"] == 10 and r["mismatches"] == []
    assert r["predictions"] == golden
    assert r["table_frames"] >= 2  # the tables went over LOAD_TABLES
    # --tables link leaves the simulated flash blank: SPRAM layers' boot load is rejected
    spram = any(
        p.storage == Storage.SPRAM for p in board_core(tiny_model(), board("icebreaker")).plans
    )
    assert r["boot"] == ("rejected" if spram else "ok") and r["counters"]["errors"] == 0
    # UART-bound: never faster than the link's bytes allow at the simulated baud rate
    assert 0 < r["sim_inferences_per_second"] <= r["sim_baud"] / 10 / 8


@pytest.mark.slow
def test_run_loads_a_retrained_models_tables_into_the_bitstream(tmp_path, capsys):
    """``spikelut run`` over a port (the simulated board's TCP bridge) with a retrained model
    of the bitstream's shape: the shape fingerprint matches, the tables are loaded over the
    link, IDENTIFY then reports the model's hash, and the answers are the model's."""
    model, other = tiny_model(), retrained(tiny_model())
    plan = board_core(model, board("icebreaker"))
    core = make_core(model, plan, clock_hz=10**9 // SIM_CLOCK_NS, divisor=SIM_DIVISOR)
    area = board_flash_area(core, model_tables(model), model_hash(model))
    build = tmp_path / "build"
    build.mkdir()
    info = {"plans": plans_to_json(plan.plans), "indexer": plan.kind.value}
    (build / "board.json").write_text(json.dumps(info))
    save_model(other, tmp_path / "other.lutnet")
    raw = np.random.default_rng(4).integers(-16, 16, (10, 8))
    np.save(tmp_path / "x.npy", raw)
    argv = ["run", str(tmp_path / "other.lutnet"), "--input", str(tmp_path / "x.npy")]
    argv += ["--load-tables", str(build), "--timeout", "60", "--json"]
    with simulated_board(core, flash_area=area) as sim:
        code = main([*argv, "--port", sim.port])
    r = json.loads(capsys.readouterr().out)
    assert code == 0
    assert r["identity"]["model_hash"] == model_hash(model).hex()  # the bitstream's
    assert r["identity"]["tables_hash"] == model_hash(other).hex()
    assert r["table_frames"] >= 2
    assert r["predictions"] == run_classifier(other, raw).predictions.tolist()
    assert r["predictions"] != run_classifier(model, raw).predictions.tolist()


def test_missing_port_is_a_user_error(model_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 8)))
    argv = ["run", str(model_file), "--input", str(tmp_path / "x.npy")]
    assert main([*argv, "--port", str(tmp_path / "no-such-tty")]) == 2
    assert "no such port" in capsys.readouterr().err
    assert main([*argv, "--port", "tcp:127.0.0.1:1"]) == 2


def test_inputs_are_checked(model_file, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 5)))
    argv = ["run", str(model_file), "--port", "sim"]
    assert main([*argv, "--input", str(tmp_path / "bad.npy")]) == 2
    assert "5 features" in capsys.readouterr().err
    assert main([*argv, "--dataset", "test"]) == 2  # the tiny model records no data set


@pytest.mark.slow
def test_run_on_the_simulated_board_with_a_frozen_core(model_file, tmp_path, capsys):
    """``--port sim --core frozen``: the board design a ``spikelut build --core frozen``
    puts in the bitstream (every table in logic behind the host link), checked answer by
    answer against the golden model."""
    raw = np.random.default_rng(6).integers(-16, 16, (12, 8))
    np.save(tmp_path / "x.npy", raw)
    argv = ["run", str(model_file), "--port", "sim", "--input", str(tmp_path / "x.npy")]
    assert main([*argv, "--core", "frozen", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["indexer"] == "frozen" and r["cycles_per_inference"] == 1
    assert r["n"] == r["agree"] == 12 and r["mismatches"] == []
    assert r["predictions"] == run_classifier(tiny_model(), raw).predictions.tolist()
    assert r["table_frames"] == 0 and r["counters"]["errors"] == 0


def test_core_is_for_the_simulated_board_only(model_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 8)))
    argv = ["run", str(model_file), "--input", str(tmp_path / "x.npy"), "--core", "frozen"]
    assert main([*argv, "--port", str(tmp_path / "tty")]) == 2
    err = capsys.readouterr().err
    assert "--core chooses the classifier core of --port sim" in err
    assert len(err.strip().splitlines()) == 1
