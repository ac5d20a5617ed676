# Defender for Containers is on but agentless discovery for Kubernetes (extension
# AgentlessDiscoveryForKubernetes) is off: the API-based inventory of clusters, their
# workloads and attack paths is not collected. CIS v3.0.0 3.1.4.2.
package scanledger.rules.defender.kubernetes_agentless_discovery_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-017",
	"title": "Defender for Containers agentless discovery for Kubernetes is off",
	"severity": "low",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {
		"cis_v3": ["3.1.4.2"],
		"nist_csf": ["ID.AM-2", "DE.CM-8"],
		"iso27001": ["A.5.9"],
	},
	"description": "Defender for Containers is enabled without agentless discovery for Kubernetes, so cluster inventory, Kubernetes attack paths and the risk hunting that build on it are missing. Reads Microsoft.Security/pricings 2024-01-01 `properties.pricingTier` and `properties.extensions[]` (name AgentlessDiscoveryForKubernetes, isEnabled).",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Containers > Settings > Agentless discovery for Kubernetes: On > Continue > Save.",
		"cli": "az security pricing create --name Containers --tier Standard --extensions name=AgentlessDiscoveryForKubernetes isEnabled=True",
	},
}

applies(r) if {
	platform.plan_on(r, "Containers")
}

deny contains lib.finding(r, "Containers/AgentlessDiscoveryForKubernetes", {"plan": "Containers", "extension": "AgentlessDiscoveryForKubernetes", "extensions": lib.prop(r, ["extensions"], null)}) if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "AgentlessDiscoveryForKubernetes") == "off"
}

indeterminate contains lib.undecided(r, "the Containers pricing document carries no extensions list") if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "AgentlessDiscoveryForKubernetes") == "unknown"
}
