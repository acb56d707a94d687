// Package egress gives instances the network paths their function was
// granted, and nothing else: moat's version of Lambda's VPC configuration
// and security groups.
//
// An instance without grants has only its own loopback (where the Runtime
// API listens) and this package does nothing for it. An instance with
// grants gets, from Manager.Attach:
//
//   - a veth pair: "mt-<hash of instance id>" on the host, "eth0" in the
//     instance, with a /30 from the IPv4 pool (host .1, instance .2) and, when
//     it has IPv6 grants, a /126 from the IPv6 pool; a default route via the
//     host end;
//   - a kernel filter on its cgroup that refuses, at connect(2) and
//     sendmsg(2) time with EPERM, every destination that is not granted, and
//     counts the refusals (Link.Denied);
//   - host rules in the nftables table "moat": its packets are forwarded
//     only from its own address to its grants and masqueraded; nothing
//     enters it but replies; it never reaches the host itself.
//
// # Enforcement: cgroup BPF, not nftables in the instance
//
// The filter is four cgroup sock_addr programs (connect4, connect6,
// sendmsg4, sendmsg6) attached to the instance's cgroup v2 directory, each
// walking a per-instance rule map. Both candidate mechanisms load on these
// machines; the cgroup hooks were chosen because:
//
//   - a refusal is an immediate EPERM from connect(2) or sendto(2). An
//     nftables output chain that drops a TCP SYN makes connect(2) retry and
//     time out (measured: 3 s dial timeout, no error before it); rejecting
//     with a TCP reset turns the refusal into ECONNREFUSED, which a function
//     cannot tell from a closed port, and ICMP rejects are rate limited;
//   - the counter counts attempts (system calls), not packets and
//     retransmissions;
//   - the rules sit outside every namespace the instance owns: changing or
//     detaching them needs CAP_NET_ADMIN in the host's user namespace. The
//     rule maps are frozen once filled: not even moat changes them later;
//   - they are attached without bpf_link, so a moat killed with SIGKILL
//     leaves them in place until the instance's cgroup is removed (fail
//     closed).
//
// nftables is still used on the host, for what only it does: NAT, and a
// second wall in the forward and input paths. The instance's own loopback
// is always allowed (the Runtime API is there); the host's loopback is in
// another namespace and never reachable.
//
// Refused whatever the grants say: 0.0.0.0/8, 169.254.0.0/16 (metadata),
// 255.255.255.255, ::, fe80::/10, fd00:ec2::254, the pools (other
// instances, the host ends of their links) and every address of the host at
// Attach time. Grants naming loopback or metadata addresses are refused by
// Grant.Validate; grants inside the pools or naming a host address by
// Attach.
//
// # Host changes, and how they are undone
//
//   - links mt-*: deleted by Link.Close (and by the kernel when an
//     instance's namespace goes away);
//   - the nftables table inet "moat": created by NewManager, deleted by
//     Manager.Close;
//   - forwarding: switched on per interface only, never globally
//     (net.ipv4.ip_forward and net.ipv6.conf.all.forwarding are not
//     touched): on each instance's host end (net.ipv4.conf.mt-*.forwarding,
//     and for IPv6 net.ipv6.conf.mt-*.force_forwarding, Linux 6.17+), and on
//     the uplinks the host routes grants through, because Linux decides
//     forwarding on the interface a packet arrives on and replies arrive on
//     the uplink. An uplink is switched on the first time a grant needs it
//     and stays on until Manager.Close restores its previous value (not at
//     every last instance: that would cost each cold start an nftables
//     transaction and flip the interface's role again and again). While it
//     is on, a rule in the uplinks chain drops everything the uplink would
//     forward except replies to instances, so the host does not become a
//     router for its neighbours; the rule's user data records the value to
//     restore.
//
// NewManager undoes all of this after a crash: it deletes links named mt-*,
// restores the forwarding values recorded in an existing "moat" table and
// deletes it. The programs attached to an instance cgroup go with the
// cgroup, which the sandbox removes.
//
// Limits: another firewall's forward chain (a DROP policy in iptables'
// FORWARD, as Docker sets) can still drop instance traffic; uplinks are
// found from the routes at Attach time. The package never decides which
// grants a function has (the registry does) and never resolves names on a
// function's behalf after deploy.
package egress
