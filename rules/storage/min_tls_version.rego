# The account does not state TLS 1.2 (or later) as its minimum: minimumTlsVersion is
# TLS1_0, TLS1_1, or unset (absent, null or "": Azure reads an unset value as TLS 1.0, the
# default of accounts made with the CLI, PowerShell or ARM before the portal default
# changed). Configuration hygiene, low: Azure Storage stopped accepting TLS 1.0 and 1.1 on
# every account on 3 February 2026 (Microsoft Learn, "Migrate to TLS 1.2 for Azure Blob
# Storage", learn.microsoft.com/azure/storage/common/transport-layer-security-configure-
# migrate-to-tls2; the date moved from 1 November 2024 to 1 November 2025 to 3 February
# 2026, with no further extension), so an old value no longer admits those versions, but
# the setting should say what the platform enforces and what the control (CIS v2.1.0 3.15 /
# v3.0.0 4.15) asks. TLS1_2 and TLS1_3 pass; an unknown future value is not flagged.
package scanledger.rules.storage.min_tls_version

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-003",
	"title": "Storage account minimum TLS version is not set to 1.2 or later",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.15"],
		"cis_v3": ["4.15"],
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account's minimumTlsVersion is TLS1_0 or TLS1_1, or not set (which Azure reads as TLS 1.0). Azure Storage has refused TLS 1.0 and 1.1 on every account since 3 February 2026, so clients can no longer use them; set the minimum to TLS1_2 so the account states what is enforced and does not depend on the platform-wide retirement. Reads Microsoft.Storage/storageAccounts 2023-05-01 `properties.minimumTlsVersion`.",
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
