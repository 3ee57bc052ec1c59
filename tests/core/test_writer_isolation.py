"""Group commit: a job that raises an unexpected error (a bug) fails alone; the other jobs of
its batch, reads included, still succeed (security review: one bad request failed a batch)."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom import Vault, errors
from strongroom.core.writer import Job
from strongroom.storage import Tx


def _epoch(tx: Tx) -> int:
    return tx.tokens.token_epoch()


def test_a_bug_in_one_job_fails_only_that_job(vault: Vault) -> None:
    writer = vault.state._writer
    audited: list[errors.StrongroomError] = []

    def on_error(exc: errors.StrongroomError) -> None:
        audited.append(exc)

    def buggy(tx: Tx) -> tuple[Any, None]:
        tx.tokens.bump_token_epoch()  # undone with the job
        raise RuntimeError("a bug")

    def good(tx: Tx) -> tuple[Any, None]:
        return tx.tokens.bump_token_epoch(), None

    with vault.state.storage.read() as tx:
        before = _epoch(tx)
    jobs = [
        Job(lambda tx: (_epoch(tx), None), on_error),
        Job(buggy, on_error),
        Job(good, on_error),
        Job(lambda tx: (_epoch(tx), None), on_error),
    ]
    writer._run_batch(jobs)
    assert jobs[0].future.result() == before
    with pytest.raises(RuntimeError, match="a bug"):
        jobs[1].future.result()
    assert jobs[2].future.result() == before + 1
    assert jobs[3].future.result() == before + 1
    assert [type(e) for e in audited] == [errors.StrongroomError]
    with vault.state.storage.read() as tx:
        assert _epoch(tx) == before + 1


def test_an_unbindable_integer_is_invalid_input_not_a_failed_batch(vault: Vault) -> None:
    writer = vault.state._writer

    def huge(tx: Tx) -> tuple[Any, None]:
        tx.tokens.set_expiry("x", vault.state.clock.now())
        return tx.tokens.list_tokens(10**30), None

    jobs = [Job(huge, lambda exc: None), Job(lambda tx: (_epoch(tx), None), lambda exc: None)]
    writer._run_batch(jobs)
    try:
        jobs[0].future.result()  # PostgreSQL compares with a numeric: no error at all
    except errors.InvalidInput:
        pass
    assert isinstance(jobs[1].future.result(), int)
