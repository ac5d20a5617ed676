# Object replication to accounts in other Microsoft Entra tenants is allowed.
# `allowCrossTenantReplication` defaulted to true on accounts created before December 2023
# (and unset meant allowed), so absent or null fires; only an explicit false is safe.
# Object replication exists only for block blobs on general-purpose v2 and premium
# block-blob accounts without a hierarchical namespace, so other accounts are not flagged.
package scanledger.rules.storage.cross_tenant_replication

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-014",
	"title": "Storage account allows cross-tenant object replication",
	"severity": "medium",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"cis_azure": ["3.16"],
		"cis_v3": ["4.16"],
		"nist_csf": ["PR.DS-5"],
		"iso27001": ["A.5.14"],
	},
	"description": "Object replication policies may copy this account's blobs to (or from) a storage account in another Microsoft Entra tenant, which someone with write access could use to continuously exfiltrate data outside the organisation.",
	"remediation": {
		"portal": "Storage account > Data management > Object replication > Advanced settings > clear 'Allow cross-tenant replication' > Save.",
		"cli": "az storage account update --name <account> --resource-group <rg> --allow-cross-tenant-replication false",
	},
}

deny contains lib.finding(r, "", {"allowCrossTenantReplication": v}) if {
	some r in input.resources
	slib.kind(r) in {"storagev2", "blockblobstorage"}
	not slib.premium_page_blob(r)
	not slib.hns(r)
	v := lib.prop(r, ["allowCrossTenantReplication"], null)
	not lib.is_false(v)
}
