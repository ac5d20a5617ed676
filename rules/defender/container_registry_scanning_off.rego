# Defender for Containers is on but its agentless container vulnerability assessment
# (extension ContainerRegistriesVulnerabilityAssessments) is off: images in Azure
# Container Registry and running in AKS are not scanned. CIS v3.0.0 3.1.4.3. A plan on
# the Free tier is AZ-DEF-008's finding.
package scanledger.rules.defender.container_registry_scanning_off

import data.scanledger.lib
import data.scanledger.lib.platform
import rego.v1

metadata := {
	"id": "AZ-DEF-016",
	"title": "Defender for Containers does not scan registry images for vulnerabilities",
	"severity": "medium",
	"category": "defender",
	"resource_types": ["Microsoft.Security/pricings"],
	"frameworks": {
		"cis_v3": ["3.1.4.3"],
		"nist_csf": ["DE.CM-8", "ID.RA-1"],
		"iso27001": ["A.8.8"],
	},
	"description": "Defender for Containers is enabled without agentless container vulnerability assessment, so images pushed to or running from the subscription's registries are not scanned for known vulnerabilities. Reads Microsoft.Security/pricings 2024-01-01 `properties.pricingTier` and `properties.extensions[]` (name ContainerRegistriesVulnerabilityAssessments, isEnabled).",
	"remediation": {
		"portal": "Microsoft Defender for Cloud > Environment settings > the subscription > Containers > Settings > Agentless container vulnerability assessment: On > Continue > Save.",
		"cli": "az security pricing create --name Containers --tier Standard --extensions name=ContainerRegistriesVulnerabilityAssessments isEnabled=True",
	},
}

applies(r) if {
	platform.plan_on(r, "Containers")
}

deny contains lib.finding(r, "Containers/ContainerRegistriesVulnerabilityAssessments", {"plan": "Containers", "extension": "ContainerRegistriesVulnerabilityAssessments", "extensions": lib.prop(r, ["extensions"], null)}) if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "ContainerRegistriesVulnerabilityAssessments") == "off"
}

indeterminate contains lib.undecided(r, "the Containers pricing document carries no extensions list") if {
	some r in input.resources
	applies(r)
	platform.extension_state(r, "ContainerRegistriesVulnerabilityAssessments") == "unknown"
}
