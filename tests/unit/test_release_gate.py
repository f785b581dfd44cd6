"""models.release refuses a candidate that would fail what every release keeps."""

from __future__ import annotations

from models.release import gate_failures


def _r(correct: int, n: int, ece: float = 0.02) -> dict:
    return {"n": n, "accuracy": round(correct / n, 4), "ece": ece,
            "confusion": {"true_negative": correct // 2, "true_positive": correct - correct // 2,
                          "false_negative": (n - correct) // 2, "false_positive": n - correct - (n - correct) // 2}}


def _metrics(rt_correct: int = 1439, imdb_correct: int = 4600, ece: float = 0.02):
    int8 = {"rotten_tomatoes": {"transformer": _r(1444, 1706), "cascade": _r(rt_correct, 1706, ece)},
            "imdb": {"transformer": _r(4590, 4967), "cascade": _r(imdb_correct, 4967, ece)}}
    fp32 = {"rotten_tomatoes": {"transformer": _r(1440, 1706)}, "imdb": {"transformer": _r(4591, 4967)}}
    return int8, fp32


def test_a_candidate_within_every_floor_passes():
    assert gate_failures(*_metrics(), everyday_accuracy=0.925) == []


def test_one_text_under_a_floor_is_refused_even_when_the_rounded_figure_reads_0_84():
    int8, fp32 = _metrics(rt_correct=1433)  # 0.83998..., which rounds to 0.8400
    assert int8["rotten_tomatoes"]["cascade"]["accuracy"] == 0.84
    (failure,) = gate_failures(int8, fp32, everyday_accuracy=0.925)
    assert "rotten_tomatoes" in failure and "0.8400" in failure and "floor 0.84" in failure


def test_quantization_loss_ece_and_the_everyday_floor_are_each_refused():
    int8, fp32 = _metrics(ece=0.06)
    fp32["imdb"]["transformer"] = _r(4700, 4967)  # int8 2.2 points behind
    failures = gate_failures(int8, fp32, everyday_accuracy=0.80)
    assert any("transformer int8 on imdb" in f for f in failures)
    assert sum("ECE" in f for f in failures) == 2
    assert any("everyday" in f for f in failures)
