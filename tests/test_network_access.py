"""Who may reach a server magoo runs: loopback binds and the allow-list of peers."""

from __future__ import annotations

import pytest
from pydantic_core import PydanticCustomError

from magoo_core.network_access import Networks, check_networks, is_local_only


@pytest.mark.parametrize("host, local", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("192.168.1.20", False), ("::", False), ("pi.local", False),
])
def test_only_a_loopback_bind_counts_as_this_machine_only(host, local):
    assert is_local_only(host) is local


def test_an_allow_list_lets_in_its_addresses_and_networks_mapped_and_scoped_ones_too():
    networks = Networks(["192.168.1.0/24", "10.0.0.5", "fe80::/10"])
    assert networks.allows("192.168.1.7") and networks.allows("::ffff:192.168.1.7") and networks.allows("10.0.0.5")
    assert networks.allows("fe80::1%eth0")
    assert not networks.allows("192.168.2.7") and not networks.allows("10.0.0.6")
    assert not networks.allows(None) and not networks.allows("pi.local")
    assert Networks([]).allows("203.0.113.9") and not Networks([]), "empty: the bind address is the only fence"


def test_an_entry_that_is_no_address_is_named_in_one_line():
    assert check_networks(["192.168.1.0/24", "::1"]) == ["192.168.1.0/24", "::1"]
    with pytest.raises(PydanticCustomError, match="'kitchen' is not an address or a network like 192.168.1.0/24"):
        check_networks(["10.0.0.1", "kitchen"])
