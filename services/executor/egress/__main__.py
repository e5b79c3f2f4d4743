"""``python -m services.executor.egress``: the blocked ranges, as the deploy NetworkPolicies list them."""

import sys

from services.executor.egress.policy import blocked_cidrs

for family in (4, 6):
    sys.stdout.write(f"    blockedIPv{family}:\n")
    sys.stdout.writelines(f"      - {cidr}\n" for cidr in blocked_cidrs(family))
