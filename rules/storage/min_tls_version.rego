# Storage accepts TLS 1.0/1.1. Azure documents the default interpretation of an unset
# `minimumTlsVersion` as TLS 1.0 (accounts made with the CLI/PowerShell/ARM before the
# portal default changed), so absent, null or "" fire. TLS1_2 and TLS1_3 pass; an unknown
# future value is not flagged.
package scanledger.rules.storage.min_tls_version

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-003",
	"title": "Storage account accepts TLS versions below 1.2",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.15"],
		"cis_v3": ["4.15"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account's minimum TLS version is TLS 1.0 or 1.1 (or not set, which Azure interprets as TLS 1.0). These protocol versions have known weaknesses and are being retired across Azure.",
	"remediation": {
		"portal": "Storage account > Settings > Configuration > Minimum TLS version: Version 1.2 > Save.",
		"cli": "az storage account update --name <account> --resource-group <rg> --min-tls-version TLS1_2",
	},
}

weak := {"", "tls1_0", "tls1_1"}

deny contains lib.finding(r, "", {"minimumTlsVersion": v}) if {
	some r in input.resources
	v := lib.prop(r, ["minimumTlsVersion"], null)
	slib.lc(v) in weak
}
