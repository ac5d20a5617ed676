# Public DNS zones publishing private (RFC 1918 / RFC 6598 / unique-local IPv6) addresses
# in A or AAAA records: internal addressing leaks to anyone who resolves the name, which
# helps reconnaissance and DNS-rebinding. Record sets are child resources Resource Graph
# lacks: the rule reads the A and AAAA record-set lists (`{zone}/A`, `{zone}/AAAA`,
# api-version 2018-05-01) from `related`, and reports indeterminate when one was not
# fetched. Legacy zones with zoneType Private are skipped (not public).
package scanledger.rules.network.dns_zone_private_address_records

import data.scanledger.lib
import data.scanledger.lib.network as nw
import rego.v1

metadata := {
	"id": "AZ-NET-026",
	"title": "Public DNS zone publishes private IP addresses",
	"severity": "low",
	"category": "network",
	"resource_types": ["Microsoft.Network/dnsZones"],
	"frameworks": {
		"nist_csf": ["PR.DS-5"],
		"iso27001": ["A.8.12", "A.8.20"],
	},
	"description": "A record set in a public DNS zone resolves to a private IP address (10/8, 172.16/12, 192.168/16, 100.64/10 or fc00::/7). Anyone on the internet can map internal hosts and addressing; internal names belong in Azure Private DNS zones.",
	"remediation": {
		"portal": "DNS zone > Recordsets > delete the record or move it to an Azure Private DNS zone linked to the virtual network.",
		"cli": "az network dns record-set a remove-record --resource-group <rg> --zone-name <zone> --record-set-name <name> --ipv4-address <private-ip>",
	},
	"related": {
		"A": "2018-05-01",
		"AAAA": "2018-05-01",
	},
}

private_v4 := ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]

private_v6 := ["fc00::/7"]

public_zone(r) if not nw.is_ci(lib.prop(r, ["zoneType"], "Public"), "Private")

# (record type, list of {"ipv4Address"|"ipv6Address": ...} key, address key, ranges)
kinds := [
	{"type": "A", "records": "ARecords", "address": "ipv4Address", "ranges": private_v4},
	{"type": "AAAA", "records": "AAAARecords", "address": "ipv6Address", "ranges": private_v6},
]

# is_private(ip, ranges): net.cidr_contains on a string that looks like an address.
is_private(ip, ranges) if {
	is_string(ip)
	regex.match(`^[0-9a-fA-F:.]+$`, ip)
	some cidr in ranges
	net.cidr_contains(cidr, ip)
}

deny contains lib.finding(r, concat("/", [k.type, rs.name]), details) if {
	some r in input.resources
	public_zone(r)
	some k in kinds
	sets := lib.related(r, k.type)
	is_array(sets)
	some rs in sets
	is_object(rs)
	is_string(rs.name)
	ips := sort({ip |
		some rec in lib.as_list(object.get(nw.sub_props(rs), k.records, []))
		is_object(rec)
		ip := object.get(rec, k.address, "")
		is_private(ip, k.ranges)
	})
	count(ips) > 0
	details := {"record_type": k.type, "record_set": rs.name, "private_addresses": ips}
}

indeterminate contains lib.undecided(r, concat("", [k, " record sets were not fetched"])) if {
	some r in input.resources
	public_zone(r)
	some k in ["A", "AAAA"]
	lib.related_missing(r, k)
}
