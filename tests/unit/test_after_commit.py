"""Work deferred to a commit runs once the transaction commits, and never when it rolls back."""

from __future__ import annotations

import pytest

from messaging import after_commit


def test_outside_a_transaction_deferred_work_runs_at_once() -> None:
    done: list[str] = []

    after_commit.after_commit(lambda: done.append("counted"))

    assert done == ["counted"]


def test_deferred_work_waits_for_the_commit_and_runs_once() -> None:
    done: list[str] = []
    with after_commit.collected() as deferred:
        after_commit.after_commit(lambda: done.append("counted"))
        assert done == []
    after_commit.run(deferred)
    after_commit.run(deferred)

    assert done == ["counted"]


def test_a_rollback_drops_what_was_deferred_and_ends_the_collection() -> None:
    done: list[str] = []

    def rolled_back_transaction() -> None:
        with after_commit.collected():
            after_commit.after_commit(lambda: done.append("counted"))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back_transaction()
    after_commit.after_commit(lambda: done.append("outside"))

    assert done == ["outside"]
