"""moto's server with fixes for fidelity, run by `running_moto` (tests/support/moto_server.py).

EC2 frees a terminated instance's private address: a new instance may then ask for it by
`PrivateIpAddress` (the hub's fixed address after a replacement, modules/aws/hub.py).
moto 5 keeps it taken until the instance object is garbage collected, which a terminated
instance never is, so that request failed. Here termination frees the address for
explicit requests only; moto's own allocation still never hands it out again (as before),
so nothing else about addresses changes. An address still in use is refused with EC2's
error (`InvalidIPAddress.InUse`), not moto's bare exception (an HTTP 500 page).

An instance launched with its primary network interface spelled out (`NetworkInterfaces`,
which Terraform's aws_instance sends when it has a `private_ip`) has that interface's
security groups, as EC2 reports them; moto reported none on the instance, so Terraform
saw drift and the simulator's packet filter saw an instance without groups.

Run as a script: `python moto_main.py -H 127.0.0.1 -p PORT` (moto_server's arguments).
"""

from __future__ import annotations

import ipaddress


def free_addresses_on_termination() -> None:
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.instances import Instance
    from moto.ec2.models.subnets import Subnet

    terminate = Instance.terminate
    if getattr(terminate, "frees_addresses", False):
        return

    def terminate_and_free(self, *args, **kwargs):
        state = terminate(self, *args, **kwargs)
        subnet_id = self.subnet_id
        if subnet_id:
            subnet = self.ec2_backend.get_subnet(subnet_id)
            for address in list(self._private_ips):
                if subnet._subnet_ips.get(address) is self:
                    del subnet._subnet_ips[address]
                    subnet._reserved_ips.add(ipaddress.ip_address(address))  # never auto-assigned again
            self._private_ips.clear()
        return state

    terminate_and_free.frees_addresses = True
    Instance.terminate = terminate_and_free

    request_ip = Subnet.request_ip

    def request_free_ip(self, ip, instance):
        if ip in self._subnet_ips:
            raise EC2ClientError("InvalidIPAddress.InUse", f"Address {ip} is in use.")
        return request_ip(self, ip, instance)

    Subnet.request_ip = request_free_ip


def primary_interface_groups() -> None:
    from moto.ec2.models.instances import Instance

    init = Instance.__init__
    if getattr(init, "takes_interface_groups", False):
        return

    def init_with_groups(self, *args, **kwargs):
        init(self, *args, **kwargs)
        primary = getattr(self, "nics", {}).get(0)
        if not self.security_groups and primary is not None and primary._group_set:
            self.security_groups = list(primary._group_set)

    init_with_groups.takes_interface_groups = True
    Instance.__init__ = init_with_groups


if __name__ == "__main__":
    free_addresses_on_termination()
    primary_interface_groups()
    from moto.server import main

    main()
