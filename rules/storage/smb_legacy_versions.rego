# SMB shares served with legacy protocol versions: the related fileServices/default
# document's `protocolSettings.smb.versions` (a ";"-separated list of SMB2.1, SMB3.0,
# SMB3.1.1) includes a version before 3.1.1, or is absent/empty (all versions are then
# accepted). Prowler storage_smb_protocol_version_is_latest. Only accounts holding SMB
# shares (enabledProtocols SMB, the default; NFS shares do not use these settings).
package scanledger.rules.storage.smb_legacy_versions

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-026",
	"title": "Storage account file shares accept SMB versions older than 3.1.1",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account holds SMB file shares and its SMB settings allow SMB 2.1 or 3.0 (the default when no versions are set), which lack SMB 3.1.1's pre-authentication integrity protection against downgrade and tampering. Reads Microsoft.Storage/storageAccounts/fileServices 2023-05-01 `properties.protocolSettings.smb.versions` and the shares' `enabledProtocols`.",
	"remediation": {
		"portal": "Storage account > Data storage > File shares > File share settings > Security: Maximum security (or Customized with SMB 3.1.1 only) > Save.",
		"cli": "az storage account file-service-properties update --resource-group <rg> --account-name <account> --versions SMB3.1.1",
	},
	"related": {"fileServices/default": "2023-05-01", "fileServices/default/shares": "2023-05-01"},
}

# Judged on accounts that offer Azure Files and hold at least one share (the related
# fileServices/default/shares list): the setting has nothing to protect otherwise.
holds_shares(r) if {
	slib.offers_files(r)
	lib.has_related(r, "fileServices/default/shares")
	count(slib.smb_shares(r)) > 0
}

file_service(r) := lib.obj(object.get(lib.obj(lib.related(r, "fileServices/default")), "properties", {})) if lib.has_related(r, "fileServices/default")

indeterminate contains lib.undecided(r, "the file service settings or the list of shares were not fetched") if {
	some r in input.resources
	slib.offers_files(r)
	some path in ["fileServices/default", "fileServices/default/shares"]
	lib.related_missing(r, path)
}

versions(r) := {trim_space(lower(v)) |
	some v in split(slib.lc(object.get(file_service(r), ["protocolSettings", "smb", "versions"], "")), ";")
	trim_space(v) != ""
}

legacy(r) if count(versions(r)) == 0

legacy(r) if count(versions(r) - {"smb3.1.1"}) > 0

deny contains lib.finding(r, "", {"versions": object.get(file_service(r), ["protocolSettings", "smb", "versions"], "(not set: SMB2.1;SMB3.0;SMB3.1.1)")}) if {
	some r in input.resources
	holds_shares(r)
	lib.has_related(r, "fileServices/default")
	legacy(r)
}
