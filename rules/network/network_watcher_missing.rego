# A region where the subscription has virtual networks has no Network Watcher (or only
# one whose provisioning failed), so flow logs, connection troubleshooting, packet capture
# and topology are unavailable there. "Regions in use" are the regions of the
# subscription's virtual networks: Network Watcher watches networks, and every VM, private
# endpoint or gateway sits in one. One finding per such region, named
# /subscriptions/<id>/locations/<region>. Azure creates a watcher in NetworkWatcherRG
# when a VNet is created, unless that was opted out of. Indeterminate when watchers or
# virtual networks could not be listed.
# REST: Network Watchers 2024-03-01 (https://learn.microsoft.com/rest/api/network-watcher/network-watchers/list-all).
package scanledger.rules.network.network_watcher_missing

import data.scanledger.lib
import data.scanledger.lib.inventory as inv
import rego.v1

metadata := {
	"id": "AZ-NET-101",
	"title": "Region in use has no Network Watcher",
	"severity": "low",
	"category": "network",
	"scope": "subscription",
	"resource_types": ["Microsoft.Network/networkWatchers", "Microsoft.Network/virtualNetworks"],
	"reads": {
		"Microsoft.Network/networkWatchers": ["properties.provisioningState"],
		"Microsoft.Network/virtualNetworks": [],
	},
	"frameworks": {
		"cis_azure": ["6.6"],
		"nist_csf": ["DE.CM-1"],
		"iso27001": ["A.8.16"],
	},
	"description": "The subscription has virtual networks in this region but no working Network Watcher there, so NSG and virtual network flow logs, connection troubleshooting and packet capture cannot be used for its networks.",
	"remediation": {
		"portal": "Network Watcher > Overview > select the subscription > enable the region (or create a Network Watcher in NetworkWatcherRG for it).",
		"cli": "az network watcher configure --resource-group NetworkWatcherRG --locations <region> --enabled true",
	},
}

# A watcher counts unless its provisioning failed or it is being deleted.
working(w) if not lib.in_ci(object.get(lib.obj(object.get(w, "properties", {})), "provisioningState", ""), {"failed", "deleting"})

watched_regions contains inv.region(w.location) if {
	some w in inv.resources("Microsoft.Network/networkWatchers")
	working(w)
}

regions_in_use contains inv.region(v.location) if {
	some v in inv.resources("Microsoft.Network/virtualNetworks")
}

deny contains inv.region_finding(region, {"region": region, "virtual_networks": n}) if {
	some region in regions_in_use
	not region in watched_regions
	n := count([v | some v in inv.resources("Microsoft.Network/virtualNetworks"); inv.region(v.location) == region])
}
