"""The local Ray head every stage starts listens on loopback only (node IP and every port)."""

from __future__ import annotations

import ipaddress

import psutil
import pytest

from riskrl.cluster import ray_session

pytestmark = pytest.mark.slow


def test_local_head_listens_on_loopback_only():
    with ray_session(None, num_cpus=1) as mode:
        import ray

        assert mode == "local"

        @ray.remote
        def one() -> int:
            return 1

        assert ray.get(one.remote()) == 1  # a worker and the runtime-env agent are up too
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        me = psutil.Process()
        pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
        listening = [(c.laddr.ip, c.laddr.port, c.pid) for c in psutil.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert len(listening) >= 3  # GCS, raylet, agents
    for ip, port, pid in listening:
        addr = ipaddress.ip_address(ip)
        addr = addr.ipv4_mapped or addr if isinstance(addr, ipaddress.IPv6Address) else addr
        assert addr.is_loopback, f"pid {pid} listens on {ip}:{port}"
