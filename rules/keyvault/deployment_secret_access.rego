# Azure Resource Manager template deployments (enabledForTemplateDeployment) or virtual
# machine deployments (enabledForDeployment) may pull secrets from the vault. That path is
# authorized by the `Microsoft.KeyVault/vaults/deploy/action` permission (part of
# Contributor), not by the vault's data-plane access, so it lets control-plane roles read
# secrets. enabledForDiskEncryption (needed by Azure Disk Encryption) is not flagged.
# Absent = false (the documented default).
package scanledger.rules.keyvault.deployment_secret_access

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-008",
	"title": "Key vault lets deployments retrieve its secrets",
	"severity": "low",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.5.15", "A.8.2"],
	},
	"description": "The vault allows ARM template deployments and/or virtual machine deployments to retrieve its secrets. Anyone holding the deploy permission on the vault (e.g. Contributor, which has no data-plane access) can then inject a secret into a resource they control and read it.",
	"remediation": {
		"portal": "Key vault > Settings > Access configuration > Resource access: clear 'Azure Resource Manager for template deployment' and 'Azure Virtual Machines for deployment' unless required > Apply.",
		"cli": "az keyvault update --name <vault> --resource-group <rg> --enabled-for-template-deployment false --enabled-for-deployment false",
	},
}

flags := ["enabledForTemplateDeployment", "enabledForDeployment"]

deny contains lib.finding(r, "", {"enabled": on}) if {
	some r in input.resources
	on := [f | some f in flags; lib.is_true(lib.prop(r, [f], false))]
	count(on) > 0
}
