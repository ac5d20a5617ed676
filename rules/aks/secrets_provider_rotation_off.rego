# AKS Azure Key Vault provider for Secrets Store CSI Driver enabled without autorotation:
# addonProfiles `azureKeyvaultSecretsProvider.enabled` true and `config.enableSecretRotation`
# not "true". Pods then keep the secret versions they mounted until restarted. Checkov
# CKV_AZURE_172. Clusters without the add-on are not judged.
package scanledger.rules.aks.secrets_provider_rotation_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-AKS-016",
	"title": "AKS Key Vault secrets provider does not rotate secrets",
	"severity": "low",
	"category": "aks",
	"resource_types": ["Microsoft.ContainerService/managedClusters"],
	"frameworks": {
		"nist_csf": ["PR.AC-1"],
		"iso27001": ["A.5.17"],
	},
	"description": "The Key Vault secrets provider add-on is on but does not poll for new secret versions, so a secret rotated (or revoked) in Key Vault stays in use in running pods until they restart. Reads Microsoft.ContainerService/managedClusters 2024-09-01 `properties.addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation`.",
	"remediation": {
		"portal": "AKS cluster: enable rotation of the Azure Key Vault secrets provider add-on (CLI; the portal does not expose it).",
		"cli": "az aks addon update --resource-group <rg> --name <cluster> --addon azure-keyvault-secrets-provider --enable-secret-rotation",
	},
}

profiles(r) := platform.values_ci(lib.prop(r, ["addonProfiles"], {}), "azureKeyvaultSecretsProvider")

deny contains lib.finding(r, "", {"config": object.get(platform.obj(p), "config", null)}) if {
	some r in input.resources
	some p in profiles(r)
	lib.is_true(object.get(platform.obj(p), "enabled", false))
	not lib.is_true(object.get(platform.obj(p), ["config", "enableSecretRotation"], "false"))
}

indeterminate contains lib.undecided(r, "the cluster document carries no properties") if {
	some r in input.resources
	lib.no_properties(r)
}
