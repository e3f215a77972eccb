"""The short-lived memory behind the token and certificate-registration look-ups."""

from __future__ import annotations

from cpr_abonnement.identities.memory import TimedMemory


def test_a_forget_during_a_lookup_keeps_its_older_answer_out():
    """A revocation committed while a verification is still reading the database must
    not be undone by that verification storing what it read."""
    memory: TimedMemory[str] = TimedMemory(lambda: 60.0, 10)

    def load_while_revoked() -> str:
        memory.forget()
        return "old answer"

    assert memory.lookup("token", load_while_revoked) == "old answer"
    assert memory.get("token") is None
    assert memory.lookup("token", lambda: "fresh") == "fresh"
    assert memory.get("token") == "fresh"


def test_forget_drops_only_what_it_picks_and_nothing_is_kept_that_was_not_found():
    memory: TimedMemory[str] = TimedMemory(lambda: 60.0, 10)
    for key in ("a", "b"):
        memory.lookup(key, lambda key=key: f"owner-{key}")
    memory.lookup("unknown", lambda: None)
    memory.forget(lambda owner: owner == "owner-a")
    assert (memory.get("a"), memory.get("b"), memory.get("unknown")) == (None, "owner-b", None)


def test_answers_expire_after_the_lifetime_read_at_store_time_and_the_limit_empties():
    lifetime = [60.0]
    memory: TimedMemory[int] = TimedMemory(lambda: lifetime[0], 2)
    lifetime[0] = -1.0  # already expired when stored
    memory.lookup("x", lambda: 1)
    assert memory.get("x") is None
    lifetime[0] = 60.0
    memory.lookup("y", lambda: 2)
    memory.lookup("z", lambda: 3)  # the limit of 2 was reached: emptied first
    assert (memory.get("y"), memory.get("z")) == (None, 3)
