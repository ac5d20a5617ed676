# SMB channel encryption that admits AES-128 ciphers: the related fileServices/default
# document's `protocolSettings.smb.channelEncryption` (a ";"-separated list of
# AES-128-CCM, AES-128-GCM, AES-256-GCM) includes anything but AES-256-GCM, or is
# absent/empty (all three are then accepted). Prowler
# storage_smb_channel_encryption_with_secure_algorithm. Only accounts holding SMB shares.
package scanledger.rules.storage.smb_weak_channel_encryption

import data.scanledger.lib
import data.scanledger.lib.storage as slib
import rego.v1

metadata := {
	"id": "AZ-STG-027",
	"title": "Storage account file shares accept SMB channel encryption weaker than AES-256-GCM",
	"severity": "low",
	"category": "storage",
	"resource_types": ["Microsoft.Storage/storageAccounts"],
	"frameworks": {
		"nist_csf": ["PR.DS-2"],
		"iso27001": ["A.8.24"],
	},
	"description": "The account holds SMB file shares and its SMB channel encryption allows AES-128-CCM or AES-128-GCM (the default when none is set), not only AES-256-GCM. Reads Microsoft.Storage/storageAccounts/fileServices 2023-05-01 `properties.protocolSettings.smb.channelEncryption` and the shares' `enabledProtocols`.",
	"remediation": {
		"portal": "Storage account > Data storage > File shares > File share settings > Security: Maximum security (or Customized with channel encryption AES-256-GCM only) > Save.",
		"cli": "az storage account file-service-properties update --resource-group <rg> --account-name <account> --channel-encryption AES-256-GCM",
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

ciphers(r) := {trim_space(lower(v)) |
	some v in split(slib.lc(object.get(file_service(r), ["protocolSettings", "smb", "channelEncryption"], "")), ";")
	trim_space(v) != ""
}

weak(r) if count(ciphers(r)) == 0

weak(r) if count(ciphers(r) - {"aes-256-gcm"}) > 0

deny contains lib.finding(r, "", {"channelEncryption": object.get(file_service(r), ["protocolSettings", "smb", "channelEncryption"], "(not set: AES-128-CCM;AES-128-GCM;AES-256-GCM)")}) if {
	some r in input.resources
	holds_shares(r)
	lib.has_related(r, "fileServices/default")
	weak(r)
}
