# Load balancers with no backend: no backend pool, or pools with no members (neither
# NIC/VMSS ipConfigurations, `backendIPConfigurations`, nor IP-based
# `loadBalancerBackendAddresses`). Informational hygiene: a public one still holds a
# public frontend address and rules that nobody reviews.
package scanledger.rules.network.load_balancer_without_backends

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-024",
	"title": "Load balancer has no backend members",
	"severity": "info",
	"category": "network",
	"resource_types": ["Microsoft.Network/loadBalancers"],
	"frameworks": {
		"nist_csf": ["PR.IP-1"],
		"iso27001": ["A.5.9", "A.8.9"],
	},
	"description": "The load balancer has no backend pool members, so it serves nothing. Unused load balancers (and the public frontend addresses they hold) are inventory drift: delete them or attach the intended backends.",
	"remediation": {
		"portal": "Load balancer > Backend pools > add the intended virtual machines or scale set, or delete the load balancer if it is unused.",
		"cli": "az network lb delete --resource-group <rg> --name <lb>",
	},
}

has_member(pool) if {
	props := nw.sub_props(pool)
	some key in ["backendIPConfigurations", "loadBalancerBackendAddresses"]
	nw.non_empty(object.get(props, key, []))
}

deny contains lib.finding(r, "", {"backend_pools": [object.get(p, "name", "") | some p in pools; is_object(p)]}) if {
	some r in input.resources
	pools := lib.as_list(lib.prop(r, ["backendAddressPools"], []))
	not any_member(pools)
}

any_member(pools) if {
	some p in pools
	has_member(p)
}
