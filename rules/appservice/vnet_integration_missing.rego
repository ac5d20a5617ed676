# App Service app without regional virtual network integration: no
# `virtualNetworkSubnetId` on the site and no `vnetName` in config/web. Outbound calls then
# leave from shared public addresses, so the databases and vaults it uses must accept
# those (or all Azure) addresses instead of private endpoints. Apps in an App Service
# Environment (hostingEnvironmentProfile) are inside a virtual network and not judged.
# Prowler app_function_vnet_integration_enabled. Info: architecture, not a misconfiguration.
package scanledger.rules.appservice.vnet_integration_missing

import data.scanledger.lib
import data.scanledger.lib.appservice
import rego.v1

metadata := {
	"id": "AZ-APP-016",
	"title": "App Service app is not integrated with a virtual network",
	"severity": "info",
	"category": "appservice",
	"resource_types": ["Microsoft.Web/sites", "Microsoft.Web/sites/slots"],
	"frameworks": {
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20", "A.8.22"],
	},
	"description": "The app is not integrated with a virtual network, so its outbound traffic to back ends (databases, Key Vault, storage) cannot use private endpoints or network rules and those must stay reachable from public addresses. Reads Microsoft.Web/sites 2023-12-01 `properties.virtualNetworkSubnetId`, `properties.hostingEnvironmentProfile` and config/web `properties.vnetName`.",
	"remediation": {
		"portal": "App Service > Settings > Networking > Outbound traffic configuration > Virtual network integration > Add virtual network integration > choose a delegated subnet > Connect.",
		"cli": "az webapp vnet-integration add --resource-group <rg> --name <app> --vnet <vnet> --subnet <subnet>",
	},
	"related": {"config/web": "2023-12-01"},
}

in_ase(r) if appservice.str(appservice.get(r, ["properties", "hostingEnvironmentProfile", "id"])) != ""

integrated(r) if appservice.str(appservice.get(r, ["properties", "virtualNetworkSubnetId"])) != ""

integrated(r) if appservice.str(appservice.get(appservice.config(r), ["vnetName"])) != ""

deny contains lib.finding(r, "", {"virtualNetworkSubnetId": appservice.get(r, ["properties", "virtualNetworkSubnetId"])}) if {
	some r in input.resources
	appservice.has_config(r)
	not in_ase(r)
	not integrated(r)
}

indeterminate contains lib.undecided(r, "the site configuration (config/web) was not fetched") if {
	some r in input.resources
	appservice.config_unknown(r)
}
