#!/bin/sh
# egressc {{ version }}: the workload's outbound interception, as the init container sets it up.
# Run inside the workload's network namespace with CAP_NET_ADMIN: sh init.sh
# It needs only a POSIX sh (no other tool) and iptables-restore (ip6tables-restore where the
# pod has IPv6); the rule files are read from beside it.
#
# 1. outbound.rules: TCP to the sidecar, UDP only to DNS resolvers, nothing else leaves.
# 2. When the build names no resolver (no --dns, no Service kube-system/kube-dns in its
#    inputs), the nameservers of the pod's /etc/resolv.conf become the resolvers: UDP and TCP
#    port 53 to them leave directly. A nameserver that is not an address is skipped and said;
#    with none, no DNS leaves.
# 3. outbound6.rules, where the pod has IPv6: IPv6 does not leave but ::1 and DNS as above.
# 0. A pod on the node's network (hostNetwork: EGRESSC_POD_IP equals EGRESSC_HOST_IP, both
#    from the downward API) is refused before anything is applied: its rules would take the
#    node's traffic. Without the two (a test namespace), this check is skipped.
# Anything it cannot apply stops it with one line and a non-zero status: the pod does not
# start rather than start open.
set -eu
set -f

dir=$(dirname "$0")
resolv=${EGRESSC_RESOLV_CONF:-/etc/resolv.conf}

say() {
    echo "egressc-init: $*" >&2
}

fail() {
    say "$*"
    exit 1
}

# Whether $1 is a dotted-quad IPv4 address (four decimal octets, no leading zeros).
ipv4() {
    case $1 in
    '' | *[!0-9.]* | .* | *. | *..*) return 1 ;;
    esac
    saved_ifs=$IFS
    IFS=.
    # shellcheck disable=SC2086 # split on dots; globbing is off and only digits remain
    set -- $1
    IFS=$saved_ifs
    [ "$#" -eq 4 ] || return 1
    for octet in "$@"; do
        case $octet in
        0?* | ????*) return 1 ;;
        esac
        [ "$octet" -le 255 ] || return 1
    done
}

# Whether $1 looks like an IPv6 address (hex digits and colons; ip6tables-restore has the
# last word). Zone indexes (fe80::1%eth0) and embedded IPv4 are skipped.
ipv6() {
    case $1 in
    *:*) ;;
    *) return 1 ;;
    esac
    case $1 in
    *[!0-9A-Fa-f:]* | *:::*) return 1 ;;
    esac
}

# restore TOOL WHAT: TOOL --noflush with standard input, or stop saying WHAT failed.
restore() {
    "$1" --noflush || fail "$1 could not apply $2"
}

pod_ip=${EGRESSC_POD_IP:-}
host_ip=${EGRESSC_HOST_IP:-}
if [ -n "$pod_ip" ] && [ "$pod_ip" = "$host_ip" ]; then
    fail "refused: the pod uses the node's network (hostNetwork, address $pod_ip); its rules would take the node's traffic down: do not inject hostNetwork pods"
fi

restore iptables-restore "$dir/outbound.rules" <"$dir/outbound.rules"
say "applied outbound.rules"

# The rules file says whether the build named its resolvers.
from_resolv_conf=false
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    '# no --dns and no Service kube-system/kube-dns'*) from_resolv_conf=true ;;
    esac
done <"$dir/outbound.rules"

has_ipv6=false
if [ -e /proc/net/if_inet6 ]; then
    has_ipv6=true
fi

udp=''
tcp=''
dns6=''
count=0
if [ "$from_resolv_conf" = true ]; then
    [ -r "$resolv" ] || fail "cannot read $resolv, so no resolver is known"
    while read -r key value rest || [ -n "$key" ]; do
        [ "$key" = nameserver ] || continue
        if ipv4 "$value"; then
            udp="$udp-I EGRESSC_PROXY_DNS 1 -d $value/32 -p udp -j RETURN
"
            tcp="$tcp-A EGRESSC_PROXY_DNS_TCP -d $value/32 -p tcp -j ACCEPT
"
            count=$((count + 1))
        elif ipv6 "$value"; then
            dns6="$dns6-I EGRESSC_PROXY_DNS 1 -d $value/128 -j RETURN
"
            if [ "$has_ipv6" = true ]; then
                count=$((count + 1))
            fi
        else
            say "skipped a nameserver that is not an IP address in $resolv"
        fi
    done <"$resolv"
    if [ -n "$udp" ]; then
        printf '*filter\n%sCOMMIT\n*nat\n%sCOMMIT\n' "$udp" "$tcp" |
            restore iptables-restore "the IPv4 nameservers of $resolv"
    fi
    if [ "$count" -eq 0 ]; then
        say "no nameserver in $resolv: no DNS leaves this pod"
    else
        say "DNS may reach the $count nameserver(s) of $resolv"
    fi
fi

if [ "$has_ipv6" = true ]; then
    restore ip6tables-restore "$dir/outbound6.rules" <"$dir/outbound6.rules"
    if [ -n "$dns6" ]; then
        printf '*filter\n%sCOMMIT\n' "$dns6" |
            restore ip6tables-restore "the IPv6 nameservers of $resolv"
    fi
    say "applied outbound6.rules"
fi
