# Storage firewall on (default action Deny, public network access not Disabled) without
# the trusted-services exception: `networkAcls.bypass` (a comma-separated list of
# AzureServices, Logging, Metrics, or None) lacks AzureServices. CIS v2.1.0 3.9 / v3.0.0
# 4.8. An absent bypass is AzureServices (the documented default). With the firewall off
# (AZ-STG-005) or public access disabled, the exception has no effect and is not judged.
package scanledger.rules.storage.trusted_services_bypass_off

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-017",
	"title": "Storage firewall does not let trusted Azure services through",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.9"],
		"cis_v3": ["4.8"],
		"nist_csf": ["PR.AC-5"],
		"iso27001": ["A.8.20"],
	},
	"description": "The account firewall denies by default but its exceptions (networkAcls.bypass) do not include AzureServices, so Azure services that work through the trusted-services exception (Azure Backup, Event Grid, Azure Monitor, Defender for Storage) cannot reach the account, which pushes owners to open the firewall instead. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.networkAcls.bypass` and `defaultAction`.",
	"remediation": {
		"portal": "Storage account > Security + networking > Networking > Exceptions > Allow Azure services on the trusted services list to access this storage account > Save.",
		"cli": "az storage account update --resource-group <rg> --name <account> --bypass AzureServices",
	},
}

bypass(r) := {trim_space(lower(b)) | some b in split(slib.lc(lib.prop(r, ["networkAcls", "bypass"], "AzureServices")), ",")}

deny contains lib.finding(r, "", {"bypass": lib.prop(r, ["networkAcls", "bypass"], null)}) if {
	some r in input.resources
	not lib.no_properties(r)
	not slib.public_network_off(r)
	slib.default_action(r) == "deny"
	not "azureservices" in bypass(r)
}

indeterminate contains lib.undecided(r, "the account document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
