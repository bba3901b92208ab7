"""Issue 19's repeats stay gone: each concept below has one home in harness/,
and a second copy fails here with the module that grew it (the wire id and
frame types are held by tests/protocol/test_protocol_wire_id.py)."""

from __future__ import annotations

import re

import pytest

from tests.support import ROOT

HARNESS = ROOT / "harness"

# concept -> (pattern that marks an implementation of it, the modules allowed to have one)
HOMES: dict[str, tuple[str, frozenset[str]]] = {
    "counting this host's sockets (psutil)": (r"\bnet_connections\(", frozenset({"targets/sockets.py"})),
    "reading /proc/net/tcp{,6}": (r"Path\(\"/proc/net/tcp|open\(\"/proc/net/tcp",
                                   frozenset({"targets/proc_net.py"})),
    "writing a client's hello (the hand-written handshake)": (r"\bencode_hello\(", frozenset({"protocol/handshake.py"})),
    "a contract dataclass": (r"^class (\w*Contract|\w*ContractSpec)\s*[(:]", frozenset({"protocol/messages.py",
                                                                                "clients/startup.py"})),
    "a moved-module shim": (r"sys\.modules\[__name__\]", frozenset()),
}


@pytest.mark.parametrize("concept", sorted(HOMES))
def test_each_concept_has_one_home(concept: str) -> None:
    pattern, homes = HOMES[concept]
    found = sorted(path.relative_to(HARNESS).as_posix() for path in HARNESS.rglob("*.py")
                   if re.search(pattern, path.read_text(), re.M))
    assert set(found) <= homes, f"{concept}: {found} (home: {sorted(homes) or 'none'})"


def test_the_start_up_steps_take_the_one_contract_record() -> None:
    from harness.clients.startup import ContractSpec, QualifiedContract
    from harness.protocol.messages import Contract

    spec = ContractSpec("EUR", "CASH", "IDEALPRO", "USD")  # the README's name, kept for one release
    assert spec == Contract.request("EUR", "CASH", "IDEALPRO", "USD") and type(spec) is Contract
    assert (spec.symbol, spec.sec_type, spec.exchange, spec.currency, spec.con_id) == ("EUR", "CASH", "IDEALPRO",
                                                                                        "USD", 0)
    q = QualifiedContract.from_fields(12087792, "EUR", "CASH", "IDEALPRO", "", "USD", "EUR.USD", "EUR.USD",
                                      min_tick=5e-05)
    assert type(q.spec()) is Contract and (q.con_id, q.spec().local_symbol, q.min_tick) == (12087792, "EUR.USD", 5e-05)
