import pytest

from videorft.engine.eval.aggregate import accuracy_by, aggregate, category_scores, mean_of_tasks


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


def test_category_scores_leave_out_rows_without_a_category():
    rows = [{"category": "short", "accuracy": 1.0}, {"category": "short", "accuracy": 0.0},
            {"category": "long", "accuracy": 0.5}, {"category": None, "accuracy": 1.0}, {"accuracy": 1.0}]
    assert category_scores(rows) == ({"short": 0.5, "long": 0.5}, {"short": 2, "long": 1})


def test_mean_of_tasks_averages_merged_levels_first():
    """VSI-Bench's official number: the three direction levels count as one of the tasks."""
    scores = {"easy": 1.0, "medium": 0.0, "hard": 0.5, "counting": 0.2, "route": 0.6}
    merged = {"easy": "direction", "medium": "direction", "hard": "direction"}
    assert mean_of_tasks(scores, merged) == pytest.approx((0.5 + 0.2 + 0.6) / 3)
    assert mean_of_tasks(scores, {}) == pytest.approx(2.3 / 5) and mean_of_tasks({}, merged) is None
