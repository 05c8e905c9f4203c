"""deploy.ports: ports chosen now, bound later by another process, below the ephemeral range."""

from __future__ import annotations

import random
import socket

from deploy import ports


def test_a_chosen_port_is_below_the_ephemeral_range_and_a_server_can_bind_it():
    start = ports.ephemeral_start()
    for _ in range(20):
        port = ports.free_port()
        assert ports.LOWEST <= port < start
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen()


def test_a_port_something_listens_on_is_passed_over():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert not ports.is_free(busy)

        class BusyFirst(random.Random):
            """Offers the busy port first, then whatever the seed gives."""

            offered = False

            def randrange(self, start, stop):
                if not self.offered:
                    self.offered = True
                    return busy
                return super().randrange(start, stop)

        chosen = ports.free_port(BusyFirst(7))
        assert chosen != busy and ports.is_free(chosen)


def test_without_the_proc_file_the_range_ends_where_every_common_os_starts_its_own(tmp_path):
    assert ports.ephemeral_start(tmp_path / "missing") == 32768
    odd = tmp_path / "range"
    odd.write_text("40000\t60999\n")
    assert ports.ephemeral_start(odd) == 40000
    assert ports.LOWEST <= ports.free_port(range_file=odd) < 40000


def test_a_range_that_leaves_no_room_falls_back_to_the_os_choice(tmp_path):
    tiny = tmp_path / "range"
    tiny.write_text("1024 65535\n")
    port = ports.free_port(range_file=tiny)
    assert ports.is_free(port)
