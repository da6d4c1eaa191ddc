import pytest

from videorft.engine.eval.aggregate import accuracy_by, aggregate


def test_mixed_benchmark_reports_the_average_of_acc_and_mra():
    rows = [
        {"problem_type": "multiple choice", "accuracy": 1.0, "format": 1.0},
        {"problem_type": "multiple choice", "accuracy": 0.0, "format": 0.0},
        {"problem_type": "regression", "accuracy": 0.3, "format": 1.0},
        {"problem_type": "regression", "accuracy": 0.5, "format": 1.0},
    ]
    m = aggregate(rows)
    assert m["mean_acc"] == 0.5 and m["mean_mra"] == pytest.approx(0.4)
    assert m["score"] == pytest.approx(0.45)
    assert m["accuracy"] == pytest.approx(0.45) and m["format"] == 0.75
    assert m["accuracy/regression"] == pytest.approx(0.4)
    assert "semantic" not in m


def test_choice_only_benchmark_score_is_mean_acc():
    rows = [{"problem_type": "multiple choice", "accuracy": a, "format": 1.0, "semantic": 0.2} for a in (1, 1, 0)]
    m = aggregate(rows)
    assert m["score"] == m["mean_acc"] == pytest.approx(2 / 3) and "mean_mra" not in m
    assert m["semantic"] == pytest.approx(0.2)


def test_accuracy_by_source():
    rows = [{"data_source": "a", "accuracy": 1.0}, {"data_source": "a", "accuracy": 0.0},
            {"data_source": "b", "accuracy": 1.0}]
    assert accuracy_by(rows, "data_source") == {"a": 0.5, "b": 1.0}
