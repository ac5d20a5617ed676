# The vault authorizes data access with vault access policies instead of Azure RBAC.
# `enableRbacAuthorization`: "If null or not specified, the vault is created with the
# default value of false" (VaultProperties in the ARM REST reference), so absent fires.
package scanledger.rules.keyvault.rbac_authorization

import data.scanledger.lib
import rego.v1

metadata := {
	"id": "AZ-KV-003",
	"title": "Key vault does not use Azure RBAC for data access",
	"severity": "medium",
	"category": "keyvault",
	"resource_types": ["Microsoft.KeyVault/vaults"],
	"frameworks": {
		"cis_azure": ["8.6"],
		"cis_v3": ["3.3.6"],
		"nist_csf": ["PR.AC-4"],
		"iso27001": ["A.5.15", "A.5.18"],
	},
	"description": "The vault uses the legacy access-policy model: anyone who can write the vault resource (e.g. Contributor) can grant themselves access to every key, secret and certificate, and access cannot be scoped per item, made just-in-time with PIM, or reviewed with the rest of Azure RBAC.",
	"remediation": {
		"portal": "Key vault > Settings > Access configuration > Permission model: Azure role-based access control > Apply (assign Key Vault data roles first).",
		"cli": "az keyvault update --name <vault> --resource-group <rg> --enable-rbac-authorization true",
	},
}

deny contains lib.finding(r, "", {"enableRbacAuthorization": v}) if {
	some r in input.resources
	v := lib.prop(r, ["enableRbacAuthorization"], null)
	not lib.is_true(v)
}
