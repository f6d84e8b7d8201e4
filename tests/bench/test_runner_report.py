"""Datasets, runner, report and CLI on small generated sets."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from voicepriv.audio import Audio
from voicepriv.bench import datasets, report, runner
from voicepriv.bench.mixer import CallConfig, make_call
from voicepriv.bench.telephone import EchoConfig
from voicepriv.cli import main
from voicepriv.interfaces import IsolationRequest, IsolationResult
from voicepriv.plugins import get_plugin_manager, hookimpl

Utts = tuple[list[Audio], list[Audio]]


@pytest.fixture(scope="module")
def call_set(tmp_path_factory: pytest.TempPathFactory, utterances: Utts) -> Path:
    agent, customer = utterances
    config = CallConfig(duration_s=12.0, overlap_ratio=0.1, echo=EchoConfig(erl_db=20.0))
    calls = [
        make_call(agent, customer, config, seed=s, call_id=f"c{s}", enrollment=agent[:1])
        for s in range(3)
    ]
    out = tmp_path_factory.mktemp("calls")
    datasets.write_calls(calls, out, name="tiny", seed=0, licenses={"LICENSE": "synthetic"})
    return out


def test_generated_set_round_trips(call_set: Path, utterances: Utts) -> None:
    dataset = datasets.open_dataset(call_set)
    assert dataset.kind == "generated" and len(dataset.entries) == 3
    items = list(dataset.items())
    assert [i.item_id for i in items[:2]] == ["c0/mono", "c0/stereo"]
    mono, stereo = items[0], items[1]
    assert mono.audio.channels == 1 and stereo.audio.channels == 2
    assert mono.agent is not None and mono.agent.frames == mono.audio.frames
    assert mono.enrollment and mono.segments
    card = dataset.card()
    assert card.recordings == 3 and card.sample_rates == (8000,)
    assert card.overlap_pct == pytest.approx(10.0, abs=2.0)
    assert "synthetic" in card.markdown()


def _flat_results(dataset: datasets.Dataset, **kwargs: Any) -> list[runner.Result]:
    competitors = runner.systems("none")
    return list(runner.run(dataset, competitors, **kwargs))


def test_baselines_score_as_expected(call_set: Path) -> None:
    results = _flat_results(datasets.read_generated(call_set))
    by = {
        (r.system, r.layout): [x for x in results if (x.system, x.layout) == (r.system, r.layout)]
        for r in results
    }
    assert set(by) == {
        ("oracle", "mono"),
        ("keep-all", "mono"),
        ("vad-only", "mono"),
        ("oracle", "stereo"),
        ("keep-all", "stereo"),
        ("vad-only", "stereo"),
        ("channel-pick", "stereo"),
    }
    assert all(r.status == "ok" for r in results)
    oracle = by[("oracle", "mono")]
    keep = by[("keep-all", "mono")]
    assert all(r.leakage_s == 0.0 for r in oracle)
    assert all(r.retention_pct is not None and r.retention_pct > 90 for r in oracle)
    assert all(r.leakage_pct is not None and r.leakage_pct > 90 for r in keep)
    assert all(r.si_sdri_db == pytest.approx(0.0, abs=1e-3) for r in keep)
    pick = by[("channel-pick", "stereo")]
    # the agent channel holds only the echo of the customer: little energy, still audible
    assert all(r.leakage_energy_pct is not None and r.leakage_energy_pct < 5 for r in pick)
    assert all(r.peak_mib is not None for r in (oracle[0], keep[0]))


def test_the_default_voiceprint_serves_every_mono_separator(call_set: Path) -> None:
    # the default embedder is one both voiceprint separators accept (mfcc is refused by
    # ``segmentation``): a default run scores them instead of listing errors
    dataset = datasets.read_generated(call_set)
    competitors = runner.systems(["speaker", "segmentation"], baselines=())
    results = list(runner.run(dataset, competitors, layouts=["mono"], limit=1))
    assert {r.system for r in results} == {"speaker", "segmentation"}
    assert all(r.status == "ok" for r in results), [r.message for r in results]


class _HalfGain:
    """A separator plugin for the test: halves the input (mono only)."""

    name = "half"

    def isolate(self, audio: Audio, request: IsolationRequest) -> IsolationResult:
        if audio.channels != 1:
            from voicepriv.errors import IsolationError

            raise IsolationError("half: mono only")
        return IsolationResult(
            audio=Audio(samples=audio.samples * 0.5, sample_rate=audio.sample_rate),
            kept=(),
            removed=(),
            residual_leakage=1.0,
            confidence=0.0,
        )


class _Plugin:
    @hookimpl
    def voicepriv_backend_names(self, kind: str) -> Sequence[str]:
        return ["half"] if kind == "separator" else []

    @hookimpl
    def voicepriv_separator(self, name: str, options: Mapping[str, Any]) -> _HalfGain | None:
        return _HalfGain() if name == "half" else None


@pytest.fixture
def manager() -> Iterator[Any]:
    manager = get_plugin_manager()
    plugin = _Plugin()
    manager.register(plugin, name="test-half")
    yield manager
    manager.unregister(plugin)


def test_every_installed_separator_runs_and_refusals_are_recorded(
    call_set: Path, manager: Any
) -> None:
    dataset = datasets.read_generated(call_set)
    competitors = runner.systems(["half"], manager=manager, baselines=("keep-all",))
    results = list(runner.run(dataset, competitors, manager=manager, limit=1))
    half = {r.layout: r for r in results if r.system == "half"}
    assert half["mono"].status == "ok" and half["stereo"].status == "refused"
    assert half["mono"].si_sdr_db == pytest.approx(
        next(r.si_sdr_db for r in results if r.system == "keep-all" and r.layout == "mono"),
        abs=1e-3,
    )
    assert "half" in [s.name for s in runner.systems("all", manager=manager, baselines=())]
    from voicepriv.errors import BenchError

    with pytest.raises(BenchError, match="not installed"):
        runner.systems(["nope"], manager=manager)


def test_report_jsonl_leaderboard_and_plots(call_set: Path, tmp_path: Path) -> None:
    results = _flat_results(datasets.read_generated(call_set), layouts=["mono"])
    path = tmp_path / "r.jsonl"
    assert report.write_jsonl(results, path) == len(results)
    again = report.read_jsonl(path)
    assert again == results
    rows = report.summarise(again)
    oracle = next(r for r in rows if r.system == "oracle")
    low, high = oracle.intervals["retention_pct"]
    assert low <= oracle.means["retention_pct"] <= high
    board = report.leaderboard(again)
    assert "| *oracle* | 3 |" in board and "## mono" in board
    pytest.importorskip("matplotlib")
    written = report.plots(again, tmp_path / "plots")
    assert [p.name for p in written] == ["leakage_retention.png", "si_sdri_by_overlap.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_librimix_and_rttm_readers(tmp_path: Path, utterances: Utts) -> None:
    agent, customer = utterances
    root = tmp_path / "librimix"
    for folder in ("mix_clean", "s1", "s2"):
        (root / folder).mkdir(parents=True)
    a, c = agent[0].mono()[:16000], customer[0].mono()[:16000]
    sf.write(root / "s1" / "19-1-0001_26-2-0002.wav", a, 8000)
    sf.write(root / "s2" / "19-1-0001_26-2-0002.wav", c, 8000)
    sf.write(root / "mix_clean" / "19-1-0001_26-2-0002.wav", a + c, 8000)
    dataset = datasets.open_dataset(root)
    assert dataset.kind == "librimix" and dataset.card().speakers == 2
    item = next(dataset.items())
    assert {s.label for s in item.segments} == {"agent", "customer"}
    assert item.agent is not None and item.agent.frames == item.audio.frames

    rec = tmp_path / "rttm"
    rec.mkdir()
    sf.write(rec / "talk.wav", np.concatenate([a, c]), 8000)
    (rec / "talk.rttm").write_text(
        "SPEAKER talk 1 0.0 2.0 <NA> <NA> spk1 <NA> <NA>\n"
        "SPEAKER talk 1 2.0 1.0 <NA> <NA> spk2 <NA> <NA>\n"
    )
    dataset = datasets.open_dataset(rec)
    assert dataset.kind == "rttm"
    item = next(dataset.items())
    assert [(s.label, s.end) for s in item.segments] == [("agent", 2.0), ("customer", 3.0)]
    pieces = runner.reference_enrollment(item)
    assert sum(p.duration for p in pieces) == pytest.approx(2.0, abs=0.02)
    results = _flat_results(dataset, oracle_enrollment=True)
    oracle = next(r for r in results if r.system == "oracle")
    assert oracle.si_sdr_db is None and oracle.der_pct == pytest.approx(0.0, abs=1e-6)


def test_cli_make_calls_run_report(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = tmp_path / "calls"
    out = tmp_path / "results"
    assert (
        main(
            [
                "bench",
                "make-calls",
                "--speakers",
                str(shared_data),
                "--out",
                str(calls),
                "--n",
                "2",
                "--seed",
                "1",
                "--duration",
                "12",
            ]
        )
        == 0
    )
    manifest = json.loads((calls / "manifest.json").read_text())
    assert [c["id"] for c in manifest["calls"]] == ["call-0000", "call-0001"]
    again = tmp_path / "again"
    assert main(["bench", "make-calls", "--speakers", str(shared_data), "--out", str(again),
                 "--n", "1", "--seed", "1", "--duration", "12"]) == 0  # fmt: skip
    for name in ("mix.flac", "stereo.flac", "agent.flac", "reference.rttm"):
        first = (calls / "call-0000" / name).read_bytes()
        assert first == (again / "call-0000" / name).read_bytes()
    assert (
        main(
            [
                "bench",
                "run",
                "--data",
                str(calls),
                "--algorithms",
                "none",
                "--out",
                str(out),
                "--no-plots",
            ]
        )
        == 0
    )
    assert (out / "results.jsonl").is_file() and (out / "leaderboard.md").is_file()
    assert main(["bench", "report", "--results", str(out), "--no-plots"]) == 0
    assert "oracle" in capsys.readouterr().out
    assert main(["bench", "run", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
